"""Result links (SAMP): ``POST /jobs/{id}/results/{path}/link`` and the token-free
``GET /links/{signed}``, each user hostile to the others — a link opens one file of a job
its maker may read, to anyone holding it, until it expires or its maker loses the right."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pandas as pd
from astropy.io.votable import parse_single_table
from fastapi.testclient import TestClient
from samp_support import finished_job

from api.links import Link, link_key, sign, verify
from config.settings import Settings

SOURCES = pd.DataFrame({"source_id": [11, 12, 13], "ra": [56.7, 56.8, 56.9],
                        "dec": [24.1, 24.2, 24.0]})


def alice_job(client: TestClient) -> int:
    return finished_job(client.app, "alice", {"sources.parquet": SOURCES,
                                              "notes.txt": b"not a table"})


def link(client: TestClient, headers: dict[str, str], job_id: int,
         path: str = "sources.parquet", **params: str) -> str:
    r = client.post(f"/jobs/{job_id}/results/{path}/link", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return str(r.json()["url"])


def fetch(client: TestClient, url: str) -> tuple[int, str | bytes]:
    """GET ``url`` with no Authorization header at all (as TOPCAT fetches it)."""
    r = client.get(url.removeprefix("http://testserver"), headers={})
    return r.status_code, (r.content if r.status_code == 200 else r.json()["detail"])


def rows(votable: bytes) -> list[int]:
    return [int(v) for v in parse_single_table(io.BytesIO(votable)).to_table()["source_id"]]


def test_a_link_serves_the_votable_without_a_token(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    job_id = alice_job(client)
    r = client.post(f"/jobs/{job_id}/results/sources.parquet/link", headers=alice)
    assert r.status_code == 200, r.text
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    expires = pd.Timestamp(r.json()["expires_at"]).timestamp()
    assert abs(expires - time.time() - settings.link_ttl_s) < 30
    code, body = fetch(client, r.json()["url"])
    assert code == 200 and rows(body) == [11, 12, 13]  # type: ignore[arg-type]
    code, body = fetch(client, link(client, alice, job_id, format="csv"))
    assert code == 200 and body.splitlines()[0] == b'"source_id","ra","dec"'  # type: ignore[union-attr]
    secret = settings.data_dir / "link.secret"
    assert oct(secret.stat().st_mode)[-3:] == "600"


def test_no_one_else_makes_or_bends_a_link_to_a_job(client: TestClient, make_user,  # type: ignore[no-untyped-def]
                                                    operator) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice"), make_user("bob", groups=["lab"])
    job_id = alice_job(client)
    bobs_job = finished_job(client.app, "bob", {"mine.parquet": SOURCES})
    for path in ("sources.parquet", "nope.parquet"):
        r = client.post(f"/jobs/{job_id}/results/{path}/link", headers=bob)
        assert r.status_code == 404 and "no job" in r.json()["detail"]
    r = client.post(f"/jobs/{job_id}/results/sources.parquet/link", headers=operator)
    assert r.status_code == 404  # an operator reads no one's results either
    # bob's own link, its job id swapped for alice's: the signature no longer matches
    mac = link(client, bob, bobs_job, "mine.parquet").rsplit(".", 1)[1]
    forged = sign(b"x" * 32, Link(2, 2, job_id, "sources.parquet", "votable", 2**40))
    for signed in (f"{forged.split('.')[0]}.{mac}", forged):
        code, detail = fetch(client, f"/links/{signed}")
        assert code == 403 and "not valid" in detail  # type: ignore[operator]

    # shared with bob's group: bob may link and read it — until the share is withdrawn
    r = client.post("/shares", headers=alice, json={"job_id": job_id, "group": "lab"})
    assert r.status_code == 201, r.text
    url = link(client, bob, job_id)
    assert rows(fetch(client, url)[1]) == [11, 12, 13]  # type: ignore[arg-type]
    assert client.delete(f"/shares/{r.json()['id']}", headers=alice).status_code == 204
    code, detail = fetch(client, url)
    assert code == 404 and "no job" in detail  # type: ignore[operator]


def test_revoked_tokens_and_disabled_users_end_their_links(client: TestClient, make_user,  # type: ignore[no-untyped-def]
                                                           operator) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    job_id = alice_job(client)
    url = link(client, alice, job_id)
    token_id = client.get("/users/alice/tokens", headers=operator).json()["data"][0]["id"]
    assert client.delete(f"/users/alice/tokens/{token_id}", headers=operator).status_code == 200
    code, detail = fetch(client, url)
    assert code == 403 and "revoked" in detail  # type: ignore[operator]

    fresh = {"Authorization": "Bearer " + client.post(
        "/users/alice/tokens", headers=operator, json={"label": "again"}).json()["token"]}
    url = link(client, fresh, job_id)
    assert fetch(client, url)[0] == 200
    assert client.patch("/users/alice", headers=operator,
                        json={"disabled": True}).status_code == 200
    code, detail = fetch(client, url)
    assert code == 403 and "disabled" in detail  # type: ignore[operator]


def test_bad_links_and_requests_are_4xx_saying_what_to_do(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    job_id = alice_job(client)
    cases = {
        "nope.parquet": (404, "list them"),
        "%2E%2E/%2E%2E/bob/jobs/1/result/x.parquet": (404, "list them"),  # ../.. unnormalized
        "notes.txt": (422, "not a table"),
    }
    for path, (status, words) in cases.items():
        r = client.post(f"/jobs/{job_id}/results/{path}/link", headers=alice)
        assert r.status_code == status and words in str(r.json()["detail"]), (path, r.text)
    r = client.post(f"/jobs/{job_id}/results/sources.parquet/link", headers=alice,
                    params={"format": "xml"})
    assert r.status_code == 422 and "votable" in r.text
    assert client.post(f"/jobs/{job_id}/results/sources.parquet/link").status_code == 401
    assert client.post("/jobs/0/results/x/link", headers=alice).status_code == 422

    url = link(client, alice, job_id)
    signed = url.rsplit("/", 1)[1]
    flipped = signed[:-1] + ("A" if signed[-1] != "A" else "B")
    for bad in (flipped, signed[:20], "garbage", "a.b", "." * 10):
        code, detail = fetch(client, f"/links/{bad}")
        assert code == 403 and "ask for a new one" in detail, (bad, detail)  # type: ignore[operator]
    assert fetch(client, "/links/" + "x" * 5000)[0] == 422

    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    key = link_key(settings)
    made = verify(key, signed)
    stale = sign(key, Link(made.user_id, made.token_id, job_id, made.path, made.fmt,
                           int(time.time()) - 1))
    code, detail = fetch(client, f"/links/{stale}")
    assert code == 410 and "expired" in detail  # type: ignore[operator]


def test_the_key_is_kept_once_per_data_dir_or_taken_from_settings(tmp_path: Path) -> None:
    first = link_key(Settings(data_dir=tmp_path / "a"))
    assert first == link_key(Settings(data_dir=tmp_path / "a")) != link_key(
        Settings(data_dir=tmp_path / "b"))
    assert (tmp_path / "a" / "link.secret").stat().st_mode & 0o077 == 0
    assert link_key(Settings(data_dir=tmp_path / "a", link_secret="s" * 40)) == b"s" * 40


def test_fuzzed_link_requests_never_answer_5xx(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    """schemathesis over the two link operations alone (an app holding only their router,
    on the real app's store), with a real job and link for ids and paths to hit."""
    from fastapi import FastAPI
    from testing_utils import fuzz_operations

    from api.routes.links import router

    alice = make_user("alice")
    link(client, alice, alice_job(client))
    only_links = FastAPI()
    only_links.state = client.app.state  # type: ignore[attr-defined]
    only_links.include_router(router)
    failures: list[str] = []

    def check(case, response) -> None:  # type: ignore[no-untyped-def]
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

    operations, sent = fuzz_operations(only_links, alice, 40, check)
    assert len(operations) == 2 and sent >= 40 and failures == []
