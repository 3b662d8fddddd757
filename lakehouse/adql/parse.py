"""ADQL 2.1 read by a real grammar, checked against an allow-list, and planned onto our tables.

sqlglot's T-SQL grammar is ADQL's closest relative (``SELECT TOP n``,
double-quoted delimited identifiers, ``||``), so :class:`ADQL` is that dialect;
the geometry functions (``POINT``, ``CIRCLE``, ``BOX``, ``POLYGON``,
``CONTAINS``, ``INTERSECTS``, ``DISTANCE``, ``COORD1/2``) parse as function
calls and are translated here (:mod:`lakehouse.adql.geometry`) into plain SQL
arithmetic that Spark and DuckDB both run. What reaches an engine is SQL
*regenerated* from the checked tree with every identifier quoted, never the
user's text.

:func:`plan` returns a :class:`Plan`: the checked tree with every table
renamed to a view the engine binds and every column qualified by its table's
alias, the sky regions that restrict each catalogue table (HEALPix pruning
through the same :mod:`lakehouse.regions` code as ``Catalog.cone``), and a
positional join between two tables when the query has one (run by the
lakehouse crossmatch). Errors are :class:`AdqlError`, naming line, column
and token.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.tsql import TSQL
from sqlglot.errors import ParseError

from lakehouse.adql import geometry
from lakehouse.adql.errors import AdqlError, position_of
from lakehouse.filters import FUNCTIONS, OPERANDS, PREDICATES, paren_depth, tree_depth
from lakehouse.regions import Region

#: Longest query text accepted (a query is a few lines; this bounds parser work).
MAX_QUERY_CHARS = 100_000
#: Longest string literal (a name or a LIKE pattern is short; a long one repeated in every
#: row of a result is memory, not a question).
MAX_TEXT_CHARS = 1_000
#: Deepest nesting of parentheses or operators (far beyond real queries, far below recursion).
MAX_DEPTH = 120

Kind = Literal["catalogue", "tap_schema", "upload"]


class ADQL(TSQL):
    """ADQL 2.1 as sqlglot reads it: T-SQL's grammar (TOP, "quoted" identifiers, ||), with
    NULLs sorting as the archives' PostgreSQL sorts them: last when ascending, first when
    descending (T-SQL's are the other way round, and 98% of DR3 has no radial velocity)."""

    NULL_ORDERING = "nulls_are_large"


@dataclass(frozen=True)
class Source:
    """A table a query may read: its ADQL name, what it is and its columns."""

    name: str  # as TAP_SCHEMA lists it: 'gaiadr3.gaia_source', 'TAP_UPLOAD.t1'
    kind: Kind
    key: str  # the catalogue table, TAP_SCHEMA table or upload name the engine reads
    columns: tuple[str, ...]
    #: Other names users write for it ('gaia_source' for 'gaiadr3.gaia_source').
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Binding:
    """One table of the FROM clause: its source, the alias columns are qualified by, the
    view name the engine registers it under, and the columns the query reads."""

    source: Source
    alias: str
    view: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class PositionalJoin:
    """A join whose condition is a separation within ``radius_deg``: run as a crossmatch."""

    left: str  # alias whose rows fall in one cell (the catalogue side)
    right: str  # alias copied into neighbouring cells
    radius_deg: float
    #: The right table's position columns (ra, dec).
    right_position: tuple[str, str] = ("ra", "dec")


@dataclass
class Plan:
    """A checked query, ready for an engine (see module docstring)."""

    text: str
    tree: exp.Select
    bindings: dict[str, Binding]
    regions: dict[str, list[Region]] = field(default_factory=dict)
    join: PositionalJoin | None = None
    top: int | None = None
    #: Output column name → (alias, column) when it is a plain reference to a table column.
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)

    def sql(self, dialect: str, views: Mapping[str, str] | None = None,
            limit: int | None = None, tree: exp.Select | None = None) -> str:
        """The query (``tree``, default this plan's) for ``dialect`` (``spark`` or
        ``duckdb``); ``views`` renames bound views (alias → name) where the engine registered
        them under other names; ``limit`` caps the rows (with TOP, the smaller wins)."""
        tree = (tree or self.tree).copy()
        if views:
            for table in tree.find_all(exp.Table):
                alias = table.alias_or_name
                if alias in views:
                    table.set("this", exp.to_identifier(views[alias]))
        if limit is not None and (self.top is None or limit < self.top):
            tree.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
        return tree.sql(dialect=dialect, identify=True, comments=False)

    def row_cap(self, maxrec: int) -> tuple[int, bool]:
        """(rows to ask the engine for, whether getting more than ``maxrec`` of them means
        the result overflowed): one row past MAXREC tells an overflow from an exact fit."""
        if self.top is not None and self.top <= maxrec:
            return self.top, False
        return maxrec + 1, True

    @property
    def catalogue_aliases(self) -> list[str]:
        return [a for a, b in self.bindings.items() if b.source.kind == "catalogue"]


_STATEMENT_NODES = (exp.Select, exp.From, exp.Join, exp.Table, exp.TableAlias, exp.Where,
                    exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
                    exp.Distinct, exp.Alias, exp.Star, exp.DataType, exp.Cast, exp.DPipe,
                    exp.Lower, exp.Upper, exp.Mod, exp.Ln, exp.Pi, exp.Count, exp.Sum, exp.Avg,
                    exp.Min, exp.Max, exp.Trunc, exp.Rand, exp.Var)
_AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)
ALLOWED: tuple[type[exp.Expression], ...] = (
    *_STATEMENT_NODES, *PREDICATES, *OPERANDS, *FUNCTIONS)
#: ADQL functions sqlglot does not know (they parse as anonymous calls), translated below.
GEOMETRY = {"POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE",
            "COORD1", "COORD2", "COORDSYS", "AREA", "CENTROID", "REGION"}


def parse(text: str) -> exp.Select:
    """Parse one ADQL query; :class:`AdqlError` names line, column and token of a problem."""
    if not text or not text.strip():
        raise AdqlError("the query is empty: give an ADQL SELECT, e.g. "
                        "SELECT TOP 10 * FROM gaia_source")
    if len(text) > MAX_QUERY_CHARS:
        raise AdqlError(f"the query has {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
    if paren_depth(text) > MAX_DEPTH:
        raise AdqlError(f"the query nests parentheses deeper than {MAX_DEPTH} levels")
    try:
        statements = [s for s in sqlglot.parse(text, read=ADQL) if s is not None]
    except RecursionError:
        raise AdqlError(f"the query nests deeper than {MAX_DEPTH} levels") from None
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        line, col = first.get("line"), first.get("col")
        token = first.get("highlight") or ""
        if line is not None and col is not None and token:
            col = max(1, col - len(token) + 1)  # sqlglot gives the token's last column
        raise AdqlError(f"syntax error: {first.get('description', err)}", line, col,
                        token) from None
    if len(statements) != 1:
        raise AdqlError(f"the text holds {len(statements)} statements; send one SELECT")
    tree = statements[0]
    if tree_depth(tree, MAX_DEPTH) > MAX_DEPTH:
        raise AdqlError(f"the query nests deeper than {MAX_DEPTH} levels")
    if isinstance(tree, exp.SetOperation):
        raise AdqlError("UNION, INTERSECT and EXCEPT are not supported: run the queries "
                        "one by one", *position_of(tree, text))
    if not isinstance(tree, exp.Select):
        raise AdqlError(f"only SELECT queries run here, not {tree.key.upper()}",
                        *position_of(tree, text))
    return tree


def plan(text: str, sources: Iterable[Source]) -> Plan:
    """Parse, check and plan ``text`` over ``sources`` (the tables the caller may read)."""
    tree = parse(text)
    by_name = _names(sources)
    _refuse_unsupported(tree, text)
    bindings = _bind_tables(tree, by_name, text)
    _expand_stars(tree, bindings)
    _qualify_columns(tree, bindings, text)
    catalogue = [a for a, b in bindings.items() if b.source.kind == "catalogue"]
    regions = geometry.regions(tree, catalogue, text)
    join = geometry.positional_join(tree, bindings, text)
    geometry.translate(tree, text)
    _check_nodes(tree, text)
    used: dict[str, list[str]] = {alias: [] for alias in bindings}
    for column in tree.find_all(exp.Column):
        if column.table in used and column.name not in used[column.table]:
            used[column.table].append(column.name)
    bindings = {alias: Binding(b.source, alias, b.view, tuple(used[alias]))
                for alias, b in bindings.items()}
    top = _top(tree, text)
    return Plan(text, tree, bindings, regions, join, top, _origins(tree))


def _names(sources: Iterable[Source]) -> dict[str, Source]:
    names: dict[str, Source] = {}
    for source in sources:
        for name in (source.name, *source.aliases):
            names[name.lower()] = source
    return names


def _refuse_unsupported(tree: exp.Select, text: str) -> None:
    for node in tree.walk():
        if node is not tree and isinstance(node, (exp.Select, exp.Subquery, exp.Exists)):
            raise AdqlError("subqueries are not supported: write the query without a nested "
                            "SELECT (JOINs are)", *position_of(node, text))
        if isinstance(node, exp.With):
            raise AdqlError("WITH is not supported: write the query without it",
                            *position_of(node, text))
        if isinstance(node, exp.Window):
            raise AdqlError("window functions (OVER) are not in ADQL", *position_of(node, text))
        if isinstance(node, exp.Into):
            raise AdqlError("SELECT ... INTO is not allowed: results go to the response",
                            *position_of(node, text))


def _bind_tables(tree: exp.Select, by_name: Mapping[str, Source],
                 text: str) -> dict[str, Binding]:
    bindings: dict[str, Binding] = {}
    for index, table in enumerate(tree.find_all(exp.Table)):
        written = ".".join(p.name for p in table.parts)
        source = by_name.get(written.lower())
        if source is None:
            close = difflib.get_close_matches(written.lower(), list(by_name), n=3, cutoff=0.5)
            advice = (f"did you mean {', '.join(dict.fromkeys(by_name[c].name for c in close))}?"
                      if close
                      else f"tables: {', '.join(sorted({s.name for s in by_name.values()}))}")
            raise AdqlError(f"unknown table {written!r}; {advice}", *position_of(table, text))
        alias = table.alias or source.key
        if alias.lower() in {a.lower() for a in bindings}:
            raise AdqlError(f"the table name or alias {alias!r} is used twice: give each table "
                            "its own alias", *position_of(table, text))
        view = f"_t{index}"
        bindings[alias] = Binding(source, alias, view, ())
        table.set("this", exp.to_identifier(view))
        table.set("db", None)
        table.set("catalog", None)
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    if not bindings:
        raise AdqlError("the query reads no table: add FROM gaia_source (or another table "
                        "of TAP_SCHEMA.tables)")
    return bindings


def _expand_stars(tree: exp.Select, bindings: Mapping[str, Binding]) -> None:
    """``*`` and ``t.*`` become the columns, named once each (a repeat gets ``<alias>_``)."""
    out: list[exp.Expression] = []
    seen: set[str] = set()
    for item in tree.expressions:
        star_of = None
        if isinstance(item, exp.Star):
            star_of = list(bindings)
        elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            star_of = [_alias_of(item.table, bindings)] if item.table else list(bindings)
        if star_of is None:
            if not isinstance(item, (exp.Alias, exp.Column)):
                # an expression is named by its own ADQL text (as written, with spaces
                # normalised), the same on both engines
                item = exp.alias_(item, _output_name(item, seen), quoted=True)
            out.append(item)
            seen.add(item.alias_or_name.lower())
            continue
        for alias in star_of:
            for name in bindings[alias].source.columns:
                column = exp.column(name, table=alias, quoted=True)
                label = name if name.lower() not in seen else f"{alias}_{name}"
                seen.add(label.lower())
                out.append(column if label == name else exp.alias_(column, label, quoted=True))
    tree.set("expressions", out)


def _output_name(item: exp.Expression, seen: set[str]) -> str:
    name = item.sql(dialect=ADQL)[:64] or "expr"
    base, n = name, 1
    while name.lower() in seen:
        n += 1
        name = f"{base}_{n}"
    return name


def _alias_of(written: str, bindings: Mapping[str, Binding]) -> str:
    for alias in bindings:
        if alias.lower() == written.lower():
            return alias
    for alias, binding in bindings.items():  # the table's own name, as in gaia_source.ra
        names = (binding.source.name, binding.source.key, *binding.source.aliases)
        if written.lower() in {n.lower() for n in names} or \
                written.lower() == binding.source.name.split(".")[-1].lower():
            return alias
    raise AdqlError(f"unknown table or alias {written!r}; the query's tables are "
                    f"{', '.join(bindings)}")


def _qualify_columns(tree: exp.Select, bindings: Mapping[str, Binding], text: str) -> None:
    """Qualify every column by its table's alias, in the table's own spelling."""
    output_names = {e.alias.lower() for e in tree.expressions if isinstance(e, exp.Alias)}
    for column in list(tree.find_all(exp.Column)):
        if isinstance(column.this, exp.Star):
            raise AdqlError("'*' is only allowed in the SELECT list or COUNT(*)",
                            *position_of(column, text))
        name = column.name
        if column.table:
            try:
                alias = _alias_of(".".join(p.name for p in column.parts[:-1]), bindings)
            except AdqlError as err:
                raise AdqlError(str(err), *position_of(column, text)) from None
            candidates = [alias]
        else:
            candidates = [a for a, b in bindings.items()
                          if name.lower() in {c.lower() for c in b.source.columns}]
            if not candidates and name.lower() in output_names and _in_order_or_group(column):
                continue  # ORDER BY / GROUP BY an output alias
            if len(candidates) > 1:
                raise AdqlError(f"column {name!r} is in several tables ({', '.join(candidates)})"
                                f": write it as {candidates[0]}.{name}",
                                *position_of(column, text))
        spelled = _spelling(name, bindings[candidates[0]].source.columns) if candidates else None
        if spelled is None:
            known = sorted({c for a in (candidates or bindings)
                            for c in bindings[a].source.columns})
            close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=3,
                                              cutoff=0.6)
            advice = (f"did you mean {', '.join(close)}?" if close
                      else "see TAP_SCHEMA.columns for the columns of each table")
            raise AdqlError(f"unknown column {name!r}; {advice}", *position_of(column, text))
        column.replace(exp.column(spelled, table=candidates[0], quoted=True))


def _in_order_or_group(node: exp.Expression) -> bool:
    return node.find_ancestor(exp.Order, exp.Group) is not None


def _spelling(name: str, columns: Iterable[str]) -> str | None:
    for column in columns:
        if column.lower() == name.lower():
            return column
    return None


def _check_nodes(tree: exp.Select, text: str) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Literal) and node.is_string and len(node.this) > MAX_TEXT_CHARS:
            raise AdqlError(f"a string of {len(node.this):,} characters: at most "
                            f"{MAX_TEXT_CHARS:,} (each result row would carry it)",
                            *position_of(node, text))
        if isinstance(node, exp.Anonymous):
            raise AdqlError(f"unknown function {node.name}(): ADQL's math, string and "
                            "geometry functions are available (no user-defined functions)",
                            *position_of(node, text))
        if isinstance(node, exp.Trunc) and node.args.get("decimals") is not None:
            raise AdqlError("TRUNCATE with a number of digits is not supported: use "
                            "ROUND(x, n) or TRUNCATE(x)", *position_of(node, text))
        if isinstance(node, exp.Rand) and node.this is not None:
            raise AdqlError("RAND(seed) is not supported: use RAND()", *position_of(node, text))
        if isinstance(node, ALLOWED):
            continue
        raise AdqlError(f"{node.key.upper()} is not allowed in a query here",
                        *position_of(node, text))
    if tree.args.get("joins"):
        for join in tree.args["joins"]:
            if join.args.get("using"):
                raise AdqlError("JOIN ... USING is not supported: write JOIN ... ON a.x = b.x",
                                *position_of(join, text))


def _top(tree: exp.Select, text: str) -> int | None:
    limit = tree.args.get("limit")
    if limit is None:
        return None
    value = limit.expression
    if not (isinstance(value, exp.Literal) and value.is_int and int(value.this) >= 0):
        raise AdqlError("TOP takes a whole number of rows", *position_of(limit, text))
    return int(value.this)


def _origins(tree: exp.Select) -> dict[str, tuple[str, str]]:
    origins = {}
    for item in tree.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Column):
            origins[item.alias_or_name] = (inner.table, inner.name)
    return origins


def aggregates(tree: exp.Select) -> bool:
    """Whether the query aggregates (its row count is not its scan's)."""
    return bool(tree.args.get("group")) or any(
        isinstance(n, _AGGREGATES) for e in tree.expressions for n in e.walk())
