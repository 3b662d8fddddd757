"""Launch forms generated from the real AVIs' schemas: widgets, inline errors, submission
through the real API (bad values submit nothing; server-side rules come back inline)."""

from __future__ import annotations

import panel as pn
import pytest

from avi_plugins.registry import get_avi
from panel_apps.forms import LaunchForm, field_specs, validate
from panel_apps.session import PlatformSession


def signed_in(live_api, name: str = "alice", roles: list[str] | None = None) -> PlatformSession:  # type: ignore[no-untyped-def]
    session = PlatformSession(api_url=live_api.url)
    assert session.sign_in(live_api.make_user(name, roles))
    return session


def test_cone_search_schema_gives_typed_widgets_with_defaults_and_ranges() -> None:
    schema = get_avi("cone_search").params_schema()
    specs = {s.name: s for s in field_specs(schema)}
    assert specs["shape"].kind == "enum" and specs["ra"].kind == "number"
    assert specs["max_rows"].kind == "integer" and specs["formats"].kind == "choices"
    assert specs["ra_min"].optional and not specs["ra"].optional
    assert specs["filters"].kind == "json" and not specs["filters"].simple
    assert "-90.0 <= dec <= 90.0" in specs["dec"].help and "Dec" in specs["dec"].help
    form = LaunchForm(PlatformSession(), avi="cone_search", schema=schema)
    assert form.widgets["ra"].value == 56.75 and form.widgets["shape"].options == ["cone", "box"]
    assert isinstance(form.widgets["max_rows"], pn.widgets.IntInput)
    assert form.widgets["formats"].value == ["parquet", "csv", "votable", "fits"]
    assert form.check() == {}


@pytest.mark.parametrize("name", ["cone_search", "sky_counts", "cmd_diagram", "crossmatch",
                                  "cluster_finder"])
def test_every_bundled_form_agrees_with_pydantic_on_its_defaults(name: str) -> None:
    avi = get_avi(name)
    form = LaunchForm(PlatformSession(), avi=name, schema=avi.params_schema())
    values, parse_errors = form.values()
    assert parse_errors == {}
    pydantic_ok = True
    try:
        avi.parse_params(values)
    except ValueError:
        pydantic_ok = False
    assert (validate(avi.params_schema(), values) == {}) == pydantic_ok


def test_bad_value_shows_inline_error_and_submits_nothing(live_api) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(live_api)
    form = LaunchForm(session, avi="cone_search",
                      schema=get_avi("cone_search").params_schema())
    form.widgets["dec"].value = 100.0  # a param change, as the browser would make
    assert "dec" in form.errors and "90" in form.errors["dec"]
    assert form.error_panes["dec"].visible and "90" in form.error_panes["dec"].object
    form.widgets["filters"].value = "[{not json"
    assert form.submit() is None
    assert "not valid JSON" in form.errors["filters"]
    assert session.call(lambda c: c.jobs()).count == 0
    form.widgets["dec"].value = 24.0
    form.widgets["filters"].value = "[]"
    assert not form.error_panes["dec"].visible
    job_id = form.submit()
    assert job_id is not None and form.submitted_job == job_id
    job = session.call(lambda c: c.job(job_id))
    assert job.params["dec"] == 24.0 and job.state == "queued"


def test_server_side_rule_comes_back_inline(live_api) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(live_api)
    form = LaunchForm(session, avi="cone_search", schema=get_avi("cone_search").params_schema())
    form.widgets["shape"].value = "box"  # valid per field, but the box corners are missing
    assert form.submit() is None
    shown = form.form_error.object + " ".join(p.object for p in form.error_panes.values())
    assert "ra_min" in shown
    assert session.call(lambda c: c.jobs()).count == 0


def test_outreach_gets_the_simplified_form(live_api) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(live_api, "olga", ["outreach"])
    assert session.simplified
    form = LaunchForm(session, avi="cone_search", schema=get_avi("cone_search").params_schema(),
                      simplified=True)
    assert "filters" not in form.widgets and "columns" not in form.widgets
    assert "ra" in form.widgets and "dec" in form.widgets
