"""``space://`` job inputs with the user spaces on S3 (devstack MinIO).

A file another user shared, stored on S3, is a crossmatch input: the API stages
it (a local copy the job reads) and the crossmatch on that copy gives the same
pairs as astropy on the uploaded table. The sharing and confinement rules are
the local backend's (tests/api/test_user_space.py): without a share, or with a
path or URL outside what was shared, the request is refused and nothing of the
owner's is copied.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from fastapi.testclient import TestClient
from pyarrow import fs as pafs
from testing_utils import launched_params, load_module, new_user, submit_crossmatch

from api.bootstrap import ensure_operator
from api.main import create_app
from config.settings import Settings

ENV = ("AVIP_TEST_S3_ENDPOINT", "AVIP_TEST_S3_ACCESS_KEY", "AVIP_TEST_S3_SECRET_KEY",
       "AVIP_TEST_S3_BUCKET")
CENTRE = (150.0, 20.0)  # the patch of sky of the test's Gaia table


@dataclass
class S3Api:
    client: TestClient
    settings: Settings
    outside: pafs.S3FileSystem  # the bucket seen without the code under test
    operator: dict[str, str]

    def user(self, name: str) -> dict[str, str]:
        """A scientist and their auth headers."""
        return new_user(self.client, self.operator, name)

    def crossmatch(self, headers: dict[str, str], table_path: str):  # type: ignore[no-untyped-def]
        return submit_crossmatch(self.client, headers, table_path,
                                 gaia_columns=("source_id", "ra", "dec"))


@pytest.fixture
def s3_api(tmp_path: Path) -> Iterator[S3Api]:
    missing = [name for name in ENV if not os.environ.get(name)]
    if missing:
        pytest.skip(f"no devstack S3 ({', '.join(missing)} unset): run through `make test`")
    s3 = {name.removeprefix("AVIP_TEST_").lower(): os.environ[name] for name in ENV}
    prefix = f"test-inputs-{uuid.uuid4().hex[:12]}"
    settings = Settings(data_dir=tmp_path / "data", user_space_backend="s3",  # type: ignore[arg-type]
                        s3_space_prefix=prefix, cluster_cores=8, cluster_memory_mb=16384, **s3)
    scheme, host = s3["s3_endpoint"].split("://", 1)
    outside = pafs.S3FileSystem(access_key=s3["s3_access_key"], secret_key=s3["s3_secret_key"],
                                endpoint_override=host, scheme=scheme)
    with TestClient(create_app(settings)) as client:  # the real AVI registry: crossmatch
        token = ensure_operator(client.app.state.sessions, settings.data_dir, 1)  # type: ignore[attr-defined]
        assert token is not None
        operator = {"Authorization": f"Bearer {token.read_text().strip()}"}
        yield S3Api(client, settings, outside, operator)
    outside.delete_dir(f"{s3['s3_bucket']}/{prefix}")


@pytest.fixture(scope="module")
def gaia_patch(spark, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A small local Gaia table within 0.5° of CENTRE: (lakehouse root, rows as pandas)."""
    from lakehouse.layout import write_catalog
    from lakehouse.schema import spark_schema

    lakehouse_tests = Path(__file__).resolve().parents[1] / "lakehouse"
    sky = load_module("lakehouse_edge_sky", lakehouse_tests / "conftest.py")
    rng = np.random.default_rng(3)
    ra = CENTRE[0] + rng.uniform(-0.5, 0.5, 3000)
    dec = CENTRE[1] + rng.uniform(-0.5, 0.5, 3000)
    rows = sky.rows_for(ra, dec)
    root = tmp_path_factory.mktemp("gaia-patch")
    write_catalog(spark.createDataFrame(rows, schema=spark_schema()), f"{root}/gaia_source",
                  partition_order=sky.EDGE_ORDER, n_rows=len(rows))
    return str(root), rows


def user_table(gaia, n: int, seed: int) -> Table:  # type: ignore[no-untyped-def]
    """``n`` Gaia stars moved by ~0.4″, plus a name: a user's catalogue as a CSV."""
    rng = np.random.default_rng(seed)
    picks = gaia.sample(n, random_state=seed)
    return Table({"RAJ2000": picks.ra.to_numpy() + rng.normal(0, 1e-4, n),
                  "DEJ2000": picks.dec.to_numpy() + rng.normal(0, 1e-4, n),
                  "name": [f"obj{i}" for i in range(n)]})


def csv_bytes(table: Table) -> bytes:
    out = io.StringIO()
    table.write(out, format="ascii.csv")
    return out.getvalue().encode()


def expected_pairs(gaia, table: Table) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    mine = SkyCoord(table["RAJ2000"] * u.deg, table["DEJ2000"] * u.deg)
    stars = SkyCoord(gaia.ra.to_numpy() * u.deg, gaia.dec.to_numpy() * u.deg)
    i_user, i_gaia, _, _ = stars.search_around_sky(mine, 2 * u.arcsec)
    return sorted(zip(i_user.tolist(), gaia.source_id.to_numpy()[i_gaia].tolist(), strict=True))


def run_crossmatch(spark, lakehouse: str, params: dict) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """The crossmatch AVI's match task on the job's resolved params: (user row, source_id)."""
    from avi_plugins.bundled.crossmatch import match
    from avi_plugins.registry import get_avi
    from avi_plugins.sdk import TaskContext
    from lakehouse.catalog import open_catalog

    parsed = get_avi("crossmatch").parse_params(params)
    ctx = TaskContext(spark=spark, params=parsed, output_dir=Path(params["table_path"]).parent,
                      inputs={}, tables={"gaia_source": open_catalog(lakehouse, spark=spark)})
    pairs = match(ctx)
    return sorted(zip(pairs.right_row.tolist(), pairs.source_id.tolist(), strict=True))


def launched(s3_api: S3Api, response) -> dict:  # type: ignore[no-untyped-def]
    """The params the job of ``response`` (a submission) runs with: inputs resolved."""
    return launched_params(s3_api.client, response.json()["id"])


def test_shared_s3_file_is_a_crossmatch_input(spark, s3_api: S3Api, gaia_patch) -> None:  # type: ignore[no-untyped-def]
    lakehouse, gaia = gaia_patch
    alice, bob = s3_api.user("alice"), s3_api.user("bob")
    client, space_root = s3_api.client, s3_api.settings.space_root
    table = user_table(gaia, 200, seed=1)
    assert client.put("/space/files/cat/mine.csv", headers=alice,
                      content=csv_bytes(table)).status_code == 201
    local = [p for p in (space_root / "alice").rglob("*") if p.is_file()]
    assert local == []  # the upload went to S3 only (its claim folder stays empty)
    share = client.post("/shares", headers=alice, json={"path": "cat", "user": "bob"}).json()["id"]

    r = s3_api.crossmatch(bob, f"space://shared/{share}/mine.csv")
    assert r.status_code == 201, r.text
    staged = Path(launched(s3_api, r)["table_path"])
    assert staged.is_relative_to(space_root / "bob" / "jobs") and staged.name == "mine.csv"
    assert staged.read_bytes() == csv_bytes(table)
    got = run_crossmatch(spark, lakehouse, launched(s3_api, r))
    assert len(got) >= 200 and got == expected_pairs(gaia, table)

    # a changed upload is a new input (its own copy), the earlier job's copy is left alone
    changed = user_table(gaia, 150, seed=2)
    client.put("/space/files/cat/mine.csv", headers=alice, content=csv_bytes(changed))
    r2 = s3_api.crossmatch(bob, f"space://shared/{share}/mine.csv")
    assert r2.status_code == 201, r2.text
    restaged = Path(launched(s3_api, r2)["table_path"])
    assert restaged != staged and restaged.read_bytes() == csv_bytes(changed)
    assert staged.read_bytes() == csv_bytes(table)
    assert run_crossmatch(spark, lakehouse, launched(s3_api, r2)) == expected_pairs(gaia, changed)

    # the owner's own file through space://me/, and a re-run of resolved params
    r3 = s3_api.crossmatch(alice, "space://me/cat/mine.csv")
    assert r3.status_code == 201 and Path(launched(s3_api, r3)["table_path"]).is_relative_to(
        space_root / "alice" / "jobs")
    assert client.post(f"/jobs/{r2.json()['id']}/rerun", headers=bob).status_code == 201


def test_unshared_s3_file_is_refused_and_nothing_is_copied(s3_api: S3Api) -> None:
    alice, bob, carol = s3_api.user("alice"), s3_api.user("bob"), s3_api.user("carol")
    client, settings = s3_api.client, s3_api.settings
    client.put("/space/files/cat/mine.csv", headers=alice, content=b"RAJ2000,DEJ2000\n1,2\n")
    client.put("/space/files/secret.csv", headers=alice, content=b"RAJ2000,DEJ2000\n3,4\n")
    share = client.post("/shares", headers=alice, json={"path": "cat", "user": "bob"}).json()["id"]
    # carol was not given the share: the files are not hers to read, as file or as input
    assert client.get(f"/shares/received/{share}/files/mine.csv", headers=carol).status_code == 404
    bucket_key = f"{settings.s3_bucket}/{settings.s3_space_prefix}/alice"
    refused = [
        (carol, [f"space://shared/{share}/mine.csv", f"s3a://{bucket_key}/cat/mine.csv",
                f"s3://{bucket_key}/secret.csv",
                f"s3a://{settings.s3_bucket}/{settings.s3_space_prefix}/carol/../alice/secret.csv"]),
        (bob, [f"space://shared/{share}/../secret.csv", f"space://shared/{share}/%2E%2E/secret.csv",
              "space://me/../alice/secret.csv", "space://me/nothing.csv",
              f"space://shared/{share}/nothing.csv", f"s3a://{bucket_key}/secret.csv"]),
    ]
    for headers, inputs in refused:
        for value in inputs:
            r = s3_api.crossmatch(headers, value)
            assert r.status_code == 422, (value, r.status_code, r.text)
            assert "params.table_path" in r.text or "table_path" in str(r.json()), value
    assert "is not a file of your space" in s3_api.crossmatch(
        carol, f"s3a://{bucket_key}/cat/mine.csv").text
    # nothing of alice's was copied for carol or bob
    copies = [p for p in settings.space_root.rglob("*") if p.is_file()]
    assert copies == [], copies
    # once shared, carol's same request goes through
    client.post("/shares", headers=alice, json={"path": "cat/mine.csv", "user": "carol"})
    received = client.get("/shares/received", headers=carol).json()["data"]
    r = s3_api.crossmatch(carol, f"space://shared/{received[0]['id']}/")
    assert r.status_code == 201, r.text
