"""A storm digest's rows: one row's menu (Rerun, Resume) acts on its event as its alert's button
would, and **Rerun all failed** reruns every row still failing, then says in the thread what
came of it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot.codestream.models import EventKind
from bot.core.digest_runs import DigestRuns
from bot.core.verbs import Verb
from bot.slack.context import InteractionContext
from bot.slack.delivery import Delivery
from bot.slack.handlers.event_actions import EventActions
from bot.slack.interaction import Interaction
from bot.slack.render.digest import render_rerun_all, render_rerun_all_refused

log = logging.getLogger(__name__)

NOT_SAVED = "That list is not saved yet (or not one of mine): nothing was rerun; try again in a minute."
NOTHING_LEFT = "Nothing left to rerun: every failure in this list has been acted on or fixed."


@dataclass(frozen=True)
class DigestRows:
    """A digest's row menus and its Rerun all."""

    context: InteractionContext
    runs: DigestRuns
    actions: EventActions
    delivery: Delivery

    async def act_on_row(
        self, verb: Verb, kind: EventKind, event_id: str, listed: int | None, interaction: Interaction
    ) -> None:
        """A row's menu: the verb on its event, while the run the row lists is still the latest."""
        if interaction.alert is None:
            return
        row = interaction.on(replace(interaction.alert, digest=True))
        await self.actions.on_alert(verb, kind, event_id, row, expected_index=listed)

    async def rerun_all(self, interaction: Interaction) -> None:
        """Rerun every row of the digest that still fails, each through ``perform`` (access, one
        intent per event, audit), then say in the thread what came of it."""
        alert = interaction.alert
        if alert is None:
            return
        try:
            digest = await self.runs.find(alert.channel, alert.ts)
        except Exception:
            log.exception("rerun all: the digest could not be read")
            digest = None
        if digest is None or digest.id is None:
            await self.context.answer(interaction, render_rerun_all_refused(NOT_SAVED))
            return
        async with self.runs.rerun_all(digest.id, interaction.user_id) as held_by:
            if held_by is not None:
                by = f" by <@{held_by}>" if held_by.isalnum() else ""
                refusal = f"Already in hand: a *Rerun all*{by} on this list is running."
                await self.context.answer(interaction, render_rerun_all_refused(refusal))
                return
            targets = await self.runs.still_failing(digest.id)
            if not targets:
                await self.context.answer(interaction, render_rerun_all_refused(NOTHING_LEFT))
                return
            outcomes = await self.actions.on_rows(interaction.on(replace(alert, digest=True)), targets)
            said = render_rerun_all(interaction.user_id, outcomes)
            await self.delivery.public(alert.channel, said, thread_ts=alert.ts)
