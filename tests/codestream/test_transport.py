"""The Code Stream client's transport (httpx over aiohttp) honours HTTP(S)_PROXY and NO_PROXY as
httpx did: an operator whose Code Stream is reached through a proxy keeps working."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.codestream.factory import pooled_http


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A forward proxy on loopback that answers every request itself, recording its target."""
    seen: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"via": "proxy"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_requests_go_through_the_proxy_unless_no_proxy_names_the_host(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    http = pooled_http(timeout=5.0, connections=2)
    try:
        answer = await http.get("http://vra.example.invalid/codestream/api/about")
        assert answer.json() == {"via": "proxy"}
        assert seen == ["http://vra.example.invalid/codestream/api/about"]
        with pytest.raises(Exception, match="could not connect"):  # direct: no such host, no proxy asked
            await http.get("http://direct.invalid/codestream/api/about")
        assert len(seen) == 1
    finally:
        await http.aclose()
