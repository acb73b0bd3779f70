"""``codestream-bot check``: is this configuration able to run? One line per check.

Each failure says what went wrong and what to do, so an operator can fix a deployment without
reading logs. Secrets never appear in the output.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bot.app.codestream import build_codestream_client
from bot.app.settings import Settings, load_settings
from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.codestream.errors import AuthenticationFailed, CodeStreamError, NotFound, TLSFailure
from bot.codestream.transport import TransportFailure
from bot.core.access import NO_POLICY_WARNING, AllowEveryone, build_policy
from bot.core.fileconfig import FileConfig, load_file_config
from bot.core.routing import StoredRoute
from bot.core.webhook_health import WebhookBoard
from bot.errors import ConfigError
from bot.slack.channels import CHANNEL_ID


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    warning: bool = False  # passes, but an operator should read it

    def line(self) -> str:
        status = ("WARN  " if self.warning else "ok    ") if self.ok else "FAILED"
        text = f"{status}  {self.name}: {self.detail}"
        if self.fix:
            text += f"\n        -> {self.fix}"
        return text


def describe_codestream_error(exc: CodeStreamError, settings: Settings) -> tuple[str, str]:
    """(what happened, what to do) for a failed login or API call."""
    host = urlsplit(settings.codestream_url or "").netloc or "Code Stream"
    if isinstance(exc, TLSFailure):
        return (
            f"TLS certificate of {host} could not be verified",
            "set CODESTREAM_CA_BUNDLE to the PEM file of the CA that signed it "
            "(CODESTREAM_VERIFY_TLS=false works but is unsafe)",
        )
    if isinstance(exc, TransportFailure) and not exc.request_sent:
        return (
            f"cannot connect to {host}",
            "check CODESTREAM_URL, DNS, proxies and firewalls between the bot and vRA",
        )
    if isinstance(exc, TransportFailure):
        return (f"{host} accepted the connection but did not answer", "check vRA's health; raise CODESTREAM_TIMEOUT")
    if isinstance(exc, AuthenticationFailed):
        what = {
            "vra": "the vRA refresh token was rejected",
            "csp": "the VMware Cloud API token was rejected",
            "token": "the bearer token in CODESTREAM_TOKEN was rejected",
        }[settings.codestream_auth]
        fix = (
            "create a new token and set CODESTREAM_TOKEN"
            if settings.codestream_auth == "token"
            else "create a new token (vRA: POST /csp/gateway/am/api/login; Cloud: My Account > API Tokens) "
            "and set CODESTREAM_REFRESH_TOKEN; check CODESTREAM_AUTH matches your vRA"
        )
        return what + (f" ({exc.server_message})" if exc.server_message else ""), fix
    if isinstance(exc, NotFound):
        status = f" (HTTP {exc.status})" if exc.status and f"HTTP {exc.status}" not in exc.user_message else ""
        return (
            f"{exc.user_message}{status}",
            "CODESTREAM_URL must be the vRA base URL (e.g. https://vra.example.com), without /codestream",
        )
    return str(exc), "see the bot's log for details; check vRA's health"


async def _check_codestream(settings: Settings) -> list[CheckResult]:
    problems = settings.codestream_problems()
    if problems:
        return [CheckResult("codestream", False, problem) for problem in problems]
    client = build_codestream_client(settings, retry=RetryPolicy(attempts=1))
    results: list[CheckResult] = []
    try:
        try:
            await client.auth.token()
        except CodeStreamError as exc:
            what, fix = describe_codestream_error(exc, settings)
            return [CheckResult(f"codestream login ({settings.codestream_auth})", False, what, fix)]
        results.append(CheckResult(f"codestream login ({settings.codestream_auth})", True, "token obtained"))
        try:
            page = await client.list_events("git", top=1)
        except CodeStreamError as exc:
            what, fix = describe_codestream_error(exc, settings)
            results.append(CheckResult("codestream git events", False, what, fix))
        else:
            total = page.total_count if page.total_count is not None else page.count
            results.append(CheckResult("codestream git events", True, f"listed ({total} in total)"))
        results.append(await _approver_check(client))
        results.extend(await _webhook_check(client, settings))
    finally:
        await client.aclose()
    return results


async def _webhook_check(client: CodeStreamClient, settings: Settings) -> list[CheckResult]:
    """The git webhooks whose pushes did not start their pipeline in the last 24 h."""
    now = datetime.now(UTC)
    board = WebhookBoard(client, AllowEveryone(), settings.bot_webhook_warn_days)
    try:
        failing = await board.failing_since(now - timedelta(hours=24), now)
    except CodeStreamError as exc:
        what, _ = describe_codestream_error(exc, settings)
        return [CheckResult("git webhooks", True, f"could not be read: {what}", warning=True)]
    if not failing:
        return [CheckResult("git webhooks", True, "no trigger failures in the last 24 h")]
    results = []
    for health in failing:
        hook = health.webhook
        where = " · ".join(_one_line(p or "?") for p in (hook.project, hook.repo_name, hook.branch_name))
        detail = (
            f"{_one_line(hook.name or '?')} ({where} → {_one_line(hook.pipeline or '?')}): {health.failures} "
            f"push(es) did not start the pipeline; last: {_one_line(health.last_failure or '')[:200]}"
        )
        fix = "Code Stream › Triggers › Git › Webhooks: edit it and save a new API token"
        results.append(CheckResult("git webhooks", True, detail, fix, warning=True))
    return results


def _one_line(text: str) -> str:
    """Text from Code Stream for the terminal: one line, no control characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _is_account(approver: str, account: str) -> bool:
    """An approval's approver (usually an e-mail) names the bot's account (a user name or an
    e-mail): the same, or the same name before the '@'."""
    a, b = approver.strip().lower(), account.strip().lower()
    return a == b or a.split("@", 1)[0] == b.split("@", 1)[0]


async def _approver_check(client: CodeStreamClient) -> CheckResult:
    """Whether the bot's account can decide the approvals pending now: Code Stream answers a
    decision from an account that is not an approver and ignores it."""
    name = "codestream approvals"
    account = client.auth.account()
    who = f"the bot acts as {account}" if account else "the bot's token names no account"
    try:
        pending = await client.list_user_operations(filter="status eq 'ACTIVE'", top=50, max_pages=1)
    except CodeStreamError as exc:
        return CheckResult(
            name, True, f"{who}; pending approvals could not be listed ({exc.user_message})", warning=True
        )
    if not pending:
        return CheckResult(
            name,
            True,
            f"{who}; no approval is pending to check it against (decisions from Slack count only on "
            "approvals that list the bot's account among their approvers)",
        )
    listed = sum(1 for op in pending if account and any(_is_account(a, account) for a in op.approvers))
    detail = f"{who}; it is an approver of {listed} of {len(pending)} pending approvals"
    if listed == len(pending):
        return CheckResult(name, True, detail)
    return CheckResult(
        name,
        True,
        detail,
        "add the bot's account to the approvers of pipelines decided from Slack: Code Stream "
        "ignores a decision from an account it does not list",
        warning=True,
    )


async def _check_slack(settings: Settings) -> list[CheckResult]:
    if not settings.slack_configured:
        return [CheckResult("slack", True, "SLACK_BOT_TOKEN not set: Slack checks skipped")]
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    assert settings.slack_bot_token is not None
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    try:
        reply = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error") if exc.response is not None else "unknown error"
        return [CheckResult("slack auth.test", False, f"Slack said {error}", "check SLACK_BOT_TOKEN (xoxb-...)")]
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        what = f"cannot reach Slack ({type(exc).__name__})"
        return [CheckResult("slack auth.test", False, what, "check SLACK_API_URL and proxies")]
    finally:
        session = getattr(client, "session", None)
        if session is not None:
            await session.close()
    return [CheckResult("slack auth.test", True, f"bot {reply.get('user')} in workspace {reply.get('team')}")]


async def _check_database(settings: Settings) -> list[CheckResult]:
    from bot.store import open_store

    try:
        store = await open_store(settings.bot_database_url)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        return [CheckResult("database", False, f"cannot open ({type(exc).__name__})", "check BOT_DATABASE_URL")]
    try:
        await store.ping()
        from bot.core.undelivered import describe_undelivered

        undelivered = await describe_undelivered(store)
    finally:
        await store.close()
    backend = settings.bot_database_url.split(":", 1)[0]
    results = [CheckResult("database", True, f"{backend} reachable, schema up to date")]
    if undelivered != "ok":
        results.append(CheckResult("alerts", True, undelivered, warning=True))
    return results


async def _check_policy(settings: Settings) -> list[CheckResult]:
    """The BOT_CONFIG file, the access policy and the alert routing table."""
    try:
        file_config = load_file_config(settings.bot_config)
        policy = build_policy(
            file_config.access,
            allowed_users=settings.bot_allowed_users,
            allowed_usergroups=settings.bot_allowed_usergroups,
            allowed_channels=settings.bot_allowed_channels,
            groups=None,
        )
    except ConfigError as exc:
        return [CheckResult("config file", False, problem) for problem in exc.problems]
    if not policy.configured:
        results = [CheckResult("access", True, NO_POLICY_WARNING, warning=True)]
    else:
        results = [CheckResult("access", True, line) for line in policy.describe()]
    results += await _check_routing(settings, file_config)
    results.append(_check_watcher(settings, file_config))
    results += _check_mentions(settings, file_config)
    return results


async def _check_routing(settings: Settings, file_config: FileConfig) -> list[CheckResult]:
    """The alert channel named in BOT_ALERT_CHANNEL, and where each failure goes: the routes,
    the channels' subscriptions, the fallback."""
    from bot.core.routing import Router

    results: list[CheckResult] = []
    fallback = settings.bot_alert_channel
    if fallback is not None and not CHANNEL_ID.fullmatch(fallback):
        resolved = await _resolve_channel(settings, fallback)
        results.append(resolved)
        fallback = resolved.detail.rsplit(" ", 1)[-1] if resolved.ok else None
    router = Router(file_config.routes, fallback=fallback)
    stored = await _stored_routes(settings)
    if stored is None:
        results.append(CheckResult("alert routing", True, "subscriptions: cannot read the database", warning=True))
    else:
        router.use_stored(stored)
    results.extend(CheckResult("alert routing", True, line) for line in router.describe())
    return results


def _check_watcher(settings: Settings, file_config: FileConfig) -> CheckResult:
    """Whether the watcher polls, how often, woken how, and when a storm is one digest."""
    from bot.app.watching import watch_enabled

    if not watch_enabled(settings, file_config):
        return CheckResult(
            "alert watcher", True, "off (set BOT_ALERT_CHANNEL, routes in BOT_CONFIG, or Slack for subscriptions)"
        )
    hook = (
        "POST /hooks/codestream enabled"
        if settings.bot_webhook_token
        else "no webhook wake (BOT_WEBHOOK_TOKEN not set)"
    )
    every, back = settings.bot_watch_interval, settings.bot_watch_lookback
    threshold, window = settings.bot_digest_threshold, settings.bot_digest_window_seconds
    storms = (
        f"more than {threshold} failures for a channel within {window:g}s are one digest"
        if threshold
        else "no digests (BOT_DIGEST_THRESHOLD=0)"
    )
    detail = f"on: every {every:g}s, first start looks back {back:g}s; {hook}; {storms}"
    return CheckResult("alert watcher", True, detail)


def _check_mentions(settings: Settings, file_config: FileConfig) -> list[CheckResult]:
    """Whether alerts mention who pushed, and a warning when BOT_CONFIG maps people for nothing."""
    mapped = len(file_config.people)
    if settings.bot_mention_author:
        detail = f"on: {mapped} people mapped in BOT_CONFIG, then users.lookupByEmail (scope users:read.email)"
        return [CheckResult("author mentions", True, detail)]
    if mapped:
        detail = f"off, but BOT_CONFIG maps {mapped} people: set BOT_MENTION_AUTHOR=true to use them"
        return [CheckResult("author mentions", True, detail, warning=True)]
    return []


async def _stored_routes(settings: Settings) -> tuple[StoredRoute, ...] | None:
    """The channels' subscriptions (``/codestream subscribe``), as the watcher routes by them;
    None when the database cannot be read (its own check says why)."""
    from bot.core.subscriptions import as_route
    from bot.store import open_store

    try:
        store = await open_store(settings.bot_database_url)
    except Exception:  # noqa: BLE001 - the database check reports it
        return None
    try:
        return tuple(as_route(record) for record in await store.subscriptions.live())
    except Exception:  # noqa: BLE001 - reported as a warning line
        return None
    finally:
        await store.close()


#: Checks whose failure means the configuration itself is wrong (``check`` exits 2, like ``serve``).
CONFIG_CHECKS = frozenset({"configuration", "config file", "alert channel"})


async def _resolve_channel(settings: Settings, name: str) -> CheckResult:
    if settings.slack_bot_token is None:
        return CheckResult("alert channel", False, f"{name} is a name", "set SLACK_BOT_TOKEN, or use the channel id")
    from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.channels import ChannelDirectory, ChannelNotFound

    web = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    web.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=5))  # big workspaces page a lot
    try:
        channel = await ChannelDirectory(web).resolve(name)
    except ChannelNotFound:
        return CheckResult(
            "alert channel",
            False,
            f"no channel named {name} that the bot can see",
            "check the name, invite the bot to it, or use the channel id",
        )
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        return CheckResult(
            "alert channel",
            False,
            f"cannot list channels ({type(exc).__name__})",
            "the app needs the channels:read and groups:read scopes, or use the channel id",
        )
    finally:
        if web.session is not None:
            await web.session.close()
    return CheckResult("alert channel", True, f"BOT_ALERT_CHANNEL {name} resolved to {channel}")


Check = Callable[[Settings], Awaitable[list[CheckResult]]]
CHECKS: list[Check] = [_check_codestream, _check_slack, _check_database, _check_policy]


async def run_checks(env: dict[str, str] | None = None) -> list[CheckResult]:
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        return [CheckResult("configuration", False, p) for p in exc.problems]
    results = [CheckResult("configuration", True, "settings are valid")]
    for check in CHECKS:
        results.extend(await check(settings))
    return results
