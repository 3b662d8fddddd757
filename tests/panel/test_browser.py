"""The dashboards in real headless Chromium (Debian's, driven by Playwright), against a real
API + scheduler running a real cone search on a small synthetic lakehouse.

Walks what a scientist does: sign in, open the gallery, see an inline validation error
for a bad value (nothing submitted), launch a cone search from its form, watch it
finish, open the result, download the CSV (checked against astropy on the lakehouse),
save a dashboard preset and load it again after a page reload, browse the user space;
and a revoked token sends the page back to sign-in with a message. Screenshots of each
main page go to $AVIP_TEST_SCREENSHOTS_DIR (docs/screenshots/ when refreshing the docs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from api.client import AvipClient

CHROMIUM = os.environ.get("AVIP_TEST_CHROMIUM", "/usr/bin/chromium")
# Screenshots refresh docs/screenshots/ only when asked (AVIP_TEST_SCREENSHOTS_DIR), so a
# test run never modifies tracked files; otherwise they go to a scratch folder.
SHOTS = Path(os.environ.get("AVIP_TEST_SCREENSHOTS_DIR", "/tmp/avip-test-screenshots"))
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CONE = {"ra": 56.75, "dec": 24.12, "radius_deg": 10.0}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                       reason=f"no Chromium at {CHROMIUM}: `devstack/devstack.sh up chromium`"),
]


@pytest.fixture(scope="module")
def page(platform: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        context.close()
        browser.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_tab(page: Any, name: str) -> None:
    page.locator(".bk-tab").filter(has_text=name).first.click()


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.locator(".avip-token input").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("signed in as").wait_for()


def expected_cone(root: str) -> set[int]:
    """Independent answer: every star of the lakehouse within the cone (astropy)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from deltalake import DeltaTable

    stars = DeltaTable(f"{root}/gaia_source").to_pandas(columns=["source_id", "ra", "dec"])
    centre = SkyCoord(CONE["ra"] * u.deg, CONE["dec"] * u.deg)
    sep = centre.separation(SkyCoord(stars["ra"].to_numpy() * u.deg,
                                     stars["dec"].to_numpy() * u.deg)).deg
    return set(stars.loc[sep <= CONE["radius_deg"], "source_id"].astype(np.int64))


def test_scientist_walkthrough_in_chromium(platform: Any, page: Any, lakehouse: str,
                                           tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.goto(platform.panel_url)
    page.get_by_text("Sign in with your API token").wait_for()
    page.locator(".avip-token input").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".avip-signin-message")).to_contain_text("refused")
    shot(page, "01-sign-in")

    sign_in(page, platform.panel_url, platform.alice_token)
    with AvipClient(platform.url, platform.alice_token) as alice:  # one card per AVI served
        expect(page.locator(".avip-avi-card")).to_have_count(len(alice.avis().data))
    expect(page.get_by_text("Sources in a cone or box")).to_be_visible()
    shot(page, "02-gallery")

    # a bad value: inline error, nothing submitted
    page.get_by_role("button", name="Open Cone search").click()
    dec = page.locator(".avip-field-dec input")
    dec.fill("100")
    dec.press("Tab")
    expect(page.locator(".avip-error-dec")).to_contain_text("90")
    page.get_by_role("button", name="Launch").click()
    expect(page.locator(".avip-form-status")).to_contain_text("nothing was submitted")
    shot(page, "03-launch-form-validation")
    with AvipClient(platform.url, platform.alice_token) as alice:
        assert alice.jobs().count == 0

    # launch a real cone search from the form and watch it finish
    dec.fill(str(CONE["dec"]))
    dec.press("Tab")
    radius = page.locator(".avip-field-radius_deg input")
    radius.fill(str(CONE["radius_deg"]))
    radius.press("Tab")
    expect(page.locator(".avip-error-dec")).to_be_hidden()
    page.get_by_role("button", name="Launch").click()
    with AvipClient(platform.url, platform.alice_token) as alice:
        job_id = alice.jobs().data[0].id
    page.locator(f".avip-job-{job_id}").wait_for()
    shot(page, "04-job-monitor")
    page.locator(f".avip-job-{job_id}.avip-state-succeeded, .avip-state-failed").first.wait_for(
        timeout=600_000)
    with AvipClient(platform.url, platform.alice_token) as alice:
        job = alice.job(job_id)
        assert job.state == "succeeded", alice.logs(job_id)[-3000:]
    expect(page.get_by_text("100 %").first).to_be_visible()
    shot(page, "04-job-monitor")

    # open the result: the AVI's view, the rasterized density, downloads
    page.get_by_role("button", name=f"Open result {job_id}").click()
    expect(page.get_by_text(f"Result of job {job_id}")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Cone search:").first).to_be_visible()
    expect(page.get_by_text("rasterized on the server")).to_be_visible()
    shot(page, "05-result")
    with page.expect_download(timeout=120_000) as info:
        page.locator(".avip-dl-sources-csv").first.locator("button, a").first.click()
    csv_file = tmp_path / "sources.csv"
    info.value.save_as(csv_file)
    rows = pd.read_csv(csv_file)
    assert set(rows["source_id"].astype(np.int64)) == expected_cone(lakehouse)

    # dashboard preset: save, reload the page, sign in again, load it
    open_tab(page, "Dashboard")
    page.get_by_role("button", name="Add view").click()
    expect(page.locator(".avip-grid-item")).to_have_count(1)
    page.locator(".avip-dashboard-name input").fill("my-board")
    page.get_by_role("button", name="Save preset").click()
    expect(page.locator(".avip-dashboard-status")).to_contain_text("Saved preset")
    shot(page, "06-dashboard")
    page.reload()
    sign_in(page, platform.panel_url, platform.alice_token)
    open_tab(page, "Dashboard")
    expect(page.locator(".avip-grid-item")).to_have_count(0)
    page.locator(".avip-preset-choice select").select_option(label="my-board — alice")
    page.get_by_role("button", name="Load preset").click()
    expect(page.locator(".avip-dashboard-status")).to_contain_text("Loaded preset")
    expect(page.locator(".avip-grid-item")).to_have_count(1)
    expect(page.get_by_text(f"cone_search #{job_id}")).to_be_visible()

    # user space: upload a file and see it listed
    open_tab(page, "My space")
    page.locator(".avip-upload input[type=file]").set_input_files(
        files=[{"name": "targets.csv", "mimeType": "text/csv", "buffer": b"ra,dec\n56.7,24.1\n"}])
    page.get_by_role("button", name="Upload into this folder").click()
    expect(page.locator(".avip-space-status")).to_contain_text("Uploaded targets.csv")
    shot(page, "07-user-space")

    # the token is revoked: the next call returns to sign-in with a message
    with platform.operator() as op:
        for token in op.tokens("alice").data:
            op.revoke_token("alice", token.id)
    open_tab(page, "Jobs")
    page.get_by_role("button", name="Refresh jobs").click()
    expect(page.locator(".avip-signin-message")).to_contain_text("expired or was revoked")
    shot(page, "08-token-expired")
