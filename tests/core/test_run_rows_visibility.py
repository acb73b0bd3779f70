"""Audit rows that name no event (a pipeline run, an execution's cancel, an approval) are read
by the same rule on the Home tab as in ``/codestream audit``: a show rule limited to event kinds
does not decide them one way in one place and the other way in the other."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from bot.core.access import Viewer
from bot.core.access.policy import build_policy
from bot.core.audit import AuditQuery
from bot.core.audit_trail import AuditTrail
from bot.core.home import HomeQueries
from bot.core.recent_failures import RecentFailures
from bot.store import ActionRecord, open_store

CONFIG = {"rules": [{"users": ["U0BOB"], "actions": ["show"], "kinds": ["git"]}]}


@pytest.mark.parametrize("kind", ["pipeline", "execution", "approval"])
async def test_home_and_audit_agree_on_rows_of_no_event_kind(tmp_path: Path, kind: str) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        policy = build_policy(CONFIG, allowed_users=None, allowed_usergroups=None, allowed_channels=None, groups=None)
        row = ActionRecord(
            kind=kind, event_id="k1", action="run", actor_id="U0BOB", surface="slash", status="started",
            project="Payments", pipeline="deploy-api", created_at=store.now(),
        )  # fmt: skip
        await store.actions.record(row)
        viewer = Viewer("U0BOB", None)
        home = HomeQueries(store, cast(RecentFailures, cast(Any, None)), policy)
        on_home = await home.actions_of(viewer, store.now() - timedelta(hours=1), scan=50)
        in_audit, _ = await AuditTrail(store, policy).page(viewer, AuditQuery(actor_id="U0BOB"))
        assert [r.event_id for r in on_home] == [r.event_id for r in in_audit]
    finally:
        await store.close()
