"""The result page's "Send to TOPCAT / Aladin" in real headless Chromium: the page speaks
the SAMP Web Profile to astropy's hub (web profile on, its consent dialog answering yes)
on 127.0.0.1:21012 — a cross-origin call from the dashboards' origin, so CORS is checked
for real — and a receiving application gets ``table.load.votable`` with a link of the
API serving the rows of a real cone search job, fetched with no token. With no receiver
or no hub, the page says what to start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from browser_support import NO_CHROMIUM, chromium_page, have_chromium, sign_in
from samp_support import Receiver, isolated_hub, load_votable

from api.client import AvipClient
from panel_apps.samp import NO_HUB, NO_RECEIVER

CONE = {"ra": 56.75, "dec": 24.12, "radius_deg": 10.0}

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_chromium(), reason=NO_CHROMIUM)]


def finished_cone_search(platform: Any, tmp_path: Path) -> tuple[int, set[int]]:
    """A cone search run by the platform's scheduler; its id and source ids."""
    with AvipClient(platform.url, platform.alice_token) as alice:
        job = alice.submit("cone_search", CONE)
        deadline = time.monotonic() + 600
        while (job := alice.job(job.id)).state not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, "the cone search did not finish in 10 min"
            time.sleep(0.5)
        assert job.state == "succeeded", alice.logs(job.id)[-3000:]
        table = alice.download_result(job.id, "sources.parquet", tmp_path / "sources.parquet")
    return job.id, set(pd.read_parquet(table)["source_id"].astype(np.int64))


def test_send_to_topcat_from_the_result_page(platform: Any, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect

    job_id, rows = finished_cone_search(platform, tmp_path)
    assert rows
    status = ".avip-samp-status"
    with chromium_page() as page:
        sign_in(page, platform.panel_url, platform.alice_token)
        page.locator(".bk-tab").filter(has_text="Jobs").first.click()
        page.get_by_role("button", name=f"Open result {job_id}").click()
        expect(page.get_by_text(f"Result of job {job_id}")).to_be_visible(timeout=120_000)
        send = page.locator(".avip-samp-sources-parquet button")

        with isolated_hub(tmp_path, monkeypatch, web_profile=True) as consent:
            with Receiver("TOPCAT") as topcat:
                send.click()
                expect(page.locator(status)).to_contain_text("Sent job", timeout=30_000)
                params = topcat.next()
                assert params["name"] == f"job{job_id}-sources"
                assert params["url"].startswith(f"{platform.url}/links/")
                table = load_votable(params["url"])  # no token: as TOPCAT fetches it
                assert set(np.asarray(table["source_id"], dtype=np.int64)) == rows
                time.sleep(1)
                assert topcat.messages.empty()  # one click, one message
            assert consent is not None
            assert consent.asked == [("avip", platform.panel_url.rstrip("/"))]

            send.click()  # the hub, but nothing that loads tables
            expect(page.locator(status)).to_contain_text(NO_RECEIVER[:40], timeout=30_000)

        send.click()  # no hub at all
        expect(page.locator(status)).to_contain_text(NO_HUB[:40], timeout=30_000)
        expect(page.locator(status)).to_contain_text("Web Profile")
