"""Running the bot: HTTP mode (Bolt behind uvicorn/Starlette) or Socket Mode (plus a small
HTTP server for health checks). Both run the same listeners."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import uvicorn
from slack_bolt.async_app import AsyncApp

from bot.app.database_wait import wait_for_database
from bot.app.health import Readiness
from bot.app.httpserver import server_options
from bot.app.runtime import Runtime, build_runtime
from bot.app.settings import Settings
from bot.app.slack_handlers import build_handlers
from bot.app.watching import build_approval_watcher, build_watcher, webhook_route
from bot.app.web import build_web
from bot.codestream.client import RetryPolicy
from bot.core.approvals.watcher import ApprovalWatcher
from bot.core.control.readback import ControlReadBack
from bot.core.followup import FollowupTiming, FollowupTracker
from bot.core.ports import LoggedOutcomes
from bot.core.reconcile import Reconciler, ReconcileTiming
from bot.core.undelivered import describe_undelivered
from bot.core.watcher import Watcher
from bot.slack.app import SlackRetry, build_app
from bot.slack.channels import CHANNEL_ID, ChannelDirectory, ChannelNotFound
from bot.slack.listeners import Handlers

if TYPE_CHECKING:  # Socket Mode's client is imported only when the bot runs in Socket Mode
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

log = logging.getLogger(__name__)

Mode = Literal["http", "socket"]


#: After BOT_SHUTDOWN_GRACE, how long the cancelled work has to record its hand-over; with the
#: rest of the shutdown (a few seconds at most) this is why the chart's
#: terminationGracePeriodSeconds must exceed BOT_SHUTDOWN_GRACE by SHUTDOWN_MARGIN_SECONDS.
HANDOVER_SECONDS: Final = 4.0
SHUTDOWN_MARGIN_SECONDS: Final = 10.0


class StartupError(Exception):
    """The bot cannot start as configured; the message says why and what to do."""


def default_mode(settings: Settings) -> Mode:
    return "socket" if settings.slack_app_token is not None else "http"


@dataclass(frozen=True)
class Timings:
    """The waits the tests, the demo and benchmarks shorten; None: production's defaults."""

    retry: RetryPolicy | None = None  # Code Stream's retries: tests use a fast backoff
    slack_retry: SlackRetry | None = None  # tests back off for milliseconds, not seconds
    followup: FollowupTiming | None = None  # the demo and tests follow faster
    reconcile: ReconcileTiming | None = None  # tests read back faster
    socket_ping: float = 10.0  # Socket Mode's ping interval: how soon a dropped connection is noticed


@dataclass
class RunningBot:
    """A bot started in this event loop: tests, the demo and benchmarks use it directly; the
    ``serve`` command runs one until SIGTERM."""

    settings: Settings
    mode: Mode = "http"
    host: str = "127.0.0.1"
    port: int = 0
    listen_fd: int | None = None  # an inherited, listening socket to serve on instead of host:port
    timings: Timings = field(default_factory=Timings)
    # What start() builds:
    runtime: Runtime | None = field(default=None, init=False)
    app: AsyncApp | None = field(default=None, init=False)
    handlers: Handlers | None = field(default=None, init=False)  # what the Slack listeners hand over to
    url: str | None = field(default=None, init=False)
    readiness: Readiness | None = field(default=None, init=False)
    watcher: Watcher | None = field(default=None, init=False)
    approvals: ApprovalWatcher | None = field(default=None, init=False)
    reconciler: Reconciler | None = field(default=None, init=False)
    _reconciler_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _followups_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _watcher_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _approvals_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _server: uvicorn.Server | None = field(default=None, init=False, repr=False)
    _server_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _socket: AsyncSocketModeHandler | None = field(default=None, init=False, repr=False)

    async def start(self) -> RunningBot:
        timings = self.timings
        self.runtime = runtime = await build_runtime(
            self.settings, retry=timings.retry, slack_retry=timings.slack_retry
        )
        try:
            await self._resolve_alert_channel(runtime)
        except StartupError:
            await runtime.close()
            self.runtime = None
            raise
        if runtime.web is not None:
            runtime.build_followups(timings.followup)
        await self._start_reconciler(runtime)
        if runtime.web is not None:
            self.handlers = build_handlers(runtime, health=self._home_health)
            secret = self.settings.slack_signing_secret
            self.app = build_app(
                self.handlers,
                runtime.delivery,
                signing_secret=secret.get_secret_value() if secret is not None else None,
                socket_mode=self.mode == "socket",
            )
        self.readiness = readiness = Readiness(
            runtime.store.ping,
            runtime.client.background.about,
            self._socket_connected if self.mode == "socket" else None,
            notes=lambda: self._undelivered_note(runtime),
        )
        if runtime.followups is not None:
            self._followups_task = asyncio.create_task(runtime.followups.run(), name="followups")
            self._build_watchers(runtime)
        await self._start_server(runtime, readiness)
        if self.mode == "socket":
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            assert self.app is not None and self.settings.slack_app_token is not None
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.slack_app_token.get_secret_value(), ping_interval=self.timings.socket_ping
            )
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
        if self.watcher is not None:
            await self._refuse_second_sqlite_watcher(runtime)
            self._watcher_task = asyncio.create_task(self.watcher.run(), name="watcher")
        if self.approvals is not None:
            self._approvals_task = asyncio.create_task(self.approvals.run(), name="approvals")
        log.info("bot started", extra={"mode": self.mode, "url": self.url})
        return self

    async def _start_reconciler(self, runtime: Runtime) -> None:
        """The reconciler, woken by every action that ends unknown; its first heartbeat is this
        replica's, before it takes any work."""
        notifier = runtime.notifier() if runtime.web is not None else LoggedOutcomes()
        self.reconciler = runtime.reconciler(notifier, self.timings.reconcile)
        await self.reconciler.start()
        self._reconciler_task = asyncio.create_task(self.reconciler.run(), name="reconciler")

    def _build_watchers(self, runtime: Runtime) -> None:
        """The failure watcher and the approvals watcher (started once the server is up)."""
        self.watcher = build_watcher(
            self.settings,
            runtime.file_config,
            store=runtime.store,
            client=runtime.client.background,
            notifier=runtime.notifier(),
            holder=runtime.replica,
            holder_gone=runtime.lease_holder_gone,
            authors=runtime.authors,
            digests=runtime.notifier().digests,
        )
        self.approvals = build_approval_watcher(
            self.settings,
            runtime.file_config,
            store=runtime.store,
            client=runtime.client.background,
            notifier=runtime.notifier(),
            holder=runtime.replica,
            holder_gone=runtime.lease_holder_gone,
        )

    async def _start_server(self, runtime: Runtime, readiness: Readiness) -> None:
        """The HTTP server (Slack's requests in HTTP mode, health, metrics, the webhook), once it
        listens; ``url`` says where."""
        extra = [webhook_route(self.watcher, self.settings.bot_webhook_token)] if self.watcher else []
        gate_secret = self.settings.slack_signing_secret if self.mode == "http" else None
        web = build_web(
            self.app if self.mode == "http" else None,
            readiness,
            signing_secret=gate_secret.get_secret_value() if gate_secret is not None else None,
            extra_routes=extra,
            foreground=runtime.foreground,
        )
        port = self.port if self.mode == "http" else self.settings.bot_health_port
        config = uvicorn.Config(
            web, host=self.host, port=port, log_config=None, lifespan="off", access_log=False, **server_options()
        )
        self._server = uvicorn.Server(config)
        # An inherited socket is already bound: no window in which another process takes the port.
        sockets = None if self.listen_fd is None else [socket.socket(fileno=self.listen_fd)]
        self._server_task = asyncio.create_task(self._server.serve(sockets=sockets))
        while not self._server.started:
            if self._server_task.done():
                self._server_task.result()  # raises the reason it could not start
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        host, bound = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host if self.listen_fd is not None else self.host}:{bound}"

    def use_followups(self, tracker: FollowupTracker) -> None:
        """Tests and benchmarks: follow through with this tracker instead of the bot's own."""
        assert self.runtime is not None
        self.runtime.followups = tracker
        if self.handlers is not None:
            self.handlers.use_followups(tracker)
        if self.reconciler is not None:
            self.reconciler.events.tracker = tracker
            for readback in self.reconciler.readbacks.values():
                if isinstance(readback, ControlReadBack):
                    readback.tracker = tracker

    async def _resolve_alert_channel(self, runtime: Runtime) -> None:
        """BOT_ALERT_CHANNEL may be a name: find its id once, before the watcher needs it."""
        name = runtime.settings.bot_alert_channel
        if name is None or CHANNEL_ID.fullmatch(name):
            return
        if runtime.web is None:
            raise StartupError(f"BOT_ALERT_CHANNEL={name} is a channel name: resolving it needs SLACK_BOT_TOKEN.")
        try:
            channel = await ChannelDirectory(runtime.web).resolve(name)
        except ChannelNotFound:
            raise StartupError(
                f"BOT_ALERT_CHANNEL: no channel named {name} that the bot can see. Check the name, invite the "
                "bot to it (/invite @codestream-bot), or use the channel id (channel details, at the bottom)."
            ) from None
        except Exception as exc:  # noqa: BLE001 - said at start-up with what to do
            raise StartupError(
                f"BOT_ALERT_CHANNEL={name}: cannot list channels to find it ({type(exc).__name__}); the app needs "
                "the channels:read and groups:read scopes, or use the channel id."
            ) from None
        log.info("alert channel resolved", extra={"channel": name, "channel_id": channel})
        runtime.settings = self.settings = runtime.settings.model_copy(update={"bot_alert_channel": channel})

    async def _refuse_second_sqlite_watcher(self, runtime: Runtime) -> None:
        """SQLite is for one process: a second one polling the same file would double the work
        and fight over the database lock. PostgreSQL is the way to run several replicas."""
        if runtime.store.dialect != "sqlite":
            return
        held = await runtime.store.liveness.lease_holder("watcher")
        if held is not None and held[0] != runtime.replica and not await runtime.lease_holder_gone(held[0]):
            await self.stop(grace=0)
            raise StartupError(
                f"Another bot process ({held[0]}) is running the failure watcher on this SQLite database "
                f"(its lease runs until {held[1]:%H:%M:%S} UTC). SQLite supports one process: stop the other "
                "one, or run several replicas on PostgreSQL (BOT_DATABASE_URL=postgresql+asyncpg://...)."
            )

    async def _home_health(self) -> dict[str, str]:
        """What the App Home says of the bot: Code Stream (the readiness check, cached 30 s), the
        watcher's lag, and alerts Slack refused for good."""
        assert self.readiness is not None and self.runtime is not None
        health = {"codestream": await self.readiness.codestream_state()}
        if self.watcher is None:
            health["watcher"] = "off"
        else:
            lag = self.watcher.lag()
            late = lag > 3 * self.watcher.interval + 30
            health["watcher"] = f"{'⚠️ ' if late else ''}last cycle {lag:.0f} s ago (every {self.watcher.interval:g} s)"
        health["alerts"] = await describe_undelivered(self.runtime.store)
        return health

    async def _undelivered_note(self, runtime: Runtime) -> dict[str, str]:
        return {"alerts": await describe_undelivered(runtime.store)}

    async def _socket_connected(self) -> bool:
        return self._socket is not None and bool(await self._socket.client.is_connected())

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking new work, let in-flight actions finish (bounded), release what we hold."""
        grace = self.settings.bot_shutdown_grace if grace is None else grace
        if self.readiness is not None:
            self.readiness.shutting_down = True  # /readyz 503; new Slack deliveries 503
        if self.watcher is not None:
            await self.watcher.stop()  # ends run(), releases the lease for another replica
            self.watcher, self._watcher_task = None, None
        if self.approvals is not None:
            await self.approvals.stop()
            if self._approvals_task is not None:
                await asyncio.gather(self._approvals_task, return_exceptions=True)
            self.approvals, self._approvals_task = None, None
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self.runtime is not None:
            drained = await self.runtime.inflight.drain(grace)
            log.info("in-flight work %s", "finished" if drained else "handed over after the grace period")
            if not drained:
                # What is left is cancelled, and hands over to the reconciler (of another
                # replica, or this one restarted): the exit fits the pod's termination grace.
                await self.runtime.inflight.cancel(within=HANDOVER_SECONDS)
            if self.handlers is not None:  # workflow steps waiting on an execution: finished now
                await self.handlers.runs.stop_waiting()
            # After the drain: finishing actions may still hand executions to the tracker. Its
            # state lives in the store; stopping releases the lease so another replica goes on.
            if self.runtime.followups is not None:
                await self.runtime.followups.stop()
        if self._followups_task is not None:
            await asyncio.gather(self._followups_task, return_exceptions=True)
            self._followups_task = None
        if self.reconciler is not None:
            # Last: what is still open is taken over at once by another replica (or the next start).
            await self.reconciler.stop()
            self.reconciler, self._reconciler_task = None, None
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._server_task
            self._server = None
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    async def __aenter__(self) -> RunningBot:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (again after uvicorn's server took them over)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def serve(settings: Settings, *, mode: Mode, host: str, port: int, fd: int | None = None) -> None:
    stop = asyncio.Event()
    _on_signals(stop)  # a SIGTERM while waiting for the database ends the wait (as PID 1 too)
    # PostgreSQL not there yet: wait for it, alive and saying why not ready, not crash-looping.
    health_port = port if mode == "http" else settings.bot_health_port
    if not await wait_for_database(settings.bot_database_url, host=host, port=health_port, fd=fd, stop=stop):
        log.info("stopped while waiting for the database")
        return
    bot = RunningBot(settings, mode=mode, host=host, port=port, listen_fd=fd)
    await bot.start()
    # Everything made at start-up (modules, tables, models) lives as long as the process: moved
    # out of the collector's reach, a full collection under load no longer walks it (shorter
    # pauses of the event loop, less CPU).
    gc.collect()
    gc.freeze()
    _on_signals(stop)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await bot.stop()
