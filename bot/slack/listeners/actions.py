"""Buttons on alerts and lists: Rerun, Resume, Open execution; the mute menu; a storm digest's
row menus and its "Rerun all failed"; on summaries: Cancel, Pause, Resume execution."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.control import CONTROLS, by_control_button
from bot.core.errors import UsageError
from bot.core.verbs import MUTATING, by_button
from bot.slack.commands.mutes import mute_from_alert
from bot.slack.digests import rerun_all
from bot.slack.home import HomeTabs
from bot.slack.interaction import Interaction
from bot.slack.render.buttons import ACTION_OPEN, button_index, parse_button_value
from bot.slack.render.digest import ACTION_DIGEST_ROW, ACTION_RERUN_ALL, parse_row_value
from bot.slack.render.messages import render_usage_error
from bot.slack.render.mute import ACTION_MUTE, parse_mute_value
from bot.slack.surfaces import Surfaces


async def accepted(
    surfaces: Surfaces, ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest
) -> Interaction | None:
    """Every click's start: ack first, then None for a request already taken (a replay, or the
    same click on another replica), else the click read once into an Interaction."""
    await ack()
    if not await surfaces.accepted_once(request.headers):
        return None
    return Interaction.from_block_action(body)


def register(app: AsyncApp, surfaces: Surfaces, home: HomeTabs) -> None:
    async def on_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest) -> None:
        await ack()
        # The payload is read once here; the work below keeps only what it needs, so the
        # payload is freed while the work waits its turn behind a burst.
        interaction = Interaction.from_block_action(body)
        value, spec = str(action.get("value") or ""), by_button(str(action.get("action_id")))
        from_home = body.get("container", {}).get("type") == "view"  # the App Home tab

        async def click() -> None:
            try:
                kind, event_id = parse_button_value(value)
            except UsageError as exc:
                if interaction.channel_id:
                    await surfaces.delivery.ephemeral(
                        interaction.channel_id, interaction.user_id, render_usage_error(exc)
                    )
                return
            if spec is None:
                return  # only the verbs' own action ids are registered below
            if interaction.alert is None:
                if from_home:
                    await home.act(spec.name, kind, event_id, interaction, listed=button_index(value))
                return  # otherwise a button outside a message (not ours): nothing to update
            await surfaces.act_on_alert(spec.name, kind, event_id, interaction)

        surfaces.after_ack(request.headers, interaction, click)

    @app.action(ACTION_MUTE)
    async def on_mute(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest) -> None:
        interaction = await accepted(surfaces, ack, body, request)
        if interaction is None:
            return
        option = action.get("selected_option") or {}
        try:
            kind, event_id, scope, duration = parse_mute_value(str(option.get("value") or ""))
        except UsageError as exc:
            await surfaces.answer(interaction, render_usage_error(exc))
            return
        await mute_from_alert(surfaces, interaction, kind, event_id, scope, duration)

    @app.action(ACTION_DIGEST_ROW)
    async def on_digest_row(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        interaction = await accepted(surfaces, ack, body, request)
        if interaction is None:
            return
        option = action.get("selected_option") or {}
        try:
            chosen = parse_row_value(str(option.get("value") or ""))
        except UsageError as exc:
            await surfaces.answer(interaction, render_usage_error(exc))
            return
        if chosen is None or interaction.alert is None:
            return  # "Open execution": a link Slack opened
        verb, kind, event_id, listed = chosen
        row = interaction.on(replace(interaction.alert, digest=True))
        await surfaces.act_on_alert(verb, kind, event_id, row, expected_index=listed)

    @app.action(ACTION_RERUN_ALL)
    async def on_rerun_all(ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest) -> None:
        interaction = await accepted(surfaces, ack, body, request)
        if interaction is not None:
            await rerun_all(surfaces, interaction)

    for verb in MUTATING:  # one button per mutating verb, from the registry
        if verb.button_action_id is not None:
            app.action(verb.button_action_id)(on_button)

    async def on_control(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        """Cancel / Pause / Resume execution on a followed execution's summary."""
        interaction = await accepted(surfaces, ack, body, request)
        if interaction is None:
            return
        spec = by_control_button(str(action.get("action_id")))
        async with surfaces.working():
            try:
                kind, execution_id = parse_button_value(str(action.get("value") or ""))
            except UsageError as exc:
                await surfaces.answer(interaction, render_usage_error(exc))
                return
            if spec is not None:
                await surfaces.control_execution(spec.name, execution_id, interaction, kind=kind)

    for control in CONTROLS.values():
        app.action(control.button_action_id)(on_control)

    @app.action(ACTION_OPEN)
    async def open_execution(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the URL; the click must still be acknowledged
