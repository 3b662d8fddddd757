"""Angles on the command line: a bare number in the option's own unit, or an astropy quantity.

``avip cone --radius 0.5`` is half a degree and ``avip xmatch --radius 2`` two
arcseconds, as always; either also takes a quantity such as ``2arcsec``,
``0.5deg``, ``30arcmin`` or ``1.5 mas``, converted to the option's unit. A
value that is not an angle, or is negative or not finite, is a usage error
(exit status 2, message on stderr).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import typer

#: Written after the option's help text.
QUANTITY_HELP = "A bare number is in {unit}; or give a quantity: 2arcsec, 0.5deg, 30arcmin."
_UNIT_WORDS = {"deg": "degrees", "arcmin": "arcminutes", "arcsec": "arcseconds"}


def parse_angle(text: str, unit: str) -> float:
    """``text`` as a non-negative angle in ``unit`` (an astropy unit name such as ``deg``).

    >>> parse_angle("0.5", "deg"), parse_angle("30arcmin", "deg"), parse_angle("0.5deg", "arcsec")
    (0.5, 0.5, 1800.0)

    Raises
    ------
    ValueError
        The text is not a number or quantity, not an angle, negative or not finite.
    """
    # astropy.units costs 0.4-0.9 s to import: only commands given an angle pay it, not `--help`.
    import astropy.units as u

    try:
        quantity = u.Quantity(text.strip())
    except (TypeError, ValueError):
        raise ValueError(
            f"{text!r} is not a number or an angle such as 2arcsec, 0.5deg or 30arcmin"
        ) from None
    if quantity.unit == u.dimensionless_unscaled:
        quantity = quantity.value * u.Unit(unit)
    if quantity.unit.physical_type != "angle":
        raise ValueError(
            f"{text!r} is not an angle ({quantity.unit} is a {quantity.unit.physical_type}); "
            "use deg, arcmin, arcsec or mas"
        )
    value = float(quantity.to_value(unit))
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite angle")
    if value < 0:
        raise ValueError(f"{text!r} is negative; a radius is at least 0")
    return value


def angle_option(unit: str, help: str, *names: str) -> Any:
    """A Typer option (``Annotated[float, angle_option("deg", "Radius.")]``) for an angle
    in ``unit``: its help says what a bare number means; a bad value is a usage error."""
    words = _UNIT_WORDS.get(unit, unit)
    return typer.Option(*names, help=f"{help} {QUANTITY_HELP.format(unit=words)}",
                        parser=angle_parser(unit), metavar="ANGLE")


def angle_parser(unit: str) -> Callable[[str | float], float]:
    """A Typer ``parser`` for an angle in ``unit``: a bad value is a usage error."""

    def parse(text: str | float) -> float:
        try:
            return parse_angle(str(text), unit)  # a default comes as a float
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    return parse
