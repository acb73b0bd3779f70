"""Cursors: named values one replica leaves for another."""

from __future__ import annotations

from bot.store import Store


async def test_cursors(store: Store, store2: Store) -> None:
    assert await store.cursors.get("git-events") is None
    await store.cursors.set("git-events", "2024-05-01T12:00:00Z")
    assert await store2.cursors.get("git-events") == "2024-05-01T12:00:00Z"
    await store2.cursors.set("git-events", "2024-05-01T12:05:00Z")
    assert await store.cursors.get("git-events") == "2024-05-01T12:05:00Z"
    assert await store.cursors.get("gerrit-events") is None
