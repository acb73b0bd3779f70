"""perform(): the one path every surface takes, against the simulator and a real store."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.codestream.errors import Forbidden, NotFound
from bot.codestream.models import Event
from bot.codestream.transport import TransportFailure
from bot.core.access import Rule, RulePolicy
from bot.core.errors import StoreUnavailable
from bot.core.perform import EventPerformer as Actions
from bot.core.requests import ActionRequest, Actor, Verb
from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator, Fault
from bot.store import Store, open_store
from tests.builders import event_actions
from tests.conftest import ClientFactory

GIT_EVENT = f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}"
ALICE = Actor("U0ALICE", "alice")
BOB = Actor("U0BOB", "bob")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    yield opened
    await opened.close()


@pytest.fixture
def actions(client: CodeStreamClient, store: Store) -> Actions:
    return event_actions(client, store, lambda eid: f"https://vra.test/ui/{eid}")


def request(verb: Verb = "rerun", actor: Actor = ALICE, event_id: str = SAMPLE_FAILED_GIT_ID) -> ActionRequest:
    return ActionRequest(verb=verb, kind="git", event_id=event_id, actor=actor, surface="slash", channel_id="C0ALERTS")


async def test_rerun_starts_once_and_is_audited(actions: Actions, sim: CodeStreamSimulator, store: Store) -> None:
    before = sim.get_event("git", SAMPLE_FAILED_GIT_ID)["executionIndex"]
    outcome = await actions.perform(request())
    assert outcome.status == "started"
    assert outcome.event is not None and outcome.event.execution_index == before + 1
    assert outcome.execution_url == f"https://vra.test/ui/{outcome.event.execution_id}"
    assert sim.count("POST", GIT_EVENT) == 1
    [row] = await store.actions.list()
    assert (row.status, row.actor_id, row.surface, row.action) == ("started", "U0ALICE", "slash", "rerun")
    assert row.execution_id == outcome.event.execution_id and row.finished_at is not None


async def test_concurrent_double_clicks_post_once_and_point_to_the_winner(
    actions: Actions, sim: CodeStreamSimulator, store: Store
) -> None:
    outcomes = await asyncio.gather(*(actions.perform(request(actor=a)) for a in [ALICE, BOB, ALICE, BOB, ALICE]))
    assert sim.count("POST", GIT_EVENT) == 1
    statuses = sorted(o.status for o in outcomes)
    assert statuses == ["duplicate"] * 4 + ["started"]
    winner = next(o for o in outcomes if o.status == "started")
    for dup in (o for o in outcomes if o.status == "duplicate"):
        assert dup.prior is not None and dup.prior.actor == winner.request.actor
    rows = await store.actions.list()
    assert sorted(r.status for r in rows) == statuses
    assert all(r.duplicate_of in (None, winner.action_id) for r in rows if r.status == "duplicate")


async def test_a_later_duplicate_sees_the_winners_execution(actions: Actions, sim: CodeStreamSimulator) -> None:
    first = await actions.perform(request(actor=ALICE))
    second = await actions.perform(request(actor=BOB))
    assert second.status == "duplicate" and second.prior is not None
    assert second.prior.actor.name == "alice" and second.prior.status == "started"
    assert second.prior.execution_url == first.execution_url
    assert sim.count("POST", GIT_EVENT) == 1


async def test_one_intent_per_event_whatever_the_verb(actions: Actions, sim: CodeStreamSimulator) -> None:
    assert (await actions.perform(request("rerun"))).status == "started"
    resume = await actions.perform(request("resume", actor=BOB))
    assert resume.status == "duplicate" and resume.prior is not None
    assert (resume.prior.verb, resume.prior.actor.name, resume.prior.status) == ("rerun", "alice", "started")
    assert sim.count("POST", GIT_EVENT) == 1


async def test_rerun_and_resume_at_the_same_time_start_one_run(actions: Actions, sim: CodeStreamSimulator) -> None:
    sim.inject(Fault(method="POST", path=GIT_EVENT, delay=0.3))  # both are in flight together
    outcomes = await asyncio.gather(actions.perform(request("rerun")), actions.perform(request("resume", actor=BOB)))
    assert sorted(o.status for o in outcomes) == ["duplicate", "started"]
    assert sim.count("POST", GIT_EVENT) == 1


async def test_unknown_event_fails_without_a_post_and_is_audited(
    actions: Actions, sim: CodeStreamSimulator, store: Store
) -> None:
    outcome = await actions.perform(request(event_id="00000000-0000-4000-8000-000000000000"))
    assert outcome.status == "failed" and isinstance(outcome.error, NotFound)
    assert sim.count("POST", "/codestream/api/") == 0
    [row] = await store.actions.list()
    assert (row.status, row.error_class) == ("failed", "NotFound")


async def test_a_definite_refusal_releases_the_claim_so_a_retry_can_run(
    actions: Actions, sim: CodeStreamSimulator
) -> None:
    sim.inject(Fault(method="POST", path=GIT_EVENT, status=403, body={"message": "no"}, times=1))
    failed = await actions.perform(request())
    assert failed.status == "failed" and isinstance(failed.error, Forbidden)
    retried = await actions.perform(request())
    assert retried.status == "started"
    assert sim.count("POST", GIT_EVENT) == 2


async def test_nothing_sent_is_not_started_and_releases_the_claim(
    actions: Actions, sim: CodeStreamSimulator, store: Store
) -> None:
    assert sim.base_url is not None
    port = int(sim.base_url.rsplit(":", 1)[1])

    class CodeStreamGoesAway:
        async def claimed(self, target: Event) -> None:
            await sim.stop()  # after the read, before the POST: the POST's connection is refused

    outcome = await actions.perform(request(), CodeStreamGoesAway())
    assert outcome.status == "not_started" and isinstance(outcome.error, TransportFailure)
    await sim.start(port=port)
    assert (await actions.perform(request(actor=BOB))).status == "started"
    assert sim.count("POST", GIT_EVENT) == 1
    assert [r.status for r in await store.actions.list()] == ["started", "not_started"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(method="POST", path=GIT_EVENT, reset=True, times=1),
        Fault(method="POST", path=GIT_EVENT, status=500, times=1),
        Fault(method="POST", path=GIT_EVENT, status=502, times=1),
        Fault(method="POST", path=GIT_EVENT, status=503, times=1),
        Fault(method="POST", path=GIT_EVENT, status=504, times=1),
    ],
    ids=["reset-after-send", "500", "502", "503", "504"],
)
async def test_a_request_that_may_have_reached_code_stream_is_unknown_and_stays_claimed(
    actions: Actions, sim: CodeStreamSimulator, store: Store, fault: Fault
) -> None:
    sim.inject(fault)
    outcome = await actions.perform(request())
    assert outcome.status == "unknown" and outcome.settle_by is not None
    again = await actions.perform(request("resume", actor=BOB))
    assert again.status == "duplicate" and again.prior is not None and again.prior.status == "unknown"
    assert sim.count("POST", GIT_EVENT) == 1
    assert [r.status for r in await store.actions.list()] == ["duplicate", "unknown"]


async def test_unknown_outcome_keeps_the_claim_and_is_never_retried(
    make_client: ClientFactory, store: Store, sim: CodeStreamSimulator
) -> None:
    # The response is lost after Code Stream ran it and the bot cannot read the event back
    # (client.act's read-back failures are covered in test_client): the outcome is unknown.
    client = make_client(retry=RetryPolicy(attempts=1, reconcile_reads=0))
    actions = event_actions(client, store)
    sim.inject(Fault(method="POST", path=GIT_EVENT, reset=True, after_processing=True, times=1))
    outcome = await actions.perform(request())
    assert outcome.status == "unknown"
    again = await actions.perform(request(actor=BOB))
    assert again.status == "duplicate" and again.prior is not None and again.prior.status == "unknown"
    assert sim.count("POST", GIT_EVENT) == 1
    assert [r.status for r in await store.actions.list()] == ["duplicate", "unknown"]


async def test_show_reads_without_acting_or_auditing(actions: Actions, sim: CodeStreamSimulator, store: Store) -> None:
    outcome = await actions.perform(request("show"))
    assert outcome.status == "shown" and outcome.event is not None
    assert outcome.execution_url is not None
    assert sim.count("POST", "/codestream/api/") == 0
    assert await store.actions.list() == []


async def test_denied_requests_never_reach_code_stream_and_are_audited(
    client: CodeStreamClient, store: Store, sim: CodeStreamSimulator
) -> None:
    only_carol = RulePolicy([Rule(users=["U0CAROL"], projects=["Payments"]), Rule(actions=["show"])], groups=None)
    actions = event_actions(client, store, access=only_carol)
    outcome = await actions.perform(request())
    assert outcome.status == "denied"
    assert str(outcome.error) == "You are not <@U0CAROL>, which may rerun Payments pipelines (payments-ci)."
    assert sim.count("POST", "/codestream/api/") == 0
    [row] = await store.actions.list()
    assert row.status == "denied" and row.error_class == "AccessDenied"


async def test_store_down_means_no_post(client: CodeStreamClient, tmp_path: Path, sim: CodeStreamSimulator) -> None:
    (tmp_path / "gone").mkdir()
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'bot.db'}")
    await store.close()
    shutil.rmtree(tmp_path / "gone")  # the database disappears under the bot
    actions = event_actions(client, store)
    outcome = await actions.perform(request())
    assert outcome.status == "failed" and isinstance(outcome.error, StoreUnavailable)
    assert sim.count("POST", "/codestream/api/") == 0


async def test_200_concurrent_actions_on_sqlite_each_run_once(
    make_client: ClientFactory, store: Store, sim: CodeStreamSimulator
) -> None:
    # Many writers at once on one SQLite file: every write transaction begins IMMEDIATE, so they
    # queue behind busy_timeout instead of failing with "database is locked".
    client = make_client(timeout=30.0)
    actions = event_actions(client, store)
    events = [sim.add_event("git", executionStatus="FAILED")["id"] for _ in range(200)]
    outcomes = await asyncio.gather(*(actions.perform(request(event_id=e, actor=BOB)) for e in events))
    assert [o.status for o in outcomes] == ["started"] * 200
    assert sim.count("POST", "/codestream/api/git-events/") == 200
    rows = await store.actions.list(limit=500)
    assert len(rows) == 200 and {r.status for r in rows} == {"started"}
