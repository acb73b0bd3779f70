"""A PostgreSQL server of the test's own (``initdb`` + ``pg_ctl``), listening on a Unix socket in
a directory of its own (no port to race for), that a test can stop cleanly, crash and start
again — a restart or failover seen from the bot, by the real server. As root the server runs as
the ``postgres`` user (PostgreSQL refuses root)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncpg

StopMode = Literal["fast", "immediate"]  # a clean shutdown; a crash (recovery at the next start)


def available() -> str | None:
    """Why a server of the test's own cannot be run here, or None when it can."""
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


@dataclass
class OwnPostgres:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``test`` database (over the Unix socket)."""
        return self.url_of("test")

    def url_of(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}"

    async def new_database(self) -> str:
        """A fresh empty database of its own (a test's, on a server shared by a module)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(host=str(self.socket_dir), user="postgres", database="postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return name

    async def _run(self, *argv: str) -> None:
        if os.geteuid() == 0:
            argv = ("runuser", "-u", "postgres", "--", *argv)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[-1] if argv else ''}: {out.decode(errors='replace')[-2000:]}")

    async def init(self) -> None:
        await self._run("initdb", "-A", "trust", "-U", "postgres", "-D", str(self.data), "--no-sync")

    async def start(self) -> None:
        options = f"-c listen_addresses= -k {self.socket_dir} -c fsync=off -c max_connections=50"
        await self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.socket_dir / "log"), "-w", "start"
        )

    async def stop(self, mode: StopMode = "fast") -> None:
        await self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    async def connections(self, database: str = "test") -> int:
        """Backends connected to ``database`` (this reading's own left out)."""
        admin = await asyncpg.connect(host=str(self.socket_dir), user="postgres", database="postgres")
        try:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
            return int(await admin.fetchval(query, database))
        finally:
            await admin.close()


def _folders() -> OwnPostgres:
    """Its folders, readable by the server's user (``tmp_path`` is not: it is the caller's 0700)."""
    root = Path(tempfile.mkdtemp(prefix="csbot-pg-"))
    root.chmod(0o755)
    server = OwnPostgres(root)
    for folder in (server.data, server.socket_dir):
        folder.mkdir()
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
    return server


@asynccontextmanager
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    """A fresh server with an empty ``test`` database, running; stopped and removed after."""
    server = await asyncio.to_thread(_folders)
    root = server.root
    try:
        await server.init()
        await server.start()
        admin = await asyncpg.connect(host=str(server.socket_dir), user="postgres", database="postgres")
        try:
            await admin.execute("CREATE DATABASE test")
        finally:
            await admin.close()
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # not running (a test stopped it)
            await server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
