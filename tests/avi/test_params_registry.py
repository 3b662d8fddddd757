"""Parameter validation messages, CLI parsing, the registry and broken plugins."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from avi_plugins.params import ParamsError, parse_cli_params
from avi_plugins.registry import BrokenAVIError, UnknownAVIError, get_avi, list_avis
from cli.avi import avi_app

BUNDLED = {"cone_search", "sky_counts", "cmd_diagram", "crossmatch", "cluster_finder"}


def test_out_of_range_param_names_field_and_range():
    avi = get_avi("cone_search")
    with pytest.raises(ParamsError) as error:
        avi.parse_params({"radius_deg": 11, "dec": -91})
    fields = {p["field"]: p["allowed"] for p in error.value.problems}
    assert fields["radius_deg"] == "0.0 < radius_deg <= 10.0"
    assert fields["dec"] == "-90.0 <= dec <= 90.0"


def test_unknown_param_and_bad_choice_are_explained():
    avi = get_avi("cluster_finder")
    with pytest.raises(ParamsError) as error:
        avi.parse_params({"selection_method": "best", "colour": 1})
    text = str(error.value)
    assert "selection_method" in text and "'leaf', 'eom'" in text
    assert "colour: unknown parameter" in text


def test_cli_values_follow_the_schema_types():
    schema = get_avi("cone_search").params_schema()
    params = parse_cli_params(["radius_deg=0.25", "formats=[\"csv\"]", "shape=box"], schema)
    assert params == {"radius_deg": 0.25, "formats": ["csv"], "shape": "box"}


def test_bundled_avis_register_through_entry_points():
    found = {item.name: item for item in list_avis()}
    assert BUNDLED <= set(found)
    assert not any(found[name].broken for name in BUNDLED)
    assert found["cluster_finder"].distribution == "avip"


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    """A real installed-style distribution (dist-info with entry points) whose module fails."""
    dist = tmp_path / "avip_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: avip-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [avip.avis]
        broken_one = avip_broken_mod:Nope
        missing_one = avip_no_such_module:Thing
    """))
    (tmp_path / "avip_broken_mod.py").write_text("raise ImportError('numpy too old, say')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broken_plugins_are_listed_as_broken_and_others_still_work(broken_plugin):
    found = {item.name: item for item in list_avis()}
    assert found["broken_one"].broken and "numpy too old" in found["broken_one"].error
    assert found["missing_one"].broken and "avip_no_such_module" in found["missing_one"].error
    assert BUNDLED <= {name for name, item in found.items() if not item.broken}
    with pytest.raises(BrokenAVIError):
        get_avi("broken_one")
    get_avi("sky_counts")  # unaffected
    result = CliRunner().invoke(avi_app, ["list"])
    assert result.exit_code == 0
    assert "broken" in result.output and "cluster_finder" in result.output


def test_unknown_avi_is_a_clear_error():
    with pytest.raises(UnknownAVIError, match="installed: .*cone_search"):
        get_avi("no_such_avi")
    result = CliRunner().invoke(avi_app, ["run", "no_such_avi"])
    assert result.exit_code == 2


def test_cli_run_refuses_bad_params_with_exit_2():
    result = CliRunner().invoke(avi_app, ["run", "sky_counts", "-p", "order=11"])
    assert result.exit_code == 2
    assert "order" in result.output and "0 <= order <= 10" in result.output
