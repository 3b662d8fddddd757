"""Row filters written by users (``--where``), parsed before they run.

A filter is parsed by sqlglot into an AST and checked: only known columns,
literals, comparisons, boolean and arithmetic operators and an allow-list of
scalar functions. Anything else — subqueries, a second statement, DDL, unknown
functions — is refused with a message saying what to change. The checked AST
is rendered back to SQL for Spark or DuckDB, so no user string reaches an
engine unparsed.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

ALLOWED_FUNCTIONS = frozenset(
    {
        "abs",
        "sqrt",
        "log10",
        "ln",
        "exp",
        "power",
        "pow",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "radians",
        "degrees",
        "floor",
        "ceil",
        "round",
        "coalesce",
        "greatest",
        "least",
        "isnan",
        "is_nan",
        "mod",
        "sign",
    }
)
_ALLOWED_NODES = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Func,
    exp.Tuple,
)


class FilterError(ValueError):
    """A user filter that cannot be run; the message says what to fix."""


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def check_filter(
    sql: str, allowed_columns: Iterable[str], dialect: str = "spark"
) -> exp.Expression:
    """Parse a SQL boolean expression and check it against ``allowed_columns``.

    Returns the checked AST; raises :class:`FilterError` naming the problem.

    >>> check_filter("phot_g_mean_mag < 12 AND parallax > 1", ["phot_g_mean_mag", "parallax"]).sql()
    'phot_g_mean_mag < 12 AND parallax > 1'
    """
    if not sql or not sql.strip():
        raise FilterError("the filter is empty: give a condition such as 'phot_g_mean_mag < 12'")
    allowed = {c.lower() for c in allowed_columns}
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" near column {first.get('col')}" if first.get("col") else ""
        raise FilterError(
            f"the filter is not valid SQL{where}: {first.get('description', exc)}"
        ) from exc
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise FilterError("give exactly one condition: ';' and several statements are not allowed")
    tree = statements[0]
    if isinstance(
        tree,
        (
            exp.Select,
            exp.Query,
            exp.Command,
            exp.Create,
            exp.Drop,
            exp.Insert,
            exp.Update,
            exp.Delete,
            exp.Alter,
        ),
    ):
        raise FilterError("give a condition (the part after WHERE), not a statement")
    for node in tree.walk():
        if isinstance(node, (exp.Subquery, exp.Select, exp.Query)):
            raise FilterError("subqueries are not allowed in a filter")
        if isinstance(node, exp.Star):
            raise FilterError("'*' is not allowed in a filter: name the columns")
        if isinstance(node, exp.Column):
            if node.table:
                raise FilterError(f"use bare column names, not {node.sql()!r}")
            if node.name.lower() not in allowed:
                raise FilterError(
                    f"unknown column {node.name!r}; allowed columns: {', '.join(sorted(allowed))}"
                )
        elif isinstance(node, exp.Func):
            if isinstance(node, (exp.And, exp.Or, exp.Not)):
                continue
            name = _function_name(node)
            if name not in ALLOWED_FUNCTIONS:
                allowed_list = ", ".join(sorted(ALLOWED_FUNCTIONS))
                raise FilterError(f"function {name!r} is not allowed; allowed: {allowed_list}")
        elif not isinstance(node, _ALLOWED_NODES):
            raise FilterError(
                f"{node.key!r} expressions are not allowed in a filter ({node.sql()!r})"
            )
    return tree


def filter_sql(sql: str, allowed_columns: Iterable[str], dialect: str = "spark") -> str:
    """The checked filter rendered back to SQL for ``dialect`` (spark or duckdb)."""
    return check_filter(sql, allowed_columns, dialect="spark").sql(dialect=dialect)
