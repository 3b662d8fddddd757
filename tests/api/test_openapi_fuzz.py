# ruff: noqa: E501
"""schemathesis against the live OpenAPI document: no operation answers 5xx.

Every operation gets a bounded number of generated requests (valid and invalid
by the schema), sent with an operator's token so the authorised code paths run,
against a store seeded with a job, a result, a file and a share so that ids and
paths sometimes exist. Kept small so the whole run stays well under two minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testing_utils import fuzz_operations

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_no_operation_returns_5xx(client: TestClient, operator, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice", groups=["g"])
    job = client.post("/jobs", headers=operator, json={"avi": "cone_count", "params": {"ra_deg": 1, "dec_deg": 2}}).json()
    result = Path(client.app.state.settings.space_root) / "operator" / "jobs" / str(job["id"]) / "result"  # type: ignore[attr-defined]
    result.mkdir(parents=True)
    (result / "t.csv").write_text("a,b\n1,2\n")
    client.put("/space/files/f.txt", headers=operator, content=b"hello")
    client.post("/shares", headers=operator, json={"path": "f.txt", "user": "alice"})
    assert alice

    failures: list[str] = []

    def check(case, response) -> None:  # type: ignore[no-untyped-def]
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:300]} (query={case.query}, body={case.body!r:.200})")

    operations, _ = fuzz_operations(client.app, {"Authorization": operator["Authorization"]},
                                    EXAMPLES_PER_OPERATION, check)
    assert len(operations) >= 20
    assert failures == []
