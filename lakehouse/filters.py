"""Row filters written by users, parsed and checked before any engine sees them.

One checker serves every place a user writes a SQL ``WHERE`` condition: the
catalogue's ``--where`` (Spark and DuckDB) and the alert filters of the
streaming job (Spark). A filter is parsed by sqlglot into an AST and accepted
only if every node is on an allow-list: comparisons and boolean logic
(:data:`PREDICATES`), arithmetic, literals and the caller's columns
(:data:`OPERANDS`), and a short list of mathematical functions
(:data:`FUNCTIONS`). Anything else — unknown columns (with a "did you mean"
hint), subqueries, unknown functions (UDFs), aggregates, DDL/DML, a second
statement, a condition that is not true/false — is refused with a
:class:`FilterError` naming what to change. What reaches an engine is the SQL
*regenerated* from the checked AST with every identifier quoted
(:func:`render`), never the user's text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

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
    exp.IsNan,
)
"""Node types that are true/false conditions (a filter's top node must be one)."""

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
    exp.Tuple,
    exp.Case,
    exp.If,
)
"""Node types allowed inside a condition besides predicates and functions."""

FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.Abs: "abs",
    exp.Sqrt: "sqrt",
    exp.Log: "log10/log",
    exp.Ln: "ln",
    exp.Exp: "exp",
    exp.Pow: "power/pow",
    exp.Least: "least",
    exp.Greatest: "greatest",
    exp.Coalesce: "coalesce",
    exp.Nullif: "nullif",
    exp.Round: "round",
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Sign: "sign",
    exp.Sin: "sin",
    exp.Cos: "cos",
    exp.Tan: "tan",
    exp.Asin: "asin",
    exp.Acos: "acos",
    exp.Atan: "atan",
    exp.Atan2: "atan2",
    exp.Radians: "radians",
    exp.Degrees: "degrees",
    exp.IsNan: "isnan",
}
"""Scalar functions a filter may call (sqlglot type → the name users write)."""

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
_QUERIES = (exp.Select, exp.Subquery, exp.Query, exp.Exists)


MAX_DEPTH = 40
"""Deepest nesting a filter may have (parentheses, or operators chained in its tree):
far beyond what a condition needs, far below what the parser's recursion allows."""
MAX_LIKE_CHARS = 256
MAX_LIKE_PERCENT = 4
"""Most ``%`` in one LIKE pattern: Spark runs LIKE as a backtracking regular expression,
whose time grows as the row length to the power of this count (15 took 8 s for one row)."""
MAX_ROUND_DIGITS = 38
"""Largest scale ``round``/``floor``/``ceil`` accept (Spark's widest decimal); beyond it
Spark raises while running the filter."""


class FilterError(ValueError):
    """A user filter that cannot be run; the message says what to fix."""


def paren_depth(sql: str) -> int:
    """The deepest parenthesis nesting of ``sql`` outside quoted strings and identifiers
    (checked before parsing: the parser recurses once per level)."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for char in sql:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def tree_depth(tree: exp.Expression, limit: int = MAX_DEPTH) -> int:
    """The depth of ``tree``, counted until it passes ``limit``."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            break
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def _column_name(col: exp.Column) -> str:
    return ".".join(p.name for p in col.parts)


def _describe(node: exp.Expression) -> str:
    text = node.sql(dialect="spark")
    return text if len(text) <= 60 else text[:57] + "..."


def _functions_available() -> str:
    return ", ".join(sorted(set(FUNCTIONS.values())))


def check_filter(
    sql: str,
    allowed_columns: Iterable[str],
    dialect: str = "spark",
    *,
    case_sensitive: bool = False,
    boolean_columns: Iterable[str] | None = None,
    unknown_column_hint: str | None = None,
) -> exp.Expression:
    """Parse a SQL boolean condition and check it against ``allowed_columns``.

    Parameters
    ----------
    sql
        The condition (the part after ``WHERE``), read in ``dialect``.
    allowed_columns
        Column names the filter may use; struct fields are dotted
        (``diaSource.psfFlux``).
    case_sensitive
        Whether column names must match in case. When not, the returned AST
        names each column in its canonical spelling from ``allowed_columns``.
    boolean_columns
        Columns that may stand alone as the whole condition (boolean flags).
        ``None`` lets any column do so (the engine checks its type).
    unknown_column_hint
        Advice for an unknown column with no close match (default: the list
        of allowed columns).

    Returns the checked AST; raises :class:`FilterError` naming the problem.

    >>> check_filter("phot_g_mean_mag < 12 AND parallax > 1", ["phot_g_mean_mag", "parallax"]).sql()
    'phot_g_mean_mag < 12 AND parallax > 1'
    """
    if not sql or not sql.strip():
        raise FilterError("the filter is empty: give a condition such as 'phot_g_mean_mag < 12'")
    canonical = {(c if case_sensitive else c.lower()): c for c in allowed_columns}
    if paren_depth(sql) > MAX_DEPTH:
        raise FilterError(f"the filter nests parentheses deeper than {MAX_DEPTH} levels; "
                          "write it with fewer")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except RecursionError:
        raise FilterError(f"the filter nests deeper than {MAX_DEPTH} levels; write it with "
                          "fewer parentheses or chained operators") from None
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        near = f" near {first.get('highlight')!r}" if first.get("highlight") else ""
        column = f" (column {first.get('col')})" if first.get("col") else ""
        raise FilterError(
            f"the filter is not valid SQL (SQL syntax error{near}{column}): "
            f"{first.get('description', err)}"
        ) from None
    if len(statements) != 1:
        raise FilterError(
            f"the filter holds {len(statements)} statements; give exactly one condition "
            "(no ';'-separated statements)"
        )
    tree = statements[0]
    if tree_depth(tree) > MAX_DEPTH:
        raise FilterError(f"the filter nests deeper than {MAX_DEPTH} levels (operators chain "
                          "into a tree); split a long chain with IN, BETWEEN or fewer terms")
    if isinstance(tree, _STATEMENTS):
        raise FilterError(
            f"{tree.key.upper()} statements (DDL/DML) are not allowed: "
            "a filter is a WHERE condition"
        )
    if isinstance(tree, (exp.Select, exp.Union, exp.Query)):
        raise FilterError(
            "a filter is a WHERE condition, not a query: drop SELECT ... FROM ... WHERE"
        )
    renames: list[tuple[exp.Column, str]] = []
    for node in tree.walk():
        if isinstance(node, exp.Column):
            name = _resolve_column(node, canonical, case_sensitive, unknown_column_hint)
            if name != _column_name(node):
                renames.append((node, name))
        else:
            _check_node(node)
    for node, name in renames:
        spelled = exp.to_column(name)
        if node is tree:
            tree = spelled
        else:
            node.replace(spelled)
    _check_is_condition(tree, boolean_columns)
    return tree


def _resolve_column(
    node: exp.Column, canonical: dict[str, str], case_sensitive: bool, hint: str | None
) -> str:
    """The allowed spelling of a column reference, or a FilterError."""
    if isinstance(node.this, exp.Star):
        raise FilterError("'*' is not allowed in a filter: name the columns")
    name = _column_name(node)
    key = name if case_sensitive else name.lower()
    if key in canonical:
        return canonical[key]
    close = difflib.get_close_matches(key, list(canonical), n=3, cutoff=0.6)
    if close:
        advice = f"did you mean {', '.join(canonical[c] for c in close)}?"
    else:
        advice = hint or f"allowed columns: {', '.join(sorted(canonical.values()))}"
    raise FilterError(f"unknown column {name!r}; {advice}")


def _check_like(node: exp.Like | exp.ILike) -> None:
    """A LIKE pattern Spark runs quickly and without raising: a string literal, not too
    long, few ``%``, every backslash escaping ``%``, ``_`` or a backslash."""
    pattern = node.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise FilterError(f"a LIKE pattern must be a quoted string: {_describe(node)!r}")
    text = pattern.this
    if len(text) > MAX_LIKE_CHARS:
        raise FilterError(f"the LIKE pattern has {len(text)} characters; "
                          f"the limit is {MAX_LIKE_CHARS}")
    percents, index = 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1: index + 2]
            if not following:
                raise FilterError(f"the LIKE pattern {text!r} ends with an escape (a "
                                  "backslash); escape the backslash itself or remove it")
            if following not in "%_\\":
                raise FilterError(f"in the LIKE pattern {text!r} a backslash escapes "
                                  f"{following!r}; it may only escape %, _ or a backslash")
            index += 2
            continue
        percents += char == "%"
        index += 1
    if percents > MAX_LIKE_PERCENT:
        raise FilterError(f"the LIKE pattern {text!r} has {percents} '%'; the limit is "
                          f"{MAX_LIKE_PERCENT} (each one multiplies Spark's matching time)")


def _check_scale(node: exp.Round | exp.Floor | exp.Ceil) -> None:
    """``round(x, d)``, ``floor(x, d)``, ``ceil(x, d)``: ``d`` a whole-number literal that
    Spark accepts, so the filter cannot raise for it at run time."""
    scale = node.args.get("decimals")
    if scale is None:
        return
    value = scale.this if isinstance(scale, exp.Neg) else scale
    if not (isinstance(value, exp.Literal) and value.is_int):
        raise FilterError(f"the number of digits of {node.sql_name().lower()}() must be a "
                          f"whole number: {_describe(node)!r}")
    if abs(int(value.this)) > MAX_ROUND_DIGITS:
        raise FilterError(f"{node.sql_name().lower()}() to {value.this} digits: give at most "
                          f"{MAX_ROUND_DIGITS}")


def _check_node(node: exp.Expression) -> None:
    """Refuse any node that is not a predicate, operand or listed function."""
    if isinstance(node, (exp.Like, exp.ILike)):
        _check_like(node)
    if isinstance(node, (exp.Round, exp.Floor, exp.Ceil)):
        _check_scale(node)
    if isinstance(node, _QUERIES):
        raise FilterError(f"subqueries are not allowed: {_describe(node)!r}")
    if isinstance(node, _STATEMENTS):
        raise FilterError(f"{node.key.upper()} statements (DDL/DML) are not allowed")
    if isinstance(node, exp.Star):
        raise FilterError("'*' is not allowed in a filter: name the columns")
    if isinstance(node, exp.AggFunc):
        raise FilterError(f"aggregate function {node.sql_name()}() is not allowed in a filter")
    if isinstance(node, exp.Anonymous):
        raise FilterError(
            f"unknown function {node.name}(): user-defined and unlisted functions are not "
            f"allowed; available: {_functions_available()}"
        )
    if isinstance(node, tuple(FUNCTIONS) + PREDICATES + OPERANDS):
        return
    if isinstance(node, exp.Func):
        raise FilterError(
            f"function {node.sql_name()}() is not allowed; available: {_functions_available()}"
        )
    raise FilterError(f"{node.key!r} is not allowed in a filter: {_describe(node)!r}")


def _check_is_condition(tree: exp.Expression, boolean_columns: Iterable[str] | None) -> None:
    """The whole filter must be true/false: a predicate or a boolean column."""
    if isinstance(tree, PREDICATES):
        return
    if isinstance(tree, exp.Column) and (
        boolean_columns is None or _column_name(tree) in set(boolean_columns)
    ):
        return
    raise FilterError(
        f"the filter must be a true/false condition (a comparison, AND/OR, IN, BETWEEN, "
        f"IS NULL...), not {_describe(tree)!r}"
    )


def render(tree: exp.Expression, dialect: str = "spark") -> str:
    """A checked filter as SQL for ``dialect`` (spark or duckdb), identifiers quoted."""
    return tree.sql(dialect=dialect, identify=True, comments=False)


def referenced_columns(tree: exp.Expression) -> list[str]:
    """The distinct columns a checked filter reads, in order of appearance."""
    return list(dict.fromkeys(_column_name(c) for c in tree.find_all(exp.Column)))


def filter_sql(sql: str, allowed_columns: Iterable[str], dialect: str = "spark") -> str:
    """The checked filter (read as Spark SQL) rendered back to SQL for ``dialect``."""
    return render(check_filter(sql, allowed_columns, dialect="spark"), dialect)
