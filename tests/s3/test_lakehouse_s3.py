"""The lakehouse on S3 (s3a://, devstack MinIO): same answers as brute force, both readers.

The edge sky of tests/lakehouse (poles, RA 0/360, HEALPix edges) is written
with Spark to ``s3a://<bucket>/<run>/gaia_source`` and queried through the
Spark Catalog and the in-process reader (delta-rs), both configured from the
one settings object. Bad S3 settings fail at start-up naming the setting.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest
from pydantic import SecretStr
from testing_utils import load_module

from config.s3 import S3ConfigError, arrow_filesystem, check_s3, hadoop_conf
from config.settings import Settings, get_settings
from lakehouse import open_catalog, open_interactive

TESTS = Path(__file__).resolve().parents[1]


sky = load_module("lakehouse_edge_sky", TESTS / "lakehouse" / "conftest.py")
cones = load_module("lakehouse_cone_cases", TESTS / "lakehouse" / "test_cone.py")


@pytest.fixture(scope="module")
def s3_sky(spark, s3_settings):
    """(root, rows) of the edge sky written to a fresh prefix of the test bucket."""
    from lakehouse.layout import write_catalog
    from lakehouse.schema import spark_schema

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in hadoop_conf(s3_settings).items():
        hadoop.set(key, value)
    root = f"s3a://{s3_settings.s3_bucket}/lakehouse-test-{uuid.uuid4().hex[:8]}"
    ra, dec = sky.edge_positions()
    pdf = sky.rows_for(ra, dec)
    df = spark.createDataFrame(pdf, schema=spark_schema())
    write_catalog(df, f"{root}/gaia_source", partition_order=sky.EDGE_ORDER, n_rows=len(pdf))
    yield root, pdf
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(
        access_key=s3_settings.s3_access_key,
        secret_key=s3_settings.s3_secret_key.get_secret_value(),
        endpoint_override=s3_settings.s3_endpoint,
        region=s3_settings.s3_region,
    )
    fs.delete_dir(root.removeprefix("s3a://"))


def test_spark_cone_on_s3_equals_astropy(spark, s3_sky):
    root, pdf = s3_sky
    cat = open_catalog(root, spark=spark)
    assert cat.path.startswith("s3a://")
    for ra, dec, radius in cones.ALL:
        ids = [r.source_id for r in cat.cone(ra, dec, radius).select("source_id").df.collect()]
        assert len(ids) == len(set(ids))
        assert set(ids) == cones.brute_force(pdf, ra, dec, radius), (ra, dec, radius)


def test_interactive_reader_reads_the_same_s3_table_with_the_same_settings(s3_sky):
    root, pdf = s3_sky
    reader = open_interactive(root)  # storage options come from the settings object
    for ra, dec, radius in cones.ALL:
        ids = reader.cone(ra, dec, radius, columns=["source_id"])["source_id"].to_pylist()
        assert len(ids) == len(set(ids))
        assert set(ids) == cones.brute_force(pdf, ra, dec, radius), (ra, dec, radius)


def test_both_readers_use_the_settings_they_are_given(spark, s3_sky, s3_settings):
    """Settings passed in are used, not the process's: with a wrong secret neither reader
    opens the table; with the right ones both read it, cones and time travel included,
    while the process's own settings carry a wrong secret."""
    root, pdf = s3_sky
    wrong = _bad(s3_settings, s3_secret_key=SecretStr("wrong-secret"))
    with pytest.raises(FileNotFoundError):
        open_catalog(root, spark=spark, settings=wrong)
    with pytest.raises(FileNotFoundError):
        open_interactive(root, settings=wrong).pinned_version  # noqa: B018
    ra, dec, radius = cones.ALL[0]
    expected = cones.brute_force(pdf, ra, dec, radius)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AVIP_S3_SECRET_KEY", "wrong-secret")
            get_settings.cache_clear()
            cat = open_catalog(root, spark=spark, settings=s3_settings)
            cat = cat.as_of(cat.version)
            ids = {r.source_id for r in cat.cone(ra, dec, radius).select("source_id").df.collect()}
            assert ids == expected
            reader = open_interactive(root, settings=s3_settings)
            found = reader.cone(ra, dec, radius, columns=["source_id"])["source_id"].to_pylist()
            assert set(found) == expected
    finally:
        get_settings.cache_clear()


def test_box_on_s3_matches_brute_force_in_both_readers(spark, s3_sky):
    root, pdf = s3_sky
    ra_min, ra_max, dec_min, dec_max = 358.0, 2.0, -5.0, 5.0  # wraps RA 0
    inside = ((pdf["ra"] >= ra_min) | (pdf["ra"] <= ra_max)) & pdf["dec"].between(dec_min, dec_max)
    expected = set(pdf["source_id"][inside])
    spark_ids = {
        r.source_id
        for r in open_catalog(root, spark=spark)
        .box(ra_min, ra_max, dec_min, dec_max)
        .select("source_id")
        .df.collect()
    }
    reader_ids = set(
        open_interactive(root)
        .box(ra_min, ra_max, dec_min, dec_max, columns=["source_id"])["source_id"]
        .to_pylist()
    )
    assert spark_ids == reader_ids == expected and expected


def test_versions_pin_on_s3(spark, s3_sky):
    from lakehouse.layout import write_catalog
    from lakehouse.schema import spark_schema

    root, pdf = s3_sky
    path = f"{root}/gaia_source"
    before = open_catalog(root, spark=spark)
    extra = sky.rows_for(*sky.edge_positions(seed=99)[:2], first_index=10**7)[:500]
    write_catalog(spark.createDataFrame(extra, schema=spark_schema()), path)
    after = open_catalog(root, spark=spark)
    assert after.version == before.version + 1
    assert after.as_of(before.version).count() == len(pdf)
    assert after.count() == len(pdf) + len(extra)
    assert open_interactive(root, version=before.version).pinned_version == before.version


def _bad(settings: Settings, **change) -> Settings:
    return settings.model_copy(update=change)


def test_good_settings_pass_the_start_up_check(s3_settings):
    check_s3(s3_settings)


def test_a_refused_check_leaves_the_good_settings_working(s3_settings):
    """The check builds its own filesystem: a refused one is neither reused for the good
    settings nor left in the process's cache in their place."""
    good = arrow_filesystem(s3_settings)
    bad = _bad(s3_settings, s3_secret_key=SecretStr("wrong-secret"))
    with pytest.raises(S3ConfigError, match="AVIP_S3_SECRET_KEY"):
        check_s3(bad, timeout_s=5)
    check_s3(s3_settings)
    assert arrow_filesystem(s3_settings) is good
    good.get_file_info(pafs.FileSelector(f"{s3_settings.s3_bucket}/", recursive=False))
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH"):
        arrow_filesystem(bad).get_file_info(
            pafs.FileSelector(f"{s3_settings.s3_bucket}/", recursive=False)
        )


@pytest.mark.parametrize(
    "change, setting",
    [
        ({"s3_access_key": "nobody"}, "AVIP_S3_ACCESS_KEY"),
        ({"s3_secret_key": "wrong-secret"}, "AVIP_S3_SECRET_KEY"),
        ({"s3_bucket": "no-such-bucket-avip"}, "AVIP_S3_BUCKET"),
        ({"s3_endpoint": "http://127.0.0.1:1"}, "AVIP_S3_ENDPOINT"),
        ({"s3_access_key": None}, "AVIP_S3_ACCESS_KEY"),
    ],
)
def test_bad_s3_settings_fail_at_start_up_naming_the_setting(s3_settings, change, setting):
    from pydantic import SecretStr
    from pyspark.sql import SparkSession

    from lakehouse.session import with_s3

    if isinstance(change.get("s3_secret_key"), str):
        change = {"s3_secret_key": SecretStr(change["s3_secret_key"])}
    bad = _bad(s3_settings, **change)
    with pytest.raises(S3ConfigError, match=setting):
        check_s3(bad, timeout_s=5)
    with pytest.raises(S3ConfigError, match=setting):
        with_s3(SparkSession.builder, bad)  # the session factory refuses before Spark starts


@pytest.mark.slow
def test_a_cone_while_minio_is_down_is_a_clear_error_and_writes_nothing(
    s3_sky, tmp_path, devstack, record_figures
):
    """Issue 14 fault campaign: MinIO stopped under a cone on the S3 lakehouse."""
    root, pdf = s3_sky
    out = tmp_path / "cone.csv"
    command = [str(Path(sys.executable).parent / "avip"), "cone", "--ra", "10", "--dec", "0",
               "--radius", "2", "--root", root, "-o", str(out)]
    devstack("minio", "down")
    try:
        refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        devstack("minio", "up")
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert "cannot read the catalogue" in refused.stderr and "Traceback" not in refused.stderr
    assert not out.exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = set(pd.read_csv(out)["source_id"])
    assert got == cones.brute_force(pdf, 10, 0, 2)  # and once it is back, the right answer
    record_figures({"fault": "MinIO stopped under `avip cone` on the S3 lakehouse",
                    "exit_code": refused.returncode, "half_written": 0,
                    "rows_after_recovery": len(got)})
