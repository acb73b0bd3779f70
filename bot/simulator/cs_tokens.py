"""JWT-shaped bearer tokens for the simulator.

Real vRA / CSP tokens are signed JWTs that clients may decode (without verifying) to learn
`exp`. The simulator mints unsigned tokens of the same shape and keeps the set it issued, so
it can reject unknown, expired or deliberately invalidated tokens with 401.
"""

from __future__ import annotations

import base64
import json
import time
import uuid


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_jwt(subject: str, issued_at: float, expires_at: float) -> str:
    header = {"alg": "none", "typ": "JWT"}
    payload = {
        "sub": subject,
        "iat": int(issued_at),
        "exp": int(expires_at),
        "jti": str(uuid.uuid4()),
        "iss": "codestream-simulator",
    }
    return ".".join(
        (
            _b64url(json.dumps(header, separators=(",", ":")).encode()),
            _b64url(json.dumps(payload, separators=(",", ":")).encode()),
            "sig",
        )
    )


class TokenBook:
    """Issued tokens and their (sub-second precise) expiry times."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        # token -> (subject, expires_at epoch seconds as float). The float is kept here
        # because the JWT `exp` claim is whole seconds, too coarse for tests with 0.2 s tokens.
        self._valid: dict[str, tuple[str, float]] = {}

    def issue(self, subject: str) -> str:
        now = time.time()
        expires_at = now + self.lifetime
        token = mint_jwt(subject, now, expires_at)
        self._valid[token] = (subject, expires_at)
        return token

    def subject(self, token: str) -> str | None:
        """The token's subject if it is currently valid, else None."""
        entry = self._valid.get(token)
        if entry is None:
            return None
        subject, expires_at = entry
        if time.time() >= expires_at:
            del self._valid[token]
            return None
        return subject

    def expire_all(self) -> None:
        self._valid.clear()
