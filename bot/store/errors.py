"""What the store raises about the database as a whole (its schema), as opposed to a bad argument
(ValueError, TypeError): callers that open a store catch these to say the database is unusable."""

from __future__ import annotations

from bot.errors import CodestreamBotError


class StoreError(CodestreamBotError):
    """Base class for store errors (under the bot's one error root)."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this code knows (refusing to run against it)."""


class SchemaLayoutError(StoreError):
    """The database lacks something this version needs and cannot create (it names what)."""
