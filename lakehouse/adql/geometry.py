"""ADQL's geometry on our tables: sky regions for pruning, a crossmatch, plain SQL for the rest.

Three passes over a query whose columns are already qualified:

* :func:`regions` — each top-level condition ``CONTAINS(POINT(ra, dec), shape) = 1``
  or ``DISTANCE(POINT(ra, dec), POINT(α, δ)) < r`` on a catalogue table's own
  position, with a constant shape, becomes a :mod:`lakehouse.regions` search
  (cone, box, polygon): the HEALPix coverage that prunes partitions, files and
  row groups, and the exact geometry both readers apply.
* :func:`positional_join` — a join condition that is a separation between the
  positions of two tables becomes a :class:`~lakehouse.adql.parse.PositionalJoin`.
* :func:`translate` — whatever geometry is left becomes SQL arithmetic: the
  haversine distance of :func:`lakehouse.regions.angular_distance_deg` (the
  same formula, so every path keeps the same rows), ``COORD1/2`` the
  coordinates, ``CONTAINS`` a 1/0 value.

Positions are ICRS degrees; the coordinate-system argument may be omitted
(ADQL 2.1), ``''`` or ``'ICRS'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from lakehouse.adql.errors import AdqlError, position_of
from lakehouse.regions import BoxSearch, ConeSearch, PolygonSearch, Region

if TYPE_CHECKING:
    from lakehouse.adql.parse import Binding, PositionalJoin

SYSTEMS = {"", "ICRS"}
#: Widest separation a join runs as the lakehouse crossmatch (its own limit, 3600").
MAX_JOIN_RADIUS_DEG = 1.0
_HAVERSINE = sqlglot.parse_one(
    "DEGREES(2 * ASIN(SQRT(LEAST(1.0, POWER(SIN((RADIANS(__d2) - RADIANS(__d1)) / 2), 2)"
    " + COS(RADIANS(__d1)) * COS(RADIANS(__d2)) * POWER(SIN((RADIANS(__a2) - RADIANS(__a1))"
    " / 2), 2)))))")
_COMPARE = {exp.LT: "lt", exp.LTE: "le", exp.GT: "gt", exp.GTE: "ge"}


def _call(node: exp.Expression) -> tuple[str, list[exp.Expression]] | None:
    """(NAME, arguments) of an ADQL geometry call, else None; CONTAINS and INTERSECTS
    are checked to have their two arguments."""
    node = _bare(node)
    if isinstance(node, exp.Contains):
        return "CONTAINS", [node.this, node.expression]
    if isinstance(node, exp.Anonymous):
        name, args = node.name.upper(), list(node.expressions)
        if name in ("CONTAINS", "INTERSECTS") and len(args) != 2:
            raise AdqlError(f"{name} takes two regions, e.g. {name}(POINT('ICRS', ra, dec), "
                            "CIRCLE('ICRS', 10, 20, 0.5))")
        return name, args
    return None


def _bare(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def constant(node: exp.Expression) -> float | None:
    """The value of a numeric constant expression (literals, + - * /, parentheses)."""
    node = _bare(node)
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this)
    if isinstance(node, exp.Neg):
        value = constant(node.this)
        return None if value is None else -value
    ops = {exp.Add: float.__add__, exp.Sub: float.__sub__, exp.Mul: float.__mul__,
           exp.Div: float.__truediv__}
    for kind, op in ops.items():
        if isinstance(node, kind):
            a, b = constant(node.this), constant(node.expression)
            if a is None or b is None or (kind is exp.Div and b == 0):
                return None
            return op(a, b)
    return None


def _system(args: list[exp.Expression], arity: int, what: str, text: str) -> list[exp.Expression]:
    """``args`` without the leading coordinate system (checked to be ICRS)."""
    if len(args) == arity + 1 or (len(args) > arity and what == "POLYGON"
                                  and isinstance(_bare(args[0]), exp.Literal)
                                  and _bare(args[0]).is_string):
        system = _bare(args[0])
        if not (isinstance(system, exp.Literal) and system.is_string):
            raise AdqlError(f"the first argument of {what} is its coordinate system, a string "
                            "such as 'ICRS'", *position_of(args[0], text))
        if system.this.strip().upper() not in SYSTEMS:
            raise AdqlError(f"coordinate system {system.this!r}: positions here are ICRS "
                            "(use the l and b columns for Galactic ones)",
                            *position_of(args[0], text))
        return args[1:]
    return args


def point(node: exp.Expression, text: str) -> tuple[exp.Expression, exp.Expression] | None:
    """(ra, dec) expressions of ``POINT([system,] ra, dec)``, else None."""
    call = _call(node)
    if call is None or call[0] != "POINT":
        return None
    args = _system(call[1], 2, "POINT", text)
    if len(args) != 2:
        raise AdqlError("POINT takes ([system,] ra, dec)", *position_of(node, text))
    return args[0], args[1]


def shape(node: exp.Expression, text: str) -> tuple[str, list[exp.Expression]] | None:
    """("circle", [ra, dec, r]) | ("box", [ra, dec, w, h]) | ("polygon", [ra1, dec1, ...])
    | ("point", [ra, dec]), else None."""
    call = _call(node)
    if call is None:
        return None
    name, args = call
    if name == "POINT":
        return "point", list(point(node, text) or ())
    if name == "CIRCLE":
        args = _system(args, 3, name, text)
        if len(args) == 2 and point(args[0], text):
            return "circle", [*point(args[0], text), args[1]]  # type: ignore[misc]
        if len(args) != 3:
            raise AdqlError("CIRCLE takes ([system,] ra, dec, radius) or (POINT, radius)",
                            *position_of(node, text))
        return "circle", args
    if name == "BOX":
        args = _system(args, 4, name, text)
        if len(args) != 4:
            raise AdqlError("BOX takes ([system,] ra, dec, width, height)",
                            *position_of(node, text))
        return "box", args
    if name == "POLYGON":
        args = _system(args, len(args) - 1 if len(args) % 2 else len(args), name, text)
        if args and all(point(a, text) for a in args):
            args = [c for a in args for c in point(a, text)]  # type: ignore[union-attr]
        if len(args) < 6 or len(args) % 2:
            raise AdqlError("POLYGON takes ([system,] ra1, dec1, ra2, dec2, ra3, dec3, ...): "
                            "three vertices or more", *position_of(node, text))
        return "polygon", args
    return None


def distance(ra1: exp.Expression, dec1: exp.Expression, ra2: exp.Expression,
             dec2: exp.Expression) -> exp.Expression:
    """Great-circle distance in degrees as SQL (haversine, as the regions compute it)."""
    values = {"__a1": ra1, "__d1": dec1, "__a2": ra2, "__d2": dec2}

    def fill(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name in values:
            return exp.paren(values[node.name].copy(), copy=False)
        return node

    return _HAVERSINE.copy().transform(fill)


def _conjuncts(condition: exp.Expression | None) -> list[exp.Expression]:
    if condition is None:
        return []
    condition = _bare(condition)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]


def _conditions(tree: exp.Select) -> list[exp.Expression]:
    """Top-level AND terms of WHERE and of inner joins' ON: each must hold for every row."""
    where = tree.args.get("where")
    terms = _conjuncts(where.this if where else None)
    for join in tree.args.get("joins") or []:
        if (join.side or "").upper() in ("", "INNER") and (join.kind or "").upper() != "CROSS":
            terms += _conjuncts(join.args.get("on"))
    return terms


def _contains(term: exp.Expression, text: str) -> tuple[exp.Expression, exp.Expression] | None:
    """(point, shape) of ``CONTAINS(point, shape) = 1`` (either order; or INTERSECTS)."""
    term = _bare(term)
    if isinstance(term, exp.EQ):
        for call, one in ((term.this, term.expression), (term.expression, term.this)):
            found = _call(call)
            if found and found[0] in ("CONTAINS", "INTERSECTS") and constant(one) == 1.0:
                first, second = found[1]
                if found[0] == "INTERSECTS" and point(second, text):
                    first, second = second, first
                return first, second
    return None


def _within(term: exp.Expression, text: str) -> tuple[exp.Expression, exp.Expression,
                                                       float] | None:
    """(point, point, radius) of ``DISTANCE(p, q) < r`` (or ``<=``, or ``r > DISTANCE``)."""
    term = _bare(term)
    op = _COMPARE.get(type(term))
    if op is None:
        return None
    left, right = term.this, term.expression
    if op in ("gt", "ge"):
        left, right = right, left
    call = _call(left)
    radius = constant(right)
    if call is None or call[0] != "DISTANCE" or radius is None or len(call[1]) != 2:
        return None
    return call[1][0], call[1][1], radius


def _own_position(p: exp.Expression, text: str, aliases: list[str]) -> str | None:
    """The catalogue alias when ``p`` is POINT(alias.ra, alias.dec), else None."""
    coords = point(p, text)
    if coords is None:
        return None
    ra, dec = (_bare(c) for c in coords)
    if (isinstance(ra, exp.Column) and isinstance(dec, exp.Column) and ra.table == dec.table
            and ra.table in aliases and (ra.name, dec.name) == ("ra", "dec")):
        return ra.table
    return None


def regions(tree: exp.Select, aliases: list[str], text: str) -> dict[str, list[Region]]:
    """The sky regions restricting each catalogue alias (see module docstring). A polygon's
    condition is taken out of the query: its region applies it exactly, SQL cannot."""
    found: dict[str, list[Region]] = {}
    for term in _conditions(tree):
        region, alias = None, None
        pair = _contains(term, text)
        if pair is not None:
            alias = _own_position(pair[0], text, aliases)
            region = _constant_region(shape(pair[1], text), text, pair[1]) if alias else None
        within = _within(term, text)
        if within is not None:
            for p, q in ((within[0], within[1]), (within[1], within[0])):
                alias = _own_position(p, text, aliases)
                centre = point(q, text)
                values = [constant(c) for c in centre] if centre and alias else []
                if alias and all(v is not None for v in values):
                    region = _cone(values[0], values[1], within[2], term, text)  # type: ignore[arg-type]
                    break
        if region is None or alias is None:
            continue
        found.setdefault(alias, []).append(region)
        if isinstance(region, PolygonSearch):
            term.replace(exp.true())
    return found


def _cone(ra: float, dec: float, radius: float, node: exp.Expression, text: str) -> Region:
    try:
        return ConeSearch(ra % 360.0, dec, min(radius, 180.0))
    except ValueError as err:
        raise AdqlError(str(err), *position_of(node, text)) from None


def _constant_region(found: tuple[str, list[exp.Expression]] | None, text: str,
                     node: exp.Expression) -> Region | None:
    if found is None:
        return None
    kind, args = found
    values = [constant(a) for a in args]
    if any(v is None for v in values):
        if kind == "polygon":
            raise AdqlError("a POLYGON's vertices must be numbers", *position_of(node, text))
        return None
    try:
        if kind == "circle":
            return _cone(values[0], values[1], values[2], node, text)  # type: ignore[arg-type]
        if kind == "box":
            ra, dec, width, height = values  # type: ignore[misc]
            if not 0 < width < 360 or not 0 < height <= 180:
                raise ValueError("a BOX's width must be in (0, 360) and height in (0, 180] "
                                 "degrees")
            return BoxSearch((ra - width / 2) % 360.0, (ra + width / 2) % 360.0,
                             max(dec - height / 2, -90.0), min(dec + height / 2, 90.0))
        if kind == "polygon":
            pairs = [(ra % 360.0, dec) for ra, dec in  # type: ignore[operator]
                     zip(values[::2], values[1::2], strict=True)]
            if len(set(pairs)) < 3:
                raise ValueError("a POLYGON needs three distinct vertices or more")
            return PolygonSearch(tuple(pairs))
    except ValueError as err:
        raise AdqlError(str(err), *position_of(node, text)) from None
    return None


def positional_join(tree: exp.Select, bindings: Mapping[str, Binding],
                    text: str) -> PositionalJoin | None:
    """The crossmatch of a two-table inner join on separation, the catalogue on the left."""
    from lakehouse.adql.parse import PositionalJoin

    joins = tree.args.get("joins") or []
    if len(bindings) != 2 or len(joins) != 1 or (joins[0].side or "").upper() not in ("",
                                                                                        "INNER"):
        return None
    for term in _conditions(tree):
        found = _separation(term, text)
        if found is None:
            continue
        first, second, radius = found
        owners = _owner(first), _owner(second)
        if None in owners or owners[0] == owners[1] or not 0 < radius <= MAX_JOIN_RADIUS_DEG:
            continue  # beyond the crossmatch's reach, the join runs as SQL
        for (left, own), (right, other) in (((owners[0], first), (owners[1], second)),
                                            ((owners[1], second), (owners[0], first))):
            if bindings[left].source.kind == "catalogue" and _names(own) == ("ra", "dec"):
                return PositionalJoin(left, right, radius, _names(other))  # type: ignore[arg-type]
    return None


def _separation(term: exp.Expression, text: str) -> tuple[
        tuple[exp.Expression, ...], tuple[exp.Expression, ...], float] | None:
    """(position, position, radius) of a condition bounding the separation of two points."""
    pair = _contains(term, text)
    if pair is not None:
        p, found = point(pair[0], text), shape(pair[1], text)
        radius = constant(found[1][2]) if found and found[0] == "circle" else None
        if p is None or found is None or radius is None:
            return None
        return tuple(p), tuple(found[1][:2]), radius
    within = _within(term, text)
    if within is None:
        return None
    p, q = point(within[0], text), point(within[1], text)
    return (tuple(p), tuple(q), within[2]) if p and q else None


def _names(coords: tuple[exp.Expression, ...]) -> tuple[str, str]:
    return tuple(_bare(c).name for c in coords)  # type: ignore[return-value]


def _owner(coords: tuple[exp.Expression, ...] | None) -> str | None:
    """The one alias both coordinates are plain columns of, else None."""
    if not coords or len(coords) != 2:
        return None
    ra, dec = (_bare(c) for c in coords)
    if isinstance(ra, exp.Column) and isinstance(dec, exp.Column) and ra.table == dec.table:
        return ra.table
    return None


def translate(tree: exp.Select, text: str) -> None:
    """Rewrite the geometry left in ``tree`` as SQL both engines run (in place)."""
    for term in list(tree.walk()):
        if term.parent is None and term is not tree:
            continue  # replaced with an ancestor
        pair = _contains(term, text)
        if pair is not None:
            term.replace(_overlap(pair[0], pair[1], text) or _inside(pair[0], pair[1], text))
    tree.transform(lambda node: _value(node, text), copy=False)


def _overlap(first: exp.Expression, second: exp.Expression,
             text: str) -> exp.Expression | None:
    """Two circles meet (INTERSECTS of circles) as a SQL condition, else None."""
    a, b = shape(first, text), shape(second, text)
    if not (a and b and a[0] == "circle" and b[0] == "circle"):
        return None
    (ra1, dec1, r1), (ra2, dec2, r2) = a[1], b[1]
    return exp.LTE(this=distance(ra1, dec1, ra2, dec2),
                   expression=exp.Add(this=exp.paren(r1.copy()), expression=exp.paren(r2.copy())))


def _inside(p: exp.Expression, region: exp.Expression, text: str) -> exp.Expression:
    """``p`` inside ``region`` as a SQL condition."""
    coords = point(p, text)
    found = shape(region, text)
    if coords is None or found is None:
        raise AdqlError("CONTAINS takes (POINT, CIRCLE | BOX | POLYGON)",
                        *position_of(p, text))
    kind, args = found
    ra, dec = coords
    if kind == "circle":
        return exp.LTE(this=distance(ra, dec, args[0], args[1]), expression=exp.paren(args[2]))
    if kind == "point":
        return exp.LTE(this=distance(ra, dec, args[0], args[1]), expression=exp.Literal.number(0))
    if kind == "box":
        # RA offset from the centre in (-180, 180], then the two half-widths
        offset = sqlglot.parse_one("ABS(MOD(__ra - (__c) + 540.0, 360.0) - 180.0)")
        offset = offset.transform(lambda n: exp.paren(ra.copy()) if n.name == "__ra" else (
            args[0].copy() if n.name == "__c" else n))
        half_w = exp.Div(this=exp.paren(args[2].copy()), expression=exp.Literal.number(2))
        half_h = exp.Div(this=exp.paren(args[3].copy()), expression=exp.Literal.number(2))
        return exp.and_(
            exp.LTE(this=offset, expression=half_w),
            exp.LTE(this=exp.Abs(this=exp.Sub(this=exp.paren(dec.copy()),
                                              expression=exp.paren(args[1].copy()))),
                    expression=half_h))
    raise AdqlError("a POLYGON may only be a condition of its own (AND-ed with the rest) on a "
                    "catalogue table's POINT(ra, dec), with numbers for its vertices",
                    *position_of(region, text))


def _value(node: exp.Expression, text: str) -> exp.Expression:
    """One geometry call used as a value, as SQL."""
    call = _call(node) if not isinstance(node, exp.Paren) else None
    if call is None:
        return node
    name, args = call
    if name == "DISTANCE":
        if len(args) == 2:
            p, q = point(args[0], text), point(args[1], text)
            if p is None or q is None:
                raise AdqlError("DISTANCE takes (POINT, POINT) or (ra1, dec1, ra2, dec2)",
                                *position_of(node, text))
            return exp.paren(distance(*p, *q))
        if len(args) == 4:
            return exp.paren(distance(*args))
        raise AdqlError("DISTANCE takes (POINT, POINT) or (ra1, dec1, ra2, dec2)",
                        *position_of(node, text))
    if name in ("COORD1", "COORD2"):
        coords = point(args[0], text) if len(args) == 1 else None
        if coords is None:
            raise AdqlError(f"{name} takes a POINT", *position_of(node, text))
        return exp.paren(coords[0 if name == "COORD1" else 1].copy())
    if name == "COORDSYS":
        return exp.Literal.string("ICRS")
    if name in ("CONTAINS", "INTERSECTS"):
        first, second = args
        if name == "INTERSECTS" and point(second, text):
            first, second = second, first
        condition = (_overlap(first, second, text) if name == "INTERSECTS" else None) or \
            _inside(first, second, text)
        return exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                        default=exp.Literal.number(0))
    if name in ("POINT", "CIRCLE", "BOX", "POLYGON"):
        raise AdqlError(f"a {name} cannot be a column of the result: select its coordinates "
                        "(e.g. ra, dec) instead", *position_of(node, text))
    raise AdqlError(f"{name}() is not supported here", *position_of(node, text))
