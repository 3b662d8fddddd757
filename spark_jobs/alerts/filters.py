"""User alert filters: a SQL ``WHERE`` condition, parsed and checked before it runs.

A filter is parsed by sqlglot (Spark dialect) into an AST and accepted only if
every node is on an allow-list: comparisons, boolean logic, arithmetic, a
short list of mathematical functions, literals, and columns that exist in the
alert row (:func:`spark_jobs.alerts.rows.filter_columns`). Anything else —
unknown columns, subqueries, unknown functions (UDFs), aggregates, DDL/DML, a
second statement — is refused with a :class:`FilterError` naming the problem.
What reaches Spark is the SQL *regenerated* from the checked AST with every
identifier quoted, never the user's text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from spark_jobs.alerts.rows import filter_columns

MAX_FILTER_CHARS = 4000
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FORMATS = ("json", "avro")

PREDICATES: tuple[type[exp.Expression], ...] = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Boolean,
)
OPERANDS: tuple[type[exp.Expression], ...] = (
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Case,
    exp.If,
)
FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.Abs: "abs",
    exp.Sqrt: "sqrt",
    exp.Log: "log10/log",
    exp.Ln: "ln",
    exp.Exp: "exp",
    exp.Pow: "power",
    exp.Least: "least",
    exp.Greatest: "greatest",
    exp.Coalesce: "coalesce",
    exp.Round: "round",
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Sin: "sin",
    exp.Cos: "cos",
    exp.Tan: "tan",
    exp.Asin: "asin",
    exp.Acos: "acos",
    exp.Atan: "atan",
    exp.Atan2: "atan2",
    exp.Radians: "radians",
    exp.Degrees: "degrees",
    exp.Nullif: "nullif",
}
_STATEMENTS = (
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Command,
    exp.Use,
    exp.Set,
    exp.TruncateTable,
)


class FilterError(ValueError):
    """A filter refused at creation; the message names what to fix."""


def _column_name(col: exp.Column) -> str:
    return ".".join(p.name for p in col.parts)


def _describe(node: exp.Expression) -> str:
    text = node.sql(dialect="spark")
    return text if len(text) <= 60 else text[:57] + "..."


def check_where(where: str, columns: dict[str, object] | None = None) -> str:
    """Validate a WHERE condition; return the canonical Spark SQL to evaluate.

    Raises
    ------
    FilterError
        For empty or overlong text, syntax errors, several statements, DDL/DML,
        queries or subqueries, unknown columns or functions, and conditions
        that are not boolean.
    """
    allowed = columns if columns is not None else filter_columns()
    text = (where or "").strip().rstrip(";").strip() if where else ""
    if not text:
        raise FilterError(
            "the filter is empty: write a condition such as 'diaSource.psfFlux > 1000'"
        )
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter has {len(text)} characters; the limit is {MAX_FILTER_CHARS}")
    try:
        statements = [s for s in sqlglot.parse(text, read="spark") if s is not None]
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        where_at = f" near {first.get('highlight')!r}" if first.get("highlight") else ""
        raise FilterError(f"SQL syntax error{where_at}: {first.get('description', err)}") from None
    if len(statements) != 1:
        raise FilterError(
            f"the filter holds {len(statements)} statements; give exactly one condition "
            "(no ';'-separated statements)"
        )
    tree = statements[0]
    if isinstance(tree, _STATEMENTS):
        raise FilterError(
            f"{tree.key.upper()} statements (DDL/DML) are not allowed: "
            "a filter is a WHERE condition"
        )
    if isinstance(tree, (exp.Select, exp.Union, exp.Query)):
        raise FilterError(
            "a filter is a WHERE condition, not a query: drop SELECT ... FROM ... WHERE"
        )
    for node in tree.walk():
        _check_node(node, allowed)
    if not isinstance(tree, PREDICATES):
        raise FilterError(
            f"the filter must be a true/false condition (a comparison, AND/OR, IN, BETWEEN, "
            f"IS NULL...), not {_describe(tree)!r}"
        )
    return tree.sql(dialect="spark", identify=True, comments=False)


def _check_node(node: exp.Expression, allowed: dict[str, object]) -> None:
    if isinstance(node, (exp.Select, exp.Subquery, exp.Query, exp.Exists)):
        raise FilterError(f"subqueries are not allowed: {_describe(node)!r}")
    if isinstance(node, _STATEMENTS):
        raise FilterError(f"{node.key.upper()} statements (DDL/DML) are not allowed")
    if isinstance(node, exp.Column):
        if isinstance(node.this, exp.Star):
            raise FilterError("'*' is not allowed in a filter: name the columns")
        name = _column_name(node)
        if name not in allowed:
            close = difflib.get_close_matches(name, list(allowed), n=3, cutoff=0.6)
            hint = (
                f"; did you mean {', '.join(close)}?"
                if close
                else ("; see `avip alerts filters columns` for the list")
            )
            raise FilterError(f"unknown column {name!r}{hint}")
        return
    if isinstance(node, exp.AggFunc):
        raise FilterError(f"aggregate function {node.sql_name()}() is not allowed in a filter")
    if isinstance(node, exp.Anonymous):
        raise FilterError(
            f"unknown function {node.name}(): user-defined and unlisted functions are not "
            f"allowed; available: {', '.join(sorted(set(FUNCTIONS.values())))}"
        )
    if isinstance(node, tuple(FUNCTIONS)):
        return
    if isinstance(node, exp.Func) and not isinstance(node, PREDICATES + OPERANDS):
        raise FilterError(
            f"function {node.sql_name()}() is not allowed; available: "
            f"{', '.join(sorted(set(FUNCTIONS.values())))}"
        )
    if isinstance(node, PREDICATES + OPERANDS):
        return
    raise FilterError(f"{node.key!r} is not allowed in a filter: {_describe(node)!r}")


@dataclass(frozen=True)
class AlertFilter:
    """An accepted filter as the streaming job sees it."""

    filter_id: int
    owner: str
    name: str
    where: str
    spark_sql: str
    topic: str
    output_format: str = "json"
    enabled: bool = True


def topic_for(prefix: str, owner: str, name: str) -> str:
    """The output topic of a filter: ``<prefix>.<owner>.<name>`` (Kafka-legal)."""
    safe_owner = re.sub(r"[^A-Za-z0-9_-]", "_", owner)
    return f"{prefix}.{safe_owner}.{name}"[:249]


def make_filter(
    *,
    filter_id: int,
    owner: str,
    name: str,
    where: str,
    topic_prefix: str = "avip.alerts.filter",
    output_format: str = "json",
    enabled: bool = True,
) -> AlertFilter:
    """Check name, format and condition; build the filter (raises FilterError)."""
    if not NAME_PATTERN.match(name or ""):
        raise FilterError(
            f"filter name {name!r} must be 1-64 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    if output_format not in FORMATS:
        raise FilterError(f"output format {output_format!r} must be one of {', '.join(FORMATS)}")
    return AlertFilter(
        filter_id=filter_id,
        owner=owner,
        name=name,
        where=where,
        spark_sql=check_where(where),
        topic=topic_for(topic_prefix, owner, name),
        output_format=output_format,
        enabled=enabled,
    )
