"""Which errors say "the database could not be reached" (loops log one line a round and try
again) and which say something is wrong (logged with the traceback, loudly)."""

from __future__ import annotations

import errno

import pytest
from sqlalchemy.exc import OperationalError

from bot.store import database_unreachable


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), True),  # TCP, server down
        (ConnectionResetError(errno.ECONNRESET, "reset by peer"), True),
        (TimeoutError(), True),
        # A Unix socket whose server is down: its file is gone (no file name on the error).
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), True),
        # A file the bot needs that is missing, full or read-only: a problem to fix, not to wait out.
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/var/lib/bot/bot.db"), False),
        (OSError(errno.ENOSPC, "No space left on device", "/var/lib/bot/bot.db"), False),
        (PermissionError(errno.EACCES, "Permission denied", "/var/lib/bot"), False),
        (OSError(errno.ENOSPC, "No space left on device"), False),  # named file or not
        (OperationalError("SELECT 1", {}, ConnectionRefusedError(errno.ECONNREFUSED, "refused")), True),
        (OperationalError("SELECT 1", {}, ValueError("no such column: x")), False),
        (ValueError("bad argument"), False),
    ],
)
def test_what_counts_as_the_database_being_away(error: BaseException, unreachable: bool) -> None:
    assert database_unreachable(error) is unreachable


async def test_a_server_shutting_down_is_the_database_being_away() -> None:
    """What SQLAlchemy's asyncpg adapter raises for "the database system is shutting down": its
    own DB-API error, raised from the driver's CannotConnectNowError."""
    import asyncpg
    from asyncpg.exceptions import CannotConnectNowError
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)  # type: ignore[no-untyped-call]
    try:
        try:
            raise CannotConnectNowError("the database system is shutting down")
        except CannotConnectNowError as driver:
            raise dbapi.InternalServerError(f"{type(driver)}: {driver}") from driver  # type: ignore[no-untyped-call]
    except dbapi.InternalServerError as adapted:
        wrapped = OperationalError("SELECT 1", {}, adapted)
    assert database_unreachable(wrapped)
