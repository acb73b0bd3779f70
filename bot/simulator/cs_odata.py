"""A practical subset of the OData query options Code Stream accepts on list endpoints.

$filter grammar (operators are case-insensitive, like the service's own examples):

    expr      := and_expr ("or" and_expr)*
    and_expr  := unary ("and" unary)*
    unary     := "not" unary | "(" expr ")" | predicate
    predicate := boolfunc "(" operand "," operand ")" | operand CMP operand
    operand   := 'string' | number | true | false | null | field | strfunc "(" operand ")"
    CMP       := eq | ne | gt | ge | lt | le
    boolfunc  := startswith | endswith | substringof | contains
    strfunc   := tolower | toupper

Anything else (unknown field, stray token) raises ODataError, which the server turns into
400 {"message": "Invalid filter"}. Comparisons between different types (a string against a
number) are simply false instead of errors, because real documents mix types (the spec's
`timeStampInMicros` is an int64 in the schema and a date string in its example).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

Doc = Mapping[str, Any]
Getter = Callable[[Doc], Any]
Predicate = Callable[[Doc], bool]


class ODataError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<name>[A-Za-z_$][A-Za-z0-9_]*)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)

_CMP = {"eq", "ne", "gt", "ge", "lt", "le"}
_BOOLFUNCS = {"startswith", "endswith", "substringof", "contains"}
_STRFUNCS = {"tolower", "toupper"}
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ODataError(f"unexpected input at {pos}")
        pos = m.end()
        if m.group("str") is not None:
            tokens.append(("lit", m.group("str")[1:-1].replace("''", "'")))
        elif m.group("num") is not None:
            raw = m.group("num")
            tokens.append(("lit", float(raw) if "." in raw else int(raw)))
        elif m.group("name") is not None:
            tokens.append(("name", m.group("name")))
        else:
            tokens.append(("punct", m.group("punct")))
    return tokens


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op in ("eq", "ne"):
        same = (_is_number(a) and _is_number(b) and a == b) or (type(a) is type(b) and a == b)
        return same if op == "eq" else not same
    if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "gt":
        return bool(a > b)
    if op == "ge":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


def _boolfunc(name: str, a: Any, b: Any) -> bool:
    if name == "substringof":  # substringof('needle', haystack): arguments swapped
        a, b = b, a
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    if name == "startswith":
        return a.startswith(b)
    if name == "endswith":
        return a.endswith(b)
    return b in a


class _Parser:
    def __init__(self, text: str, fields: frozenset[str]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.fields = fields

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, Any]:
        tok = self._peek()
        if tok is None:
            raise ODataError("unexpected end of filter")
        self.pos += 1
        return tok

    def _keyword(self, *words: str) -> str | None:
        tok = self._peek()
        if tok is not None and tok[0] == "name" and tok[1].lower() in words:
            self.pos += 1
            return str(tok[1]).lower()
        return None

    def _expect(self, punct: str) -> None:
        if self._next() != ("punct", punct):
            raise ODataError(f"expected {punct!r}")

    def parse(self) -> Predicate:
        pred = self._or()
        if self._peek() is not None:
            raise ODataError("trailing input")
        return pred

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda d: any(p(d) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._keyword("and"):
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]
        return lambda d: all(p(d) for p in parts)

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            inner = self._unary()
            return lambda d: not inner(d)
        if self._peek() == ("punct", "("):
            self.pos += 1
            inner = self._or()
            self._expect(")")
            return inner
        func = self._keyword(*_BOOLFUNCS)
        if func is not None:
            self._expect("(")
            left = self._operand()
            self._expect(",")
            right = self._operand()
            self._expect(")")
            return lambda d: _boolfunc(func, left(d), right(d))
        left = self._operand()
        op = self._keyword(*_CMP)
        if op is None:
            raise ODataError("expected a comparison operator")
        right = self._operand()
        return lambda d: _compare(op, left(d), right(d))

    def _operand(self) -> Getter:
        kind, value = self._next()
        if kind == "lit":
            return lambda _d: value
        if kind != "name":
            raise ODataError(f"unexpected {value!r}")
        lowered = value.lower()
        if lowered in _LITERALS:
            literal = _LITERALS[lowered]
            return lambda _d: literal
        if lowered in _STRFUNCS:
            self._expect("(")
            inner = self._operand()
            self._expect(")")
            upper = lowered == "toupper"

            def cased(d: Doc) -> Any:
                v = inner(d)
                if not isinstance(v, str):
                    return v
                return v.upper() if upper else v.lower()

            return cased
        if value not in self.fields:
            raise ODataError(f"unknown field {value!r}")
        return lambda d: d.get(value)


@lru_cache(maxsize=256)
def compile_filter(text: str, fields: frozenset[str]) -> Predicate | None:
    """Compile a $filter string; None means "no filter". Raises ODataError."""
    if not text.strip():
        return None
    return _Parser(text, fields).parse()


def parse_orderby(text: str, fields: frozenset[str]) -> list[tuple[str, bool]]:
    """'updatedAt desc, name' -> [("updatedAt", True), ("name", False)]. Raises ODataError."""
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or words[0] not in fields:
            raise ODataError(f"invalid $orderby clause {part.strip()!r}")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise ODataError(f"invalid $orderby direction {direction!r}")
        keys.append((words[0], direction == "desc"))
    return keys


def _sort_key(field: str, descending: bool) -> Callable[[Doc], tuple[int, int, Any]]:
    # Missing values go last in both directions; values of different JSON types are ranked
    # (numbers, then strings, then anything else) so a mixed column never raises TypeError.
    present, absent = (1, 0) if descending else (0, 1)

    def key(doc: Doc) -> tuple[int, int, Any]:
        v = doc.get(field)
        if v is None:
            return (absent, 0, 0)
        if _is_number(v) or isinstance(v, bool):
            return (present, 0, v)
        if isinstance(v, str):
            return (present, 1, v)
        return (present, 2, repr(v))

    return key


def sort_docs(docs: Iterable[Doc], keys: list[tuple[str, bool]]) -> list[Doc]:
    """Stable multi-key sort: sort by the last key first, like a SQL ORDER BY."""
    result = list(docs)
    for field, descending in reversed(keys):
        result.sort(key=_sort_key(field, descending), reverse=descending)
    return result


def page_of(docs: list[Any], top: int, skip: int) -> dict[str, Any]:
    """One page of ``docs`` in the spec's list envelope (``documents`` keyed by ``_link``)."""
    shown = docs[skip : skip + top]
    return {
        "count": len(shown),
        "totalCount": len(docs),
        "links": [d["_link"] for d in shown],
        "documents": {d["_link"]: copy.deepcopy(d) for d in shown},
    }
