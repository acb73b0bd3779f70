"""``codestream-bot demo``: the whole story offline, in one process, with no Slack or Code Stream.

A git push fails its pipeline → Code Stream's webhook wakes the bot → the alert appears in
#cs-alerts → alice clicks Rerun → the summary appears in the alert's thread → the bot follows the
new execution to COMPLETED and updates both messages; then a deploy waits on a manual approval,
the request appears, alice approves it with a message. Each Slack message is printed as a channel
would show it (and as Block Kit JSON with ``--json``). Exits 0 when the story completed.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, TypeVar

import httpx

from bot.app.logs import configure_logging
from bot.app.serve import RunningBot, Timings
from bot.app.settings import load_settings
from bot.core.followup.timing import FollowupTiming
from bot.simulator import CodeStreamSimulator
from bot.simulator.slack_api import Message, SlackSender, SlackStandIn
from bot.slack.render.approval import ACTION_APPROVE, MESSAGE_BLOCK, MESSAGE_INPUT
from bot.slack.render.buttons import ACTION_RERUN
from bot.slack.render.plaintext import blocks_to_text
from bot.slack.render.webhook_alert import ACTION_RERUN_NEWEST, ACTION_WEBHOOK_CHECK

CHANNEL = "C0ALERTS"
# Credentials of the in-process stand-ins: nothing real.
BOT_TOKEN = "xoxb-demo-token"  # noqa: S105
SIGNING_SECRET = "demo-signing-secret-0123456789abcdef"  # noqa: S105
WEBHOOK_TOKEN = "demo-webhook-token"  # noqa: S105
T = TypeVar("T")


class Story:
    def __init__(self, out: TextIO, as_json: bool, slack: SlackStandIn) -> None:
        self.out = out
        self.as_json = as_json
        self.slack = slack
        self.step = 0

    def say(self, text: str) -> None:
        self.step += 1
        print(f"\n{self.step}. {text}", file=self.out, flush=True)

    def name(self, user_id: str) -> str:
        user = self.slack.users.get(user_id)
        return str(user.get("name")) if isinstance(user, dict) else user_id

    def show(self, message: Message, where: str) -> None:
        bar = f"┌── {where} ─ codestream-bot"
        print(bar, file=self.out)
        body = blocks_to_text(message.blocks, self.name) or message.text
        for line in body.splitlines():
            print(f"│ {line}", file=self.out)
        print("└" + "─" * (len(bar) - 1), file=self.out, flush=True)
        if self.as_json:
            print(json.dumps({"text": message.text, "blocks": message.blocks}, indent=2), file=self.out, flush=True)


async def until(predicate: Callable[[], T | None], what: str, within: float = 30.0) -> T:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def run_demo(out: TextIO, *, as_json: bool = False) -> bool:
    configure_logging("ERROR", "text")  # the story is the output; problems still show
    with tempfile.TemporaryDirectory(prefix="codestream-bot-demo-") as tmp:
        async with (
            CodeStreamSimulator(seed=False, execution_duration=3.0) as sim,
            SlackStandIn(bot_token=BOT_TOKEN) as slack,
        ):
            story = Story(out, as_json, slack)
            assert sim.base_url is not None
            settings = load_settings(
                {
                    "CODESTREAM_URL": sim.base_url,
                    "CODESTREAM_REFRESH_TOKEN": "sim-refresh-token",
                    "CODESTREAM_UI_URL": "https://vra.example.com/codestream/#/executions/{id}",
                    "SLACK_BOT_TOKEN": BOT_TOKEN,
                    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "SLACK_API_URL": slack.api_url,
                    "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}",
                    "BOT_ALERT_CHANNEL": CHANNEL,
                    "BOT_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
                    "BOT_WATCH_INTERVAL": "30",
                    "BOT_APPROVALS_INTERVAL": "1",
                    "BOT_LOG_LEVEL": "WARNING",
                }
            )
            fast = FollowupTiming(first_poll=1.0, initial_interval=1.0, max_interval=2.0)
            async with RunningBot(settings, timings=Timings(followup=fast)) as bot:
                return await _story(story, sim, slack, bot)


async def _story(story: Story, sim: CodeStreamSimulator, slack: SlackStandIn, bot: RunningBot) -> bool:
    assert bot.url is not None
    story.say("alice pushes to payments-api; the payments-ci pipeline fails.")
    event = sim.add_event(
        "git",
        pipeline="payments-ci",
        project="Payments",
        repo="payments-api",
        targetBranch="main",
        owner="alice",
        subject="Fix rounding in invoice totals",
        executionStatus="FAILED",
    )
    story.say("Code Stream's FAILURE webhook wakes the bot (POST /hooks/codestream).")
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"{bot.url}/hooks/codestream", headers={"X-Codestream-Bot-Token": WEBHOOK_TOKEN})
    print(f"   -> HTTP {reply.status_code}", file=story.out)

    def bot_message(channel: str, thread: str | None = None) -> Message | None:
        messages = slack.thread(channel, thread)[1:] if thread else slack.messages(channel)
        return next((m for m in messages if m.user == "U0BOT"), None)

    def edited(ts: str, marker: str) -> Message | None:
        message = slack.message(CHANNEL, ts)
        return message if message is not None and marker in message.text + json.dumps(message.blocks) else None

    alert = await until(lambda: bot_message(CHANNEL), "the alert")
    story.say("The alert appears in #cs-alerts:")
    story.show(alert, "#cs-alerts")

    story.say("alice clicks Rerun (and confirms).")
    value = next(
        e["value"]
        for b in alert.blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == ACTION_RERUN
    )
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack) as send:
        click = await send.block_action(ACTION_RERUN, value, user="U0ALICE", channel=CHANNEL, message_ts=alert.ts)
    print(f"   -> acknowledged: HTTP {click.status_code}", file=story.out)

    summary = await until(lambda: bot_message(CHANNEL, alert.ts), "the summary")
    story.say("The summary is posted in the alert's thread:")
    story.show(summary, "thread in #cs-alerts")

    story.say("The bot follows the new execution and updates the summary in place...")
    final = await until(lambda: edited(summary.ts, "COMPLETED"), "COMPLETED", within=45)
    story.show(final, "thread in #cs-alerts (updated)")
    fixed = await until(lambda: edited(alert.ts, "Fixed by"), "the alert marked fixed")
    story.say("...and marks the alert fixed:")
    story.show(fixed, "#cs-alerts (updated)")
    reruns = sim.count("POST", f"/codestream/api/git-events/{event['id']}")
    approved = await _approval(story, sim, slack, bot)
    runs = await _pipeline_run(story, sim, slack, bot)
    broken, missed = await _broken_webhook(story, sim, slack, bot)
    print(f"\nDone: 1 alert, {reruns} rerun sent to Code Stream, execution COMPLETED.", file=story.out)
    print(f"Done: 1 approval request, {approved} decision sent to Code Stream.", file=story.out)
    print(f"Done: 1 pipeline run from a form, {runs} run sent to Code Stream.", file=story.out)
    print(f"Done: 1 broken webhook explained, {broken} pipeline started while it was broken.", file=story.out)
    print(f"Done: the webhook fixed, {missed} rerun of its missed push sent to Code Stream.", file=story.out)
    return reruns == 1 and approved == 1 and runs == 1 and broken == 0 and missed == 1


async def _approval(story: Story, sim: CodeStreamSimulator, slack: SlackStandIn, bot: RunningBot) -> int:
    """The extra step: the deploy pipeline waits on a manual approval; alice approves it."""
    assert bot.url is not None
    story.say("payments-deploy waits for a manual approval in Code Stream (approvers: alice@example.com).")
    operation = sim.user_operations.add(
        pipelineName="payments-deploy",
        project="Payments",
        executionIndex=14,
        requestedBy="fritz",
        summary="Deploy payments-api 1.4.2 to production",
        approvers=["alice@example.com"],
    )

    def request() -> Message | None:
        return next((m for m in slack.messages(CHANNEL) if m.user == "U0BOT" and "Approval needed" in m.text), None)

    posted = await until(request, "the approval request")
    story.say("The approvals watcher posts the request:")
    story.show(posted, "#cs-alerts")
    story.say("alice clicks Approve, types a response message and submits the form.")
    value = next(
        e["value"]
        for b in posted.blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == ACTION_APPROVE
    )
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack) as send:
        await send.block_action(ACTION_APPROVE, value, user="U0ALICE", channel=CHANNEL, message_ts=posted.ts)
        opened = await until(lambda: slack.views, "the form")
        values = {MESSAGE_BLOCK: {MESSAGE_INPUT: {"type": "plain_text_input", "value": "looks good"}}}
        await send.view_submission(opened[-1]["view"], "U0ALICE", values=values)

    def decided() -> Message | None:
        message = slack.message(CHANNEL, posted.ts)
        return message if message is not None and "Approved" in json.dumps(message.blocks) else None

    story.say("The request is updated in place:")
    story.show(await until(decided, "the decision"), "#cs-alerts (updated)")
    return sim.count("POST", f"/codestream/api/user-operations/{operation['id']}")


async def _pipeline_run(story: Story, sim: CodeStreamSimulator, slack: SlackStandIn, bot: RunningBot) -> int:
    """The last step: alice runs the deploy pipeline; the bot asks for the missing input."""
    assert bot.url is not None
    sim.pipelines.add(
        "deploy-api",
        project="Payments",
        inputs={"env": "staging", "version": "", "registry_token": ""},
        descriptions={"env": "Target environment", "version": "Image tag to deploy"},
        mandatory=("env", "version"),
    )
    story.say("alice types `/codestream run deploy-api version=1.4.2`; `env` is mandatory, so a form opens.")
    seen = len(slack.views)
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack) as send:
        await send.slash_command("run deploy-api version=1.4.2", user="U0ALICE", channel=CHANNEL)
        opened = await until(lambda: slack.views[seen:], "the run form")
        view = opened[-1]["view"]
        story.say("She picks env=prod and submits the form.")
        values = {
            b["block_id"]: {"value": {"type": "plain_text_input", "value": b["element"].get("initial_value")}}
            for b in view["blocks"]
            if b.get("type") == "input"
        }
        values["input:env"] = {"value": {"type": "plain_text_input", "value": "prod"}}
        await send.view_submission({**view, "id": opened[-1]["id"]}, "U0ALICE", values=values)

    def ran() -> Message | None:
        return next((m for m in slack.messages(CHANNEL) if m.user == "U0BOT" and " ran " in m.text), None)

    summary = await until(ran, "the run's summary")
    story.say("The channel sees who ran what, with Cancel and Pause while it runs:")
    story.show(summary, "#cs-alerts")

    def ended() -> Message | None:
        message = slack.message(CHANNEL, summary.ts)
        return message if message is not None and "COMPLETED" in message.text + json.dumps(message.blocks) else None

    story.show(await until(ended, "the run COMPLETED", within=45), "#cs-alerts (updated)")
    return sim.count("POST", "/codestream/api/pipelines/")


async def _broken_webhook(
    story: Story, sim: CodeStreamSimulator, slack: SlackStandIn, bot: RunningBot
) -> tuple[int, int]:
    """A git webhook whose API token expired: the push does not start its pipeline; the alert
    says why, how to fix it and who can; ``/codestream webhooks`` lists it."""
    assert bot.url is not None
    hook = sim.webhooks.add(
        "storefront-main", project="Storefront", repoName="storefront", pipeline="storefront-ci",
        expired=True, createdBy="fritz@example.com",
    )  # fmt: skip
    story.say("The API token saved in the storefront-main git webhook expires; bob pushes to storefront.")
    event = sim.webhooks.push(str(hook["id"]), subject="Add gift cards", owner="bob")
    async with httpx.AsyncClient() as http:
        await http.post(f"{bot.url}/hooks/codestream", headers={"X-Codestream-Bot-Token": WEBHOOK_TOKEN})

    def alert() -> Message | None:
        return next(
            (m for m in slack.messages(CHANNEL) if m.user == "U0BOT" and str(event["id"]) in json.dumps(m.blocks)),
            None,
        )

    story.say("Code Stream received the push but could not start the pipeline. The alert says why and what to do:")
    story.show(await until(alert, "the trigger failure's alert"), "#cs-alerts")
    story.say("alice asks which webhooks are not starting their pipelines: `/codestream webhooks`.")
    seen = len(slack.responses)
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack) as send:
        await send.slash_command("webhooks", user="U0ALICE", channel=CHANNEL)
    answer = await until(lambda: slack.responses[seen:], "the webhooks answer")
    blocks = answer[-1].body.get("blocks") or []
    print(blocks_to_text(blocks, story.name), file=story.out)
    started_while_broken = 0 if sim.get_event("git", str(event["id"])).get("executionLink") is None else 1
    await _webhook_fixed(story, sim, slack, bot, str(hook["id"]), await until(alert, "the alert"))
    missed = sim.count("POST", f"/codestream/api/git-events/{event['id']}")
    return started_while_broken, missed


async def _webhook_fixed(
    story: Story, sim: CodeStreamSimulator, slack: SlackStandIn, bot: RunningBot, hook_id: str, alert: Message
) -> int:
    """fritz saves the webhook with a new token; alice clicks Check again; the alert offers to
    rerun the push it missed, and alice does. Returns every event rerun sent so far."""
    story.say("fritz saves the webhook with a new API token; alice clicks Check again on the alert.")
    sim.webhooks.save(hook_id, {"refreshToken": "a-new-api-token"}, saved_by="fritz@example.com")
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack) as send:
        await send.block_action(ACTION_WEBHOOK_CHECK, user="U0ALICE", channel=CHANNEL, message_ts=alert.ts)

    def offered() -> Message | None:
        now = slack.message(CHANNEL, alert.ts)
        return now if now is not None and ACTION_RERUN_NEWEST in json.dumps(now.blocks) else None

    story.say("The webhook was saved after the failure: the alert says it works again and offers the missed push:")
    story.show(await until(offered, "the alert offering the missed push"), "#cs-alerts (updated)")
    story.say("alice clicks Rerun the newest push and confirms.")
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack) as send:
        await send.block_action(ACTION_RERUN_NEWEST, user="U0ALICE", channel=CHANNEL, message_ts=alert.ts)

    def tally() -> Message | None:
        return next((m for m in slack.thread(CHANNEL, alert.ts) if "Missed pushes rerun by" in m.text), None)

    story.show(await until(tally, "the tally in the thread"), "thread in #cs-alerts")
    return sim.count("POST", "/codestream/api/git-events/")
