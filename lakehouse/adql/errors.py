"""The one error of the ADQL layer, with where in the query text it points."""

from __future__ import annotations

from sqlglot import exp


class AdqlError(ValueError):
    """A query that cannot run; the message says what to change and where.

    ``line`` and ``column`` are 1-based positions in the query text, ``token``
    the text found there (all None when the problem has no one place).
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 token: str | None = None) -> None:
        self.message, self.line, self.column, self.token = message, line, column, token
        where = ""
        if line is not None:
            where = f" (line {line}, column {column}" + (f", at {token!r})" if token else ")")
        super().__init__(message + where)


def position_of(node: exp.Expression, text: str) -> tuple[int | None, int | None, str | None]:
    """(line, column, token) of the earliest identifier of ``node`` in ``text``; for a function
    call, of the function's name. sqlglot keeps positions on identifiers only."""
    starts = [meta["start"] for child in node.walk()
              if "start" in (meta := getattr(child, "_meta", None) or {})]
    start = min(starts) if starts else None
    if start is None:
        return None, None, None
    name = node.name if isinstance(node, exp.Anonymous) else (
        node.sql_name() if isinstance(node, exp.Func) else "")
    if name:  # the call's name sits before its first argument
        found = text.upper().rfind(name.upper(), 0, start)
        if found >= 0:
            start = found
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    token = text[start:].split(None, 1)[0][:40] if text[start:].strip() else ""
    return line, column, token


def first_line(error: BaseException) -> str:
    """An engine error's first non-blank line, shortened: what a user is told (Spark's and
    DuckDB's messages go on with plans, hints and carets)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(error).__name__
