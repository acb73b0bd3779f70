"""What people do on a storm digest beyond one row's menu: **Rerun all failed**, and a reply in
its thread (which names no single failure, so it is answered with what to do instead)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final

from bot.codestream.models import EventKind, as_kind
from bot.core.digests import SAVE_WAIT, RowState, still_failing
from bot.core.requests import new_request_id
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage, fallback_text, section
from bot.slack.render.digest import render_rerun_all, render_rerun_all_refused
from bot.slack.surfaces import Surfaces

log = logging.getLogger(__name__)

# One "Rerun all" per digest at a time, on any replica (each row's intent claim is what makes each
# run happen once; this keeps a second click from answering twelve times "already in hand").
RERUN_ALL_CLAIM_SECONDS: Final = 600.0

THREAD_ANSWER: Final = (
    "This thread belongs to a digest of several failures, so a reply here names none of them. "
    "Use a row's ⋯ menu (Rerun, Resume), *Rerun all failed*, or `/codestream rerun <event id>`."
)


def thread_answer() -> SlackMessage:
    return SlackMessage(text=fallback_text(THREAD_ANSWER), blocks=[section(THREAD_ANSWER)])


async def rerun_all(surfaces: Surfaces, interaction: Interaction) -> None:
    """Rerun every row of the digest that still fails, each through ``perform`` (access, one
    intent per event, audit), then say in the thread what came of it."""
    alert = interaction.alert
    board = surfaces.notifier.digests
    if alert is None or board is None:
        return
    async with surfaces.working():
        try:
            digest = await board.at(alert.channel, alert.ts, wait=SAVE_WAIT)
        except Exception:
            log.exception("rerun all: the digest could not be read")
            digest = None
        if digest is None or digest.id is None:
            refusal = "That list is not saved yet (or not one of mine): nothing was rerun; try again in a minute."
            await surfaces.answer(interaction, render_rerun_all_refused(refusal))
            return
        key, holder = f"digest-all:{digest.id}", new_request_id()
        claim = await surfaces.store.claim(key, holder, RERUN_ALL_CLAIM_SECONDS, {"user": interaction.user_id})
        if not claim.won:
            who = claim.data.get("user")
            by = f" by <@{who}>" if isinstance(who, str) and who.isalnum() else ""
            refusal = f"Already in hand: a *Rerun all*{by} on this list is running."
            await surfaces.answer(interaction, render_rerun_all_refused(refusal))
            return
        try:
            read = await surfaces.store.get_digest(digest.id)
            rows = [r for r in read[1] if still_failing(RowState.read(r.state))] if read is not None else []
            targets: list[tuple[EventKind, str, int | None]] = []
            for row in rows:
                kind = as_kind(row.kind)
                if kind is not None:
                    targets.append((kind, row.event_id, row.execution_index))
            if not targets:
                nothing = "Nothing left to rerun: every failure in this list has been acted on or fixed."
                await surfaces.answer(interaction, render_rerun_all_refused(nothing))
                return
            outcomes = await surfaces.act_on_rows(interaction.on(replace(alert, digest=True)), targets)
            await surfaces.delivery.public(
                alert.channel, render_rerun_all(interaction.user_id, outcomes), thread_ts=alert.ts
            )
        finally:
            try:
                await surfaces.store.release_claim(key, holder)
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                log.warning("could not release the rerun-all claim: %s", type(exc).__name__)
