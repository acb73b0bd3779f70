"""What every Slack interaction shares once its listener has read the payload: the start (ack
first, then the work in a task of its own), the replay check across replicas, admission to the
bounded work, who the person is, and the answer only they see. Every listener starts its work
with ``InteractionContext.start``; the handlers (``bot.slack.handlers``, ``bot.slack.commands``)
take the context for ``who``, ``viewer`` and ``answer``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypedDict

from slack_bolt.async_app import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.access import Viewer
from bot.core.errors import UsageError
from bot.core.foreground import Foreground
from bot.core.inflight import InFlight
from bot.core.logs import request_id
from bot.core.requests import Actor, Surface, new_request_id
from bot.slack.delivery import Delivery
from bot.slack.interaction import Interaction
from bot.slack.render.messages import SOMETHING_WENT_WRONG, SlackMessage, render_usage_error
from bot.slack.replay import SlackReplays
from bot.slack.users import UserDirectory

log = logging.getLogger(__name__)

# Interactions worked on at once, after their ack (100 keeps 100 concurrent reruns parallel).
MAX_CONCURRENT_WORK: Final = 100

#: A listener's work, started once the request is known to be new.
Work = Callable[[], Awaitable[object]]


class Asking(TypedDict):
    """What every request to the core (an action, an execution control, an approval decision)
    says of who asks, through which surface, and its request id."""

    actor: Actor
    surface: Surface
    team_id: str | None
    request_id: str


@dataclass(frozen=True)
class Who:
    """The person behind an interaction, as users.info says; the payload's hints when Slack
    could not be asked."""

    actor: Actor
    team_id: str | None  # their home workspace (a Slack Connect guest's is their own organisation's)
    email: str | None = None  # with the users:read.email scope (approvals)

    def asking(self, interaction: Interaction) -> Asking:
        """The fields a request to the core takes from this person and ``interaction``."""
        return Asking(
            actor=self.actor, surface=interaction.surface, team_id=self.team_id, request_id=current_request_id()
        )


@dataclass
class InteractionContext:
    """Shared by every listener and handler of one running bot."""

    delivery: Delivery
    users: UserDirectory
    replays: SlackReplays
    inflight: InFlight  # graceful shutdown waits for what is counted here
    foreground: Foreground  # requests still waiting for their ack go first
    # Work going on after its listener returned.
    _detached: set[asyncio.Task[object]] = field(default_factory=set, init=False, repr=False)
    # Work after the ack is bounded: a burst queues here instead of piling up in the event loop
    # and the HTTP pools, so acks stay fast (Slack's deadline is 3 s).
    _working: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_WORK), init=False, repr=False
    )

    # --- the start of every listener's work ---------------------------------------------------

    async def start(
        self,
        ack: AsyncAck | None,
        request: AsyncBoltRequest,
        interaction: Interaction,
        work: Work,
        *,
        event_id: object = None,
        behind: bool = True,
    ) -> None:
        """Ack (``None``: Bolt acked it, as it does events), then, in a task of its own: the
        event's de-duplication (``event_id``), the replay check, admission, and ``work``. The
        work yields to the acks still pending (``behind``) unless it has a deadline of its own
        (an approval form: Slack's 3 s trigger). A UsageError it raises (a payload value that is
        not the bot's) is said to the person (``interaction``). Only the request's headers are
        kept, not its payload: the listener returns and Bolt's request is freed."""
        if ack is not None:
            await ack()
        headers = {name: value if isinstance(value, str) else list(value) for name, value in request.headers.items()}

        async def accepted_then_work() -> None:
            if not await self.replays.first_delivery(event_id):
                return  # Slack re-delivering an event already being handled
            if not await self.replays.first_trigger(interaction.trigger_id):
                log.warning("redelivered Slack interaction ignored")
                return  # the same command or click again (Socket Mode's redelivery)
            if behind:
                self.foreground.behind()
            if not await self.replays.accepted_once(headers):
                return
            async with self._admitted():
                try:
                    await work()
                except UsageError as exc:  # a value the bot did not make, a menu option not its own
                    await self.answer(interaction, render_usage_error(exc))

        self.detach(accepted_then_work(), interaction)

    def detach(self, work: Coroutine[Any, Any, object], interaction: Interaction) -> None:
        """Go on with ``work`` in a task of its own, counted in flight from now; an unexpected
        error is logged and the person told, as Bolt's error handler does for listeners."""
        task = asyncio.get_running_loop().create_task(work)
        self.inflight.enter(task)
        self._detached.add(task)

        def done(finished: asyncio.Task[object]) -> None:
            self._detached.discard(finished)
            try:
                error = None if finished.cancelled() else finished.exception()
                if error is not None:
                    log.error(
                        "unhandled error in a listener", exc_info=error, extra={"error_class": type(error).__name__}
                    )
                    if interaction.channel_id:  # the apology is in flight before this task leaves
                        apology = self.delivery.ephemeral(
                            interaction.channel_id, interaction.user_id, SOMETHING_WENT_WRONG
                        )
                        self.detach(apology, replace(interaction, channel_id=None))
            finally:
                self.inflight.leave(finished)

        task.add_done_callback(done)

    @contextlib.asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        """A request id in every log line from here through perform() to the Code Stream call,
        and one of at most MAX_CONCURRENT_WORK at once."""
        token = request_id.set(new_request_id())
        try:
            await self.foreground.wait_turn()
            async with self._working:
                yield
        finally:
            request_id.reset(token)

    # --- the person ----------------------------------------------------------------------------

    async def who(self, interaction: Interaction) -> Who:
        """Who asks: their name and home workspace from users.info (authoritative: a Slack
        Connect guest's workspace is their own), the payload's hints when Slack could not say."""
        info = await self.users.lookup(interaction.user_id)
        if info is None:
            return Who(Actor(interaction.user_id, interaction.user_name), interaction.team_id)
        actor = Actor(interaction.user_id, info.name or interaction.user_name)
        return Who(actor, info.team_id or interaction.team_id, info.email)

    async def viewer(self, interaction: Interaction) -> Viewer:
        """Who reads, where."""
        who = await self.who(interaction)
        return Viewer(interaction.user_id, interaction.channel_id, who.team_id)

    async def answer(self, interaction: Interaction, message: SlackMessage) -> None:
        """Only the person who asked sees it."""
        await self.delivery.ephemeral(
            interaction.channel_id,
            interaction.user_id,
            message,
            thread_ts=interaction.thread_ts,
            respond=interaction.respond,
        )


def current_request_id() -> str:
    """The request id of the interaction being worked on (a new one outside any)."""
    return request_id.get() or new_request_id()
