# codestream-bot container image.
#
#   docker build -t codestream-bot:0.1.0 .
#   docker run --rm --env-file bot.env -v codestream-bot-data:/data codestream-bot:0.1.0
#
# For a reproducible build, pin the base image by digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> -t codestream-bot:0.1.0 .
#
# No secret is baked in: pass tokens at run time (--env-file, -e, or a Kubernetes Secret).
# Build args VERSION, REVISION, CREATED and SOURCE fill the OCI labels.
# The base image's Python (3.11) is the version CI tests with and requirements.lock targets.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: install the locked dependencies and the package into /opt/venv -------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

WORKDIR /src
RUN python -m venv /opt/venv

# Every distribution is pinned and checked against its sha256, and only wheels are accepted, so
# nothing is resolved or compiled at build time (every locked package ships manylinux wheels for
# amd64 and arm64). The lock also pins the build backend (setuptools, wheel) used just below.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock

# The package itself, built with the locked backend (no build isolation: nothing unpinned is
# fetched); then the build-only tools leave the runtime environment, pip last (it removes itself:
# the runtime installs nothing). The .pyc the bot runs from are kept (the runtime venv is
# read-only and PYTHONDONTWRITEBYTECODE is set, so a missing one is compiled again at every
# start); those of code no command imports are dropped: test suites, pydantic.v1, and the
# SQLAlchemy dialects other than SQLite and PostgreSQL.
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
    && /opt/venv/bin/pip uninstall --yes setuptools wheel packaging \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -m pip uninstall --yes pip \
    && ! /opt/venv/bin/python -c "import pip" 2>/dev/null \
    && sp=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))") \
    && for unused in pydantic/v1 sqlalchemy/testing greenlet/tests \
            sqlalchemy/dialects/mssql sqlalchemy/dialects/mysql sqlalchemy/dialects/oracle; do \
        find "$sp/$unused" -name __pycache__ -prune -exec rm -rf {} +; \
    done \
    && /opt/venv/bin/codestream-bot --version

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="codestream-bot" \
      org.opencontainers.image.description="Slack chat-ops for VMware Code Stream: resume and rerun failed git, Gerrit and Docker-registry events from Slack." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A fixed numeric UID/GID (Kubernetes' runAsNonRoot can only verify a numeric USER). /data holds
# the SQLite database by default; it is a volume owned by that user.
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin bot \
    && mkdir -p /data /app \
    && chown 10001:10001 /data \
    && chmod 0750 /data

COPY --from=builder /opt/venv /opt/venv

# BOT_DATABASE_URL: SQLite on the /data volume (one replica). Several replicas need PostgreSQL:
#   -e BOT_DATABASE_URL=postgresql+asyncpg://user:password@host:5432/db
# MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (aiosqlite runs one per connection)
# an arena of its own and keeps their freed memory; two arenas hold RSS down (docs/PERFORMANCE.md).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    BOT_LOG_FORMAT=json \
    BOT_DATABASE_URL=sqlite+aiosqlite:////data/codestream-bot.db

# An empty, read-only working directory: the bot reads a .env file from here only if you mount one.
WORKDIR /app
VOLUME ["/data"]
USER 10001:10001

# 3000: HTTP mode (`serve --mode http --port 3000`): /slack/events, /hooks/codestream, /healthz,
#       /readyz, /metrics. 8080: Socket Mode's health server (BOT_HEALTH_PORT).
EXPOSE 3000 8080

# Healthy when /healthz answers 200 on the first port that accepts a connection: BOT_HEALTH_PORT
# (default 8080; Socket Mode), else 3000 (HTTP mode). Serving HTTP mode on another port? Override
# with `docker run --health-cmd ...`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,socket,sys,urllib.request as r; ports=[int(os.environ.get('BOT_HEALTH_PORT') or 8080), 3000]; up=[p for p in ports if socket.socket().connect_ex(('127.0.0.1', p)) == 0]; sys.exit(not up or r.urlopen(f'http://127.0.0.1:{up[0]}/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["codestream-bot"]
CMD ["serve"]
