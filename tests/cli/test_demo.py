"""``codestream-bot demo``: the first command of the README, on a machine with nothing set up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.slack.render.plaintext import blocks_to_text, mrkdwn_to_text
from tests.harness import bot_cli

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it


@pytest.mark.timeout(240)  # above its own wait: a slow demo fails with its output, not a killed worker
async def test_demo_tells_the_whole_story_and_exits_0(tmp_path: Path) -> None:
    proc = await bot_cli("demo", "--json", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-3000:]
    for line in (
        "The alert appears in #cs-alerts",
        "[ Rerun ]  [ Resume ]  [ Open execution ]",
        "Rerun started",
        "Status: COMPLETED",
        "Fixed by rerun #2",
        "Done: 1 alert, 1 rerun sent to Code Stream, execution COMPLETED.",
        "Approval needed: payments-deploy #14",
        "Approved by @alice: looks good",
        "Done: 1 approval request, 1 decision sent to Code Stream.",
        "@alice ran deploy-api #1",
        "(env=prod, version=1.4.2)",
        "[ Cancel ]  [ Pause ]",
        "Done: 1 pipeline run from a form, 1 run sent to Code Stream.",
        "the API token saved in the git webhook expired or was revoked",
        "Who can fix it: fritz@example.com",
        "not starting its pipeline",
        "Done: 1 broken webhook explained, 0 pipeline started while it was broken.",
        "Git webhook storefront-main works again · 1 push of storefront-ci did not run",
        "[ 🔁 Rerun the newest push ]",
        "Missed pushes rerun by @alice: 1 started.",
        "Done: the webhook fixed, 1 rerun of its missed push sent to Code Stream.",
    ):
        assert line in text, line
    assert '"blocks": [' in text  # --json prints the Block Kit too
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - nothing left behind in the working directory


def test_plain_text_rendering_of_blocks() -> None:
    assert (
        mrkdwn_to_text(
            "*Branch* <https://x/y|payments-ci #7> by <@U0ALICE> &lt;tag&gt;", lambda uid: {"U0ALICE": "alice"}[uid]
        )
        == "Branch payments-ci #7 (https://x/y) by @alice <tag>"
    )
    blocks = json.loads(
        '[{"type":"header","text":{"type":"plain_text","text":"Title"}},'
        '{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Go"}}]}]'
    )
    assert blocks_to_text(blocks) == "Title\n=====\n  [ Go ]"
