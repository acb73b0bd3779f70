"""The shape of what Slack POSTs to /slack/events, checked before Bolt reads it.

Slack never sends a ``view`` that is a string or an ``event`` that is a list, but a signed
request that does (a replayed capture edited by hand, a bug in a proxy) must get a clean 400,
not an exception inside Bolt's middleware. The models are lenient about everything the bot does
not read (extra fields pass) and strict about the types of the fields Bolt and the listeners
navigate: the ids, ``event``, ``actions``, ``view`` and its state.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    # Keys Slack sends as objects or leaves out, never as null: Bolt reads some of them as
    # ``body.get(key, {})``, which a null turns into an exception inside Bolt.
    _never_null: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_null_objects(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k in cls._never_null if k in data and data[k] is None)
            if nulls:
                raise ValueError(f"null where an object is expected: {', '.join(nulls)}")
        return data


class _Id(_Open):
    id: StrictStr | None = None


class _Event(_Open):
    type: StrictStr
    user: StrictStr | dict[str, Any] | None = None
    channel: StrictStr | dict[str, Any] | None = None
    text: StrictStr | None = None
    ts: StrictStr | None = None
    thread_ts: StrictStr | None = None
    bot_id: StrictStr | None = None
    subtype: StrictStr | None = None
    tab: StrictStr | None = None
    team: StrictStr | None = None
    enterprise: StrictStr | dict[str, Any] | None = None


class _Authorization(_Open):
    team_id: StrictStr | None = None
    enterprise_id: StrictStr | None = None
    user_id: StrictStr | None = None
    enterprise: StrictStr | dict[str, Any] | None = None


class EventsApiBody(_Open):
    """A JSON body: ``url_verification`` or an ``event_callback`` around one event."""

    _never_null: ClassVar[frozenset[str]] = frozenset({"event", "authorizations"})

    type: StrictStr
    token: StrictStr | None = None
    challenge: StrictStr | None = None
    team_id: StrictStr | None = None
    enterprise_id: StrictStr | None = None
    team: StrictStr | dict[str, Any] | None = None
    user: StrictStr | dict[str, Any] | None = None
    enterprise: StrictStr | dict[str, Any] | None = None
    api_app_id: StrictStr | None = None
    event_id: StrictStr | None = None
    event: _Event | None = None
    authorizations: list[_Authorization] | None = None


class _Option(_Open):
    value: StrictStr | None = None


class _Action(_Open):
    action_id: StrictStr
    block_id: StrictStr | None = None
    value: StrictStr | None = None
    type: StrictStr | None = None
    selected_option: _Option | None = None


class _ViewState(_Open):
    values: dict[str, dict[str, dict[str, Any]]] = {}


class _View(_Open):
    _never_null: ClassVar[frozenset[str]] = frozenset({"state"})

    id: StrictStr | None = None
    callback_id: StrictStr | None = None
    private_metadata: StrictStr | None = None
    state: _ViewState | None = None


class _Container(_Open):
    message_ts: StrictStr | None = None
    channel_id: StrictStr | None = None
    thread_ts: StrictStr | None = None


class _Message(_Open):
    ts: StrictStr | None = None
    thread_ts: StrictStr | None = None
    blocks: list[dict[str, Any]] | None = None


class InteractionPayload(_Open):
    """The ``payload`` form field of a button, a menu or a form submission."""

    _never_null: ClassVar[frozenset[str]] = frozenset({"user", "view", "actions", "container", "message", "channel"})

    type: StrictStr
    user: _Id | None = None
    team: _Id | None = None
    enterprise: _Id | None = None
    channel: _Id | None = None
    container: _Container | None = None
    message: _Message | None = None
    actions: list[_Action] | None = None
    view: _View | None = None
    response_url: StrictStr | None = None
    trigger_id: StrictStr | None = None


def malformed(body: bytes, content_type: str) -> str | None:
    """Why a verified body cannot be handed to Bolt (None: it can): one short reason for the
    operator's log line, naming no value from the body."""
    try:
        if content_type.startswith("application/json"):
            EventsApiBody.model_validate(json.loads(body))
            return None
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        payload = fields.get("payload")
        if payload is not None:
            InteractionPayload.model_validate(json.loads(payload[-1]))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            return f"{'.'.join(str(p) for p in first['loc']) or 'body'}: {first['type']}"
        return "not JSON or not UTF-8"
    return None
