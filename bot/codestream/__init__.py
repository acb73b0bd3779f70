"""The Code Stream API: models, auth, a typed client and its errors. No Slack in here."""

from bot.codestream.client import ActionResult, CodeStreamClient, RetryPolicy
from bot.codestream.errors import (
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    CodeStreamError,
    Forbidden,
    InvalidId,
    NotFound,
    RateLimited,
    ServerError,
    TLSFailure,
    Unavailable,
)
from bot.codestream.factory import create_client
from bot.codestream.ids import is_valid_id, validate_id
from bot.codestream.models import (
    EVENT_KINDS,
    DockerRegistryEvent,
    Event,
    EventKind,
    Execution,
    GerritEvent,
    GitEvent,
)

__all__ = [
    "EVENT_KINDS",
    "ActionResult",
    "AuthenticationFailed",
    "BadRequest",
    "BadResponse",
    "CodeStreamClient",
    "CodeStreamError",
    "DockerRegistryEvent",
    "Event",
    "EventKind",
    "Execution",
    "Forbidden",
    "GerritEvent",
    "GitEvent",
    "InvalidId",
    "NotFound",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "TLSFailure",
    "Unavailable",
    "create_client",
    "is_valid_id",
    "validate_id",
]
