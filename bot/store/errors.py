"""What the store raises about the database as a whole (its schema), as opposed to a bad argument
(ValueError, TypeError): callers that open a store catch these to say the database is unusable."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot.errors import CodestreamBotError


class StoreError(CodestreamBotError):
    """Base class for store errors (under the bot's one error root)."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this code knows (refusing to run against it)."""


class SchemaLayoutError(StoreError):
    """The database lacks something this version needs and cannot create (it names what)."""


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (down, restarting, failing over, a
    connection cut), not that a statement was wrong: loops that meet it say so in one line and
    try again, without a traceback per round."""
    if isinstance(exc, OSError | TimeoutError | ConnectionError | OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = exc.__cause__ or exc.__context__
    name = type(exc).__name__
    return name.startswith(("ConnectionDoesNotExist", "CannotConnectNow", "InterfaceError")) or (
        cause is not None and cause is not exc and database_unreachable(cause)
    )
