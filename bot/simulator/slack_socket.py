"""Socket Mode of the Slack stand-in: the websocket `apps.connections.open` hands out.

Part of the Slack stand-in (`bot.simulator.slack_api`); import from there. Each connection
is greeted with `hello`; envelopes go out over the newest one, and the app's acks are kept. As
Slack does, a connection can be dropped (`socket_drop`: with a `disconnect` message, or
abruptly), and an envelope not acked when its connection went is delivered again on the next
one, with `retry_attempt` one higher.
"""

from __future__ import annotations

import json
import uuid

from aiohttp import WSMsgType, web

from bot.simulator.slack_models import JSON


class SocketMode:
    """The Socket Mode half of `SlackStandIn`, whose constructor sets these attributes."""

    app_id: str
    socket_acks: dict[str, JSON]  # envelope_id -> the ack frame the app sent back
    socket_deliveries: list[JSON]  # every envelope sent, redeliveries included
    socket_opened: int  # connections opened so far
    _sockets: list[web.WebSocketResponse]
    _unacked: dict[str, JSON]  # envelope_id -> the envelope, until its ack

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode websockets are open."""
        return len(self._sockets)

    async def socket_drop(self, *, clean: bool) -> None:
        """End the newest connection: with Slack's ``disconnect`` message (a routine refresh), or
        abruptly (a network blip: the TCP connection is cut, no close frame)."""
        ws = self._sockets[-1]
        if clean:
            await ws.send_json({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "standin"}})
            await ws.close()
            return
        transport = ws._req.transport if ws._req is not None else None
        if transport is not None:
            transport.abort()

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_opened += 1
        for envelope in list(self._unacked.values()):  # what the last connection left unacked
            envelope["retry_attempt"] = int(envelope.get("retry_attempt") or 0) + 1
            envelope["retry_reason"] = "timeout"
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {"host": "slack-standin", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": self.app_id},
                }
            )
            for envelope in list(self._unacked.values()):
                self.socket_deliveries.append(dict(envelope))
                await ws.send_json(envelope)
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(frame.data)
                except ValueError:
                    continue
                if isinstance(data, dict) and isinstance(data.get("envelope_id"), str):
                    self.socket_acks[data["envelope_id"]] = data
                    self._unacked.pop(data["envelope_id"], None)
        finally:
            self._sockets.remove(ws)
        return ws

    async def socket_deliver(
        self,
        envelope_type: str,
        payload: JSON,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Send an envelope ("events_api" | "slash_commands" | "interactive") over the newest
        Socket Mode connection; return its envelope_id. The app's ack lands in `socket_acks`."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        envelope_id = str(uuid.uuid4())
        envelope: JSON = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        self._unacked[envelope_id] = envelope
        self.socket_deliveries.append(dict(envelope))
        await self._sockets[-1].send_json(envelope)
        return envelope_id
