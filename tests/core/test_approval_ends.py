"""How an approval that is no longer pending is said to have ended: a decision that went through
the bot's own account was made in Slack, by the person whose decision the bot sent."""

from __future__ import annotations

from pathlib import Path

from bot.codestream.user_operations import UserOperation
from bot.core.approvals.watcher import end_of
from bot.store import ActionRecord, open_store

OP = "6b2e4c1a-0000-4000-8000-000000000001"


def decided(by: str) -> UserOperation:
    return UserOperation.model_validate({"id": OP, "status": "APPROVED", "respondedBy": by, "responseMessage": "ok"})


async def test_a_decision_through_the_bots_account_is_shown_as_the_slack_persons(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        # Alice's approve was sent (its row may still be pending while another request reads
        # the approval as ended: the race that drew "by svc-codestream-bot in Code Stream").
        row = ActionRecord(kind="approval", event_id=OP, action="approve", actor_id="U0ALICE", surface="button")
        await store.actions.record(row.model_copy(update={"status": "pending"}))
        await store.actions.record(row.model_copy(update={"actor_id": "U0BOB", "action": "reject", "status": "ended"}))
        end = await end_of(store, decided("svc-codestream-bot"), "svc-codestream-bot")
        assert end is not None and (end.decided_in, end.by) == ("slack", "U0ALICE")
        same = await end_of(store, decided("svc-codestream-bot@example.com"), "svc-codestream-bot")
        assert same is not None and (same.decided_in, same.by) == ("slack", "U0ALICE")
        # Decided by a person in Code Stream: said so, with their name.
        vra = await end_of(store, decided("fritz@example.com"), "svc-codestream-bot")
        assert vra is not None and (vra.decided_in, vra.by) == ("codestream", "fritz@example.com")
        assert await end_of(store, UserOperation.model_validate({"id": OP, "status": "ACTIVE"}), None) is None
    finally:
        await store.close()
