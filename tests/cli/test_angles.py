"""Angles on the command line (cli/angles.py): ``avip cone --radius`` in degrees and
``avip xmatch --radius`` in arcseconds take a bare number in that unit or an astropy
quantity; anything else is a usage error (exit 2, message on stderr)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

import lakehouse
from cli.angles import parse_angle
from cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    "text, unit, expected",
    [
        ("0.5", "deg", 0.5),  # a bare number keeps the option's unit
        ("2", "arcsec", 2.0),
        ("2arcsec", "arcsec", 2.0),
        ("2 arcsec", "deg", 2 / 3600),
        ("0.5deg", "arcsec", 1800.0),
        ("0.5deg", "deg", 0.5),
        ("30arcmin", "deg", 0.5),
        ("1.5arcmin", "arcsec", 90.0),
        ("250 mas", "arcsec", 0.25),
        (" 1e-3 rad ", "deg", 0.057295779513082325),
        ("0", "deg", 0.0),  # the searches say what range they take
    ],
)
def test_angles_in_the_options_unit(text: str, unit: str, expected: float) -> None:
    assert parse_angle(text, unit) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "text, message",
    [
        ("3kg", "is not an angle (kg is a mass)"),
        ("2 arcsec2", "is not an angle"),  # a solid angle
        ("garbage", "is not a number or an angle"),
        ("deg", "is not a number or an angle"),
        ("", "is not a number or an angle"),
        ("-1", "is negative"),
        ("-2arcsec", "is negative"),
        ("inf", "is not a finite angle"),
        ("nan deg", "is not a finite angle"),
    ],
)
def test_what_is_not_a_radius_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_angle(text, "deg")


def _avip(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


class _Reader:
    """Stands in for the in-process reader: records the radius the command passed."""

    pinned_version = 3

    def __init__(self) -> None:
        self.radii: list[float] = []

    def cone(self, ra: float, dec: float, radius_deg: float, **kw) -> pa.Table:
        self.radii.append(radius_deg)
        return pa.table({"source_id": [1, 2], "ra": [ra, ra], "dec": [dec, dec]})


@pytest.mark.parametrize("radius, degrees", [("0.25", 0.25), ("30arcmin", 0.5), ("36arcsec", 0.01)])
def test_cone_radius_reaches_the_search_in_degrees(
    radius: str, degrees: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = _Reader()
    monkeypatch.setattr(lakehouse, "open_interactive", lambda *a, **kw: reader)
    out = tmp_path / "cone.csv"
    result = _avip("cone", "--ra", "10", "--dec", "20", "--radius", radius, "-o", str(out),
                   "--root", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert reader.radii == [pytest.approx(degrees, rel=1e-12)]
    assert pacsv.read_csv(out).num_rows == 2


@pytest.mark.parametrize(
    "command, radius, message",
    [
        ("cone", "3kg", "'3kg' is not an angle (kg is a mass)"),
        ("cone", "garbage", "'garbage' is not a number or an angle"),
        ("cone", "-0.5deg", "'-0.5deg' is negative"),
        ("xmatch", "3kg", "'3kg' is not an angle"),
        ("xmatch", "two", "'two' is not a number or an angle"),
    ],
)
def test_a_bad_radius_exits_2_with_a_message_on_stderr(
    command: str, radius: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_search(*args, **kwargs):
        raise AssertionError("the command ran with a bad radius")

    monkeypatch.setattr(lakehouse, "open_interactive", no_search)
    monkeypatch.setattr(lakehouse, "open_catalog", no_search)
    monkeypatch.setattr(lakehouse, "read_table", no_search)
    where = ["--ra", "10", "--dec", "20"] if command == "cone" else [str(tmp_path / "mine.csv")]
    result = _avip(command, *where, "--radius", radius, "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 2
    assert message in result.stderr and "--radius" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command, unit", [("cone", "degrees"), ("xmatch", "arcseconds")])
def test_help_says_the_unit_of_a_bare_number(command: str, unit: str) -> None:
    result = _avip(command, "--help")
    assert result.exit_code == 0
    assert f"A bare number is in {unit}; or give a quantity: 2arcsec, 0.5deg" in result.stdout
