"""httpx's interface on aiohttp's connection pool: the Code Stream client keeps ``httpx`` (its
requests, responses and errors) and sends through aiohttp, which slack_sdk already uses and which
costs a third of httpcore's CPU per request on this workload (docs/PERFORMANCE.md).

The one thing a transport must get right here is *whether the request may have left*: the
client retries, and tells people "nothing was sent", only after errors raised before any byte
was written (``bot.codestream.transport._NOT_SENT``). So aiohttp's errors are mapped by that,
not by name: failing to connect (or to get a connection from the pool in time) is
``httpx.ConnectError``/``ConnectTimeout``; anything after the connection was made — a reset, a
server that hung up, a read timeout, a broken body — may have reached Code Stream and is a
``ReadTimeout``/``RemoteProtocolError``/``ReadError``.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Final

import aiohttp
import httpx

_CHUNK: Final = 64 * 1024


@contextlib.contextmanager
def _body_errors() -> Iterator[None]:
    """Errors while the response body is read: the request was sent."""
    try:
        yield
    except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
        raise httpx.ReadTimeout(f"read timed out ({type(exc).__name__})") from exc
    except aiohttp.ClientError as exc:
        raise httpx.ReadError(f"the answer broke off ({type(exc).__name__})") from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _body_errors():
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport over one ``aiohttp.ClientSession`` of at most ``connections``
    connections (made on first use, inside the running loop)."""

    def __init__(self, *, verify: ssl.SSLContext | bool, connections: int) -> None:
        self._verify = verify
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0, ssl=self._verify)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes (and the size limit counts decoded bytes)
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies, as before
                trust_env=True,  # HTTP(S)_PROXY / NO_PROXY, as httpx honoured them
                skip_auto_headers=("User-Agent",),  # httpx's headers are sent as they are
            )
            # aiohttp sends a GET, PUT or DELETE again, once, when a reused connection breaks.
            # Every retry is the client's decision (its policy, and never one of an action that
            # may have reached Code Stream): off. aiohttp's own test client switches it so.
            self._session._retry_connection = False
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connect, pool, read = timeouts.get("connect"), timeouts.get("pool"), timeouts.get("read")
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if pool is None or connect is None else pool + connect,  # a free slot, then connect
            sock_connect=connect,
            sock_read=read,
        )
        body = await request.aread()
        try:
            response = await self._open().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            )
        except aiohttp.ConnectionTimeoutError as exc:  # no connection in time: nothing was written
            raise httpx.ConnectTimeout(f"connect timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS, TLS: nothing was written
            raise httpx.ConnectError(f"could not connect ({type(exc).__name__})") from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise httpx.UnsupportedProtocol(f"cannot send to this URL ({type(exc).__name__})") from exc
        except (TimeoutError, aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(f"no answer in time ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:  # after connecting: the request may have reached the server
            raise httpx.RemoteProtocolError(f"the connection broke ({type(exc).__name__})") from exc
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_Body(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
