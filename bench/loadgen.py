"""The load generator, run as its own process so it never shares the server's event loop:
``python -m bench.loadgen SPEC.json`` (the benchmarks write the spec and start it).

The spec gives the URL, the signing secret, the number of requests in flight, the content type
and the request bodies (a warm-up list and a measured list). Each body is signed just before it
is sent, exactly as Slack signs (``v0:{timestamp}:{body}``, HMAC-SHA256), and POSTed on one of
``concurrency`` keep-alive HTTP/1.1 connections — a closed loop: each connection sends the next
body as soon as its previous one was answered. With ``prime``, every connection is opened (one
``GET /healthz`` each) before the first measured request, so a burst is not slowed by TCP
set-up.

The HTTP client is a minimal one on asyncio streams rather than httpx: httpx costs about 2 ms
of CPU per request, which on 2 cores capped the bare app's throughput at the generator's; this
one costs a small fraction of that (its CPU time is reported, so this can be checked).

Prints one JSON object on stdout: the latency of each measured request (seconds, from just
before the send until the whole HTTP response — for Slack requests, the ack — was read), the
count of each HTTP status, the measured phase's wall time, its first send and last answer (and
the warm-up's first send) on the system-wide monotonic clock (so another process can line them
up with its own events), and the generator's own CPU time during the measured phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def sign(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """``X-Slack-Signature``: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response, then the next.

    Deliberately minimal (Content-Length bodies only; uvicorn sends those for these responses)
    so that the generator spends far less CPU per request than the server under test."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
        """Send; read the status line, headers and body; return the status code."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        length, keep_alive = 0, True
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise RuntimeError("chunked responses are not supported")
            elif name == "connection" and value.strip().lower() == "close":
                keep_alive = False
        if length:
            await self.reader.readexactly(length)
        if not keep_alive:
            await self.close()
        return int(status_line.split(" ", 2)[1])


@dataclass
class Phase:
    latencies: list[float]
    statuses: Counter[str]
    first_send: float
    last_done: float
    elapsed: float
    cpu: float


async def _phase(
    connections: list[Connection], path: str, secret: str, content_type: str, bodies: list[bytes]
) -> Phase:
    latencies: list[float] = [0.0] * len(bodies)
    statuses: Counter[str] = Counter()
    next_index = 0
    first_send = 0.0

    async def worker(conn: Connection) -> None:
        nonlocal next_index, first_send
        while next_index < len(bodies):
            i = next_index
            next_index += 1
            body = bodies[i]
            ts = str(int(time.time()))
            headers = {
                "Content-Type": content_type,
                "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sign(secret, ts, body),
            }
            if not first_send:
                first_send = time.monotonic()
            started = time.perf_counter()
            try:
                statuses[str(await conn.request("POST", path, headers, body))] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError, RuntimeError) as exc:
                statuses[type(exc).__name__] += 1
                await conn.close()
            latencies[i] = time.perf_counter() - started

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(conn) for conn in connections[: len(bodies)]))
    elapsed = time.perf_counter() - t0
    return Phase(latencies, statuses, first_send, time.monotonic(), elapsed, time.process_time() - cpu0)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    parts = urlsplit(str(spec["url"]))
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    secret, content_type = str(spec["secret"]), str(spec["content_type"])
    connections = [Connection(host, port) for _ in range(int(spec["concurrency"]))]
    try:
        if spec.get("prime"):
            await asyncio.gather(*(conn.request("GET", "/healthz", {}) for conn in connections))
        warmup = [str(b).encode() for b in spec.get("warmup") or []]
        started: float | None = None
        if warmup:
            started = (await _phase(connections, parts.path, secret, content_type, warmup)).first_send
        bodies = [str(b).encode() for b in spec["bodies"]]
        measured = await _phase(connections, parts.path, secret, content_type, bodies)
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))
    return {
        "latencies": measured.latencies,
        "statuses": dict(measured.statuses),
        "elapsed": measured.elapsed,
        "first_send": measured.first_send,
        "warmup_first_send": measured.first_send if started is None else started,
        "last_done": measured.last_done,
        "cpu": measured.cpu,
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = asyncio.run(run(spec))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
