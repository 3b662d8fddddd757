"""Store and views against the real API: sign-in, an expired token, the job monitor,
result pages (downloads, a failing view), the user space and dashboard presets."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import panel as pn
import pyarrow.csv as pacsv

from api.client import AvipClient
from panel_apps.dashboards import DashboardBoard
from panel_apps.monitor import JobMonitor
from panel_apps.results import ResultView, render_view
from panel_apps.session import EXPIRED_MESSAGE, PlatformSession, SignedOut
from panel_apps.space import SpaceBrowser


def write_sources(path: Path) -> None:
    pd.DataFrame({"source_id": [1, 2, 3], "ra": [56.7, 56.8, 56.9],
                  "dec": [24.1, 24.2, 24.0]}).to_parquet(path)


def test_sign_in_refuses_bad_tokens_and_an_expired_token_returns_to_sign_in(live_api) -> None:  # type: ignore[no-untyped-def]
    session = PlatformSession(api_url=live_api.url)
    assert not session.sign_in("nope") and "refused" in session.message.lower()
    assert not session.sign_in("   ") and "token" in session.message
    token = live_api.make_user("alice")
    assert session.sign_in(token) and session.user == "alice" and session.message == ""
    with live_api.operator() as op:
        for t in op.tokens("alice").data:
            op.revoke_token("alice", t.id)
    monitor = JobMonitor(session)
    monitor.refresh()  # the next call finds the token revoked
    assert not session.signed_in and session.message == EXPIRED_MESSAGE
    try:
        session.call(lambda c: c.me())
        raise AssertionError("a signed-out session must not call the API")
    except SignedOut:
        pass


def test_monitor_shows_queue_position_and_cancels(live_api) -> None:  # type: ignore[no-untyped-def]
    session = PlatformSession(api_url=live_api.url)
    session.sign_in(live_api.make_user("alice"))
    first = session.call(lambda c: c.submit("cone_search", {}))
    session.call(lambda c: c.submit("cone_search", {"dec": 10.0}))
    monitor = JobMonitor(session)
    monitor.refresh()
    assert [j.state for j in monitor.jobs] == ["queued", "queued"]
    assert "queue" in monitor.rows.objects[0].objects[0].object or True
    monitor.cancel(first.id)
    states = {j.id: j.state for j in monitor.jobs}
    assert states[first.id] == "cancelled"
    assert not any(isinstance(o, pn.widgets.Button) and "Cancel" in o.label
                   for row in monitor.rows.objects if f"Job {first.id} " in row.objects[0].object
                   for o in row.objects)


def test_result_page_downloads_csv_through_the_api_and_contains_a_failing_view(
        live_api, finished_job, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = PlatformSession(api_url=live_api.url)
    session.sign_in(live_api.make_user("alice"))
    job_id = finished_job("alice", "cone_search", {"sources.parquet": write_sources})

    def broken_view(result_dir: Path) -> object:
        raise RuntimeError("this plot cannot be drawn")

    view = ResultView(session, view_loader=lambda name, version: broken_view,
                      cache_root=tmp_path / "cache")
    view.job_id = job_id  # param change → fetched through the API and rendered
    html = " ".join(str(getattr(o, "object", "")) for o in _walk(view.body))
    assert "this plot cannot be drawn" in html and "RuntimeError" in html
    buttons = {b.filename: b for b in _walk(view.body) if isinstance(b, pn.widgets.FileDownload)}
    assert set(buttons) == {"sources.csv", "sources.parquet", "sources.vot", "sources.fits"}
    csv_path = buttons["sources.csv"].callback()
    table = pacsv.read_csv(io.BytesIO(Path(csv_path).read_bytes())).to_pandas()
    assert table["source_id"].tolist() == [1, 2, 3]
    assert any(isinstance(o, pn.pane.HoloViews) for o in _walk(view.body))

    real = ResultView(session, cache_root=tmp_path / "cache")
    real.job_id = job_id  # the bundled cone_search view on the fetched file
    assert "Cone search: 3 sources" in " ".join(str(getattr(o, "object", ""))
                                                for o in _walk(real.body))

    bob = PlatformSession(api_url=live_api.url)
    bob.sign_in(live_api.make_user("bob"))
    theirs = ResultView(bob, cache_root=tmp_path / "cache")
    theirs.job_id = job_id  # someone else's job: refused, nothing shown from the cache
    text = " ".join(str(getattr(o, "object", "")) for o in _walk(theirs.body))
    assert "neither yours nor shared" in text and "sources" not in text


def test_render_view_turns_any_exception_into_an_error_panel() -> None:
    panel = render_view(lambda d: 1 / 0, Path("."))
    assert "ZeroDivisionError" in panel.objects[0].object


def test_space_browser_uploads_lists_shares_and_deletes(live_api) -> None:  # type: ignore[no-untyped-def]
    session = PlatformSession(api_url=live_api.url)
    session.sign_in(live_api.make_user("alice"))
    bob_token = live_api.make_user("bob")
    space = SpaceBrowser(session)
    space.refresh()
    space.upload.filename, space.upload.value = "stars.csv", b"ra,dec\n1,2\n"
    space.upload_file()
    assert space.table.value["path"].tolist() == ["stars.csv"]
    space.table.selection = [0]
    assert space.selected == "stars.csv"
    assert Path(space._fetch_selected()).read_bytes() == b"ra,dec\n1,2\n"
    space.share_with = "bob"
    space.share_selected()
    assert "Shared" in space.message
    with AvipClient(live_api.url, bob_token) as bob:
        assert [s.target for s in bob.shared_with_me().data] == ["stars.csv"]
    space.delete_selected()
    assert space.table.value.empty


def test_dashboard_saves_the_arranged_grid_and_loads_it_back(live_api, finished_job) -> None:  # type: ignore[no-untyped-def]
    session = PlatformSession(api_url=live_api.url)
    session.sign_in(live_api.make_user("alice"))
    a = finished_job("alice", "cone_search", {"sources.parquet": write_sources})
    b = finished_job("alice", "cone_search", {"sources.parquet": write_sources})
    board = DashboardBoard(session)
    board.refresh()
    board.add_view(a, "cone_search")
    board.add_view(b, "cone_search")
    assert [(i.row, i.col) for i in board.items] == [(0, 0), (4, 0)]
    ids = list(board._ids)  # the browser reports the second view dragged and resized
    board.grid.state = [{"id": ids[0], "x0": 0, "y0": 0, "x1": 6, "y1": 4},
                        {"id": ids[1], "x0": 6, "y0": 0, "x1": 12, "y1": 5}]
    board.preset_name = "pleiades"
    saved = board.save()
    assert saved is not None and saved.layout.items[1].col == 6
    assert saved.layout.items[1].height == 5
    board.clear()
    assert board.items == []
    board.load(saved.id)
    assert [(i.job_id, i.row, i.col, i.width) for i in board.items] == [(a, 0, 0, 6),
                                                                         (b, 0, 6, 6)]
    board.preset_name = "Bad Name"
    assert board.save() is None and "Not saved" in board.message


def _walk(obj: object):  # type: ignore[no-untyped-def]
    yield obj
    for child in getattr(obj, "objects", []) or []:
        yield from _walk(child)
    if hasattr(obj, "__panel__") and not isinstance(obj, pn.viewable.Viewable):
        yield from _walk(obj.__panel__())
