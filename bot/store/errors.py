"""What the store raises about the database as a whole (its schema), as opposed to a bad argument
(ValueError, TypeError): callers that open a store catch these to say the database is unusable."""

from __future__ import annotations

import errno
from typing import Final

from sqlalchemy.exc import DBAPIError

from bot.errors import CodestreamBotError


class StoreError(CodestreamBotError):
    """Base class for store errors (under the bot's one error root)."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this code knows (refusing to run against it)."""


class SchemaLayoutError(StoreError):
    """The database lacks something this version needs and cannot create (it names what)."""


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (down, restarting, failing over, a
    connection cut), not that a statement or the schema was wrong: loops that meet it say so in
    one line and try again, without a traceback per round. Only the error itself and what
    SQLAlchemy wrapped (``orig``) are looked at, never an unrelated exception's context."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        if orig is None or orig is exc:
            return False
        # SQLAlchemy's asyncpg adapter raises its own DB-API error *from* the driver's: the
        # driver's (CannotConnectNowError: "the database system is shutting down") is its cause.
        driver = orig.__cause__
        return database_unreachable(orig) or (driver is not None and database_unreachable(driver))
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError):
        # Refused, reset, unreachable host; or a Unix socket whose server is down (its file is
        # gone: ENOENT with no file name). Not an error about a file the bot needs (it names it).
        socket_gone = exc.errno == errno.ENOENT and exc.filename is None
        return exc.errno is None or exc.errno not in _FILE_ERRNOS or socket_gone
    return type(exc).__name__ in _DRIVER_CONNECTION_ERRORS


# asyncpg's errors for a connection that is gone or not accepted yet (by name: no import of the
# driver here).
_DRIVER_CONNECTION_ERRORS: Final = frozenset(
    {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionFailureError", "AdminShutdownError"}
)
_FILE_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.ENOENT})
