"""The runner end to end on a real Delta lakehouse: results, provenance, skipping,
reproducibility, pinning, and failure handling."""

from __future__ import annotations

import json

import pytest
from conftest import write_gaia
from pydantic import BaseModel
from skygen import make_sky

from avi_plugins.registry import get_avi
from avi_plugins.sdk import AVI, Manifest, Task
from spark_jobs.progress import FileProgressSink, read_progress
from spark_jobs.runner import run_job


def _run(spark, root, avi, raw, job_dir, cache, pins=None):
    from lakehouse.catalog import open_catalog

    params = avi.parse_params(raw)
    return run_job(avi, params, job_dir, spark=spark,
                   open_table=lambda name: open_catalog(root, table=name, spark=spark),
                   cache_root=cache, reporter=FileProgressSink(job_dir / "progress.json"),
                   pins=pins)


CONE = {"ra": 50.0, "dec": 0.0, "radius_deg": 3.0,
        "filters": [{"column": "phot_g_mean_mag", "op": "<", "value": 18}]}


def test_cone_search_result_is_reproducible_byte_for_byte(spark, lakehouse_root, tmp_path):
    avi = get_avi("cone_search")
    first = _run(spark, lakehouse_root, avi, CONE, tmp_path / "a", tmp_path / "cache1")
    second = _run(spark, lakehouse_root, avi, CONE, tmp_path / "b", tmp_path / "cache2")
    names = sorted(p.name for p in first.result_dir.iterdir())
    assert names == ["sources.csv", "sources.fits", "sources.parquet", "sources.vot"]
    for name in names:
        assert (first.result_dir / name).read_bytes() == (second.result_dir / name).read_bytes()
    progress = read_progress(tmp_path / "a" / "progress.json")
    assert progress.tasks_done == progress.tasks_total == 2 and progress.message == "done"


def test_existing_task_outputs_are_skipped(spark, lakehouse_root, tmp_path):
    avi = get_avi("cone_search")
    cache = tmp_path / "cache"
    _run(spark, lakehouse_root, avi, CONE, tmp_path / "a", cache)
    again = _run(spark, lakehouse_root, avi, {**CONE, "formats": ["csv"]}, tmp_path / "b", cache)
    skipped = {t["name"]: t["skipped"] for t in again.tasks}
    assert skipped == {"select": True, "export": False}  # only the formats changed
    assert sorted(p.name for p in again.result_dir.iterdir()) == ["sources.csv", "sources.parquet"]


def test_pinned_rerun_after_append_gives_the_old_answer(spark, tmp_path):
    root = str(tmp_path / "lake")
    stars, _ = make_sky(n_field=3000, n_clusters=0, seed=3)
    v0 = write_gaia(spark, root, stars)
    more, _ = make_sky(n_field=2000, n_clusters=0, seed=4)
    more["source_id"] += 1 << 30  # distinct ids, same pixels
    avi = get_avi("sky_counts")
    raw = {"order": 3}
    before = _run(spark, root, avi, raw, tmp_path / "j0", tmp_path / "c")
    write_gaia(spark, root, more)
    pinned = _run(spark, root, avi, raw, tmp_path / "j1", tmp_path / "c", pins={"gaia_source": v0})
    latest = _run(spark, root, avi, raw, tmp_path / "j2", tmp_path / "c")
    old = (before.result_dir / "counts.parquet").read_bytes()
    assert (pinned.result_dir / "counts.parquet").read_bytes() == old
    assert (latest.result_dir / "counts.parquet").read_bytes() != old
    assert pinned.table_versions["gaia_source"]["version"] == v0
    assert latest.table_versions["gaia_source"]["version"] > v0


class NoParams(BaseModel):
    pass


class Exploding(AVI):
    manifest = Manifest(name="exploding", version="0.1", title="t", summary="s", author="a")
    Params = NoParams

    def tasks(self):
        def first(ctx):
            (ctx.output_dir / "partial.txt").write_text("half")

        def second(ctx):
            (ctx.output_dir / "also.txt").write_text("half")
            raise RuntimeError("the AVI broke")

        return [Task("first", first, result=True), Task("second", second, result=True)]


def test_failing_avi_leaves_no_result(spark, tmp_path):
    job = tmp_path / "job"
    with pytest.raises(RuntimeError, match="the AVI broke"):
        run_job(Exploding(), Exploding.Params(), job, spark=spark, open_table=None,
                cache_root=tmp_path / "cache", reporter=FileProgressSink(job / "progress.json"))
    assert not (job / "result").exists()
    assert [p.name for p in job.iterdir()] == ["progress.json"]
    second_dirs = list((tmp_path / "cache" / "exploding" / "0.1" / "second").iterdir())
    assert second_dirs == []  # the scratch folder of the failed task is gone


def test_runner_main_writes_provenance_and_error(spark, lakehouse_root, tmp_path):
    from spark_jobs.runner import main

    params = tmp_path / "params.json"
    params.write_text(json.dumps({"order": 2}))
    job = tmp_path / "ok"
    code = main(["--avi", "sky_counts", "--params", str(params), "--output", str(job),
                 "--catalogue-root", lakehouse_root, "--cache", str(tmp_path / "cache"),
                 "--job-id", "j-1"])
    assert code == 0
    prov = json.loads((job / "provenance.json").read_text())
    assert prov["status"] == "succeeded" and prov["job_id"] == "j-1"
    assert prov["avi"]["name"] == "sky_counts" and prov["avi"]["version"] == "1.0.0"
    assert prov["params"] == {"order": 2, "g_max": None, "map_quantity": "count"}
    assert prov["tables"]["gaia_source"]["version"] >= 0
    assert prov["software"]["pyspark"] == "4.0.1" and "spark.master" in prov["spark_conf"]
    assert [t["name"] for t in prov["tasks"]] == ["counts", "map"]
    assert (job / "result" / "sky_map.png").stat().st_size > 1000

    params.write_text(json.dumps({"order": 99}))
    bad = tmp_path / "bad"
    assert main(["--avi", "sky_counts", "--params", str(params), "--output", str(bad)]) == 2
    assert "order" in (bad / "error.txt").read_text()

    params.write_text(json.dumps({}))
    failed = tmp_path / "failed"
    code = main(["--avi", "sky_counts", "--params", str(params), "--output", str(failed),
                 "--catalogue-root", str(tmp_path / "no-lakehouse"),
                 "--cache", str(tmp_path / "cache")])
    assert code == 1
    assert "Traceback" in (failed / "error.txt").read_text()
    assert not (failed / "result").exists()
    assert json.loads((failed / "provenance.json").read_text())["status"] == "failed"
