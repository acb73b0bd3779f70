"""Git webhooks: listed and read as the spec documents them, without their secrets; the
simulator's pushes through a webhook whose API token expired are trigger failures until the
webhook is saved again."""

from __future__ import annotations

from bot.codestream.client import CodeStreamClient
from bot.codestream.models import GitEvent, parse_event
from bot.simulator import CodeStreamSimulator
from tests.spec import SPEC_FILES, check_request


async def test_webhooks_are_read_without_their_secrets(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    doc = sim.webhooks.add("payments-main", project="Payments", createdBy="fritz@example.com")
    [listed] = await client.list_git_webhooks(filter="project eq 'Payments'")
    read = await client.get_git_webhook(str(doc["id"]))
    for webhook in (listed, read):
        assert webhook.name == "payments-main" and webhook.pipeline == "payments-ci"
        assert webhook.updated_by == "fritz@example.com" and webhook.server_webhook_id == doc["serverWebhookId"]
        shown = repr(webhook) + webhook.model_dump_json()
        assert doc["refreshToken"] not in shown and doc["secretToken"] not in shown
    requests = [r for r in sim.requests if "/git-webhooks" in r.path]
    for spec_file in SPEC_FILES:
        assert [p for r in requests for p in check_request(r.method, r.path, r.query, bool(r.body), spec_file)] == []


async def test_a_push_through_an_expired_webhook_is_a_trigger_failure_until_it_is_saved(
    sim: CodeStreamSimulator,
) -> None:
    doc = sim.webhooks.add("payments-main", expired=True)
    failed = parse_event("git", sim.webhooks.push(str(doc["id"]), subject="Fix totals"))
    assert failed.is_failure and failed.execution_link is None and "Refresh token" in (failed.message or "")
    assert isinstance(failed, GitEvent) and failed.server_webhook_id == doc["serverWebhookId"]
    saved = sim.webhooks.save(str(doc["id"]), {"refreshToken": "new-token"}, "alice@example.com")
    assert saved["updatedBy"] == "alice@example.com"
    started = parse_event("git", sim.webhooks.push(str(doc["id"]), subject="Fix totals again"))
    assert not started.is_failure and started.execution_link is not None


async def test_gerrit_listeners_and_registry_webhooks_are_read_without_their_secrets(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    listener = sim.triggers.add_listener("gerrit main", project="Payments & Co", createdBy="gerd@example.com")
    registry = sim.triggers.add_registry_webhook("api-images", project="Payments", createdBy="dora@example.com")
    read = await client.get_gerrit_listener("Payments & Co", "gerrit main")
    [listed] = await client.list_registry_webhooks(filter="project eq 'Payments'")
    assert (read.name, read.updated_by) == ("gerrit main", "gerd@example.com")
    assert (listed.name, listed.repo_name, listed.updated_by) == ("api-images", "payments/api", "dora@example.com")
    shown = repr(read) + read.model_dump_json() + repr(listed) + listed.model_dump_json()
    for secret in (listener["apiToken"], registry["refreshToken"], registry["secretToken"]):
        assert secret not in shown
    requests = [r for r in sim.requests if "/gerrit-listeners" in r.path or "/registry-webhooks" in r.path]
    assert len(requests) == 2
    for spec_file in SPEC_FILES:
        assert [p for r in requests for p in check_request(r.method, r.path, r.query, bool(r.body), spec_file)] == []
