"""The connection the store's parts run their statements on, whichever the database."""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias, TypeVarTuple, overload

from sqlalchemy import CursorResult, Executable
from sqlalchemy.engine.interfaces import CoreExecuteOptionsParameter
from sqlalchemy.sql.selectable import TypedReturnsRows
from sqlalchemy.util.typing import TupleAny

_Ts = TypeVarTuple("_Ts")
Params: TypeAlias = "dict[str, Any] | list[dict[str, Any]] | None"


class Conn(Protocol):
    """A connection as the parts use it: SQLAlchemy's ``AsyncConnection`` (PostgreSQL), or an
    inline SQLite one (``bot.store.inline``)."""

    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[*_Ts],
        parameters: Params = None,
        *,
        execution_options: CoreExecuteOptionsParameter | None = None,
    ) -> CursorResult[*_Ts]: ...

    @overload
    async def execute(
        self,
        statement: Executable,
        parameters: Params = None,
        *,
        execution_options: CoreExecuteOptionsParameter | None = None,
    ) -> CursorResult[*TupleAny]: ...
