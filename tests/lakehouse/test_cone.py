"""Cone search (Spark and in-process) equals a brute-force astropy separation."""

from __future__ import annotations

import astropy.units as u
import cdshealpix.nested as hp
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from lakehouse import healpix, open_catalog, open_interactive

CENTRES = [
    (0.0, 90.0, 1.5),  # north pole
    (123.0, -90.0, 2.0),  # south pole
    (0.0, 10.0, 0.8),  # on RA 0
    (359.95, -20.0, 0.6),  # just west of RA 0
    (180.0, 0.0, 3.0),  # large, on the equator
]


def _vertex_centres():
    lon, lat = hp.vertices(np.array([5, 77, 150], dtype=np.uint64), 2)
    return [
        (float(a), float(b), 0.15)
        for a, b in zip(lon.to_value(u.deg).ravel(), lat.to_value(u.deg).ravel(), strict=True)
    ]


def _random_centres(n=8):
    rng = np.random.default_rng(5)
    return [
        (
            float(rng.uniform(0, 360)),
            float(np.degrees(np.arcsin(rng.uniform(-1, 1)))),
            float(rng.uniform(1.5, 5)),
        )
        for _ in range(n)
    ]


EDGE_ORDER = 2  # the edge sky's partition order (conftest.py)
ALL = CENTRES + _vertex_centres() + _random_centres()


def brute_force(pdf, ra, dec, radius):
    sep = (
        SkyCoord(pdf["ra"].to_numpy() * u.deg, pdf["dec"].to_numpy() * u.deg)
        .separation(SkyCoord(ra * u.deg, dec * u.deg))
        .deg
    )
    return set(pdf["source_id"][sep <= radius])


@pytest.mark.parametrize("ra,dec,radius", ALL)
def test_interactive_cone_equals_astropy(edge_sky, ra, dec, radius):
    root, pdf = edge_sky
    expected = brute_force(pdf, ra, dec, radius)
    got = open_interactive(root).cone(ra, dec, radius, columns=["source_id"])
    ids = got["source_id"].to_pylist()
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    assert len(expected) > 0


def test_spark_cone_equals_astropy(spark, edge_sky):
    root, pdf = edge_sky
    cat = open_catalog(root, spark=spark)
    for ra, dec, radius in ALL:
        ids = [r.source_id for r in cat.cone(ra, dec, radius).select("source_id").df.collect()]
        assert len(ids) == len(set(ids))
        assert set(ids) == brute_force(pdf, ra, dec, radius), (ra, dec, radius)


def test_spark_cone_reads_only_the_covering_files(spark, edge_sky):
    root, pdf = edge_sky
    ra, dec, radius = 10.0, 20.0, 2.0
    df = open_catalog(root, spark=spark).cone(ra, dec, radius).df
    read = {f.split("healpix_partition=")[1].split("/")[0] for f in df.inputFiles()}
    in_cone = pdf["source_id"][pdf["source_id"].isin(brute_force(pdf, ra, dec, radius))]
    holding = {str(p) for p in (in_cone.to_numpy() >> healpix.source_id_shift(EDGE_ORDER))}
    assert holding and holding <= read  # the partitions holding the answer are read ...
    assert len(df.inputFiles()) <= 3  # ... and (of 192) hardly any others
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "PushedFilters" in plan and "source_id" in plan  # row groups skipped on source_id


def test_box_and_polygon_equal_brute_force(spark, edge_sky):
    root, pdf = edge_sky
    ra, dec = pdf["ra"].to_numpy(), pdf["dec"].to_numpy()
    reader, cat = open_interactive(root), open_catalog(root, spark=spark)
    # a box across RA 0
    expected = set(pdf["source_id"][((ra >= 358) | (ra <= 2)) & (dec >= -5) & (dec <= 5)])
    assert (
        set(reader.box(358, 2, -5, 5, columns=["source_id"])["source_id"].to_pylist()) == expected
    )
    assert {
        r.source_id for r in cat.box(358, 2, -5, 5).select("source_id").df.collect()
    } == expected
    # a small quadrilateral: compare to a gnomonic-projection point-in-polygon (straight lines
    # in the gnomonic projection are great circles, so this is an independent exact test)
    verts = [(40.0, 10.0), (46.0, 11.0), (45.0, 16.0), (41.0, 15.0)]
    c0 = SkyCoord(43 * u.deg, 13 * u.deg)
    from matplotlib.path import Path as MplPath

    def gnomonic(r, d):
        off = c0.skyoffset_frame()
        p = SkyCoord(np.atleast_1d(r) * u.deg, np.atleast_1d(d) * u.deg).transform_to(off)
        lon, lat = p.lon.rad, p.lat.rad
        return np.column_stack([np.tan(lon), np.tan(lat) / np.cos(lon)])

    near = SkyCoord(ra * u.deg, dec * u.deg).separation(c0).deg < 30
    poly = MplPath(gnomonic(np.array([v[0] for v in verts]), np.array([v[1] for v in verts])))
    inside = np.zeros(len(ra), bool)
    inside[near] = poly.contains_points(gnomonic(ra[near], dec[near]))
    expected = set(pdf["source_id"][inside])
    assert expected
    assert set(reader.polygon(verts, columns=["source_id"])["source_id"].to_pylist()) == expected
    assert {r.source_id for r in cat.polygon(verts).select("source_id").df.collect()} == expected


def test_pixels_selects_by_source_id(edge_sky):
    root, pdf = edge_sky
    got = set(
        open_interactive(root).pixels(3, [17, 400], columns=["source_id"])["source_id"].to_pylist()
    )
    pix3 = pdf["source_id"].to_numpy() >> (35 + 18)
    assert got == set(pdf["source_id"][np.isin(pix3, [17, 400])])


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda c: c.cone(10, 95, 1), "dec must be within"),
        (lambda c: c.cone(10, 0, 0), "radius must be in (0, 180]"),
        (lambda c: c.cone(10, 0, 181), "radius must be in (0, 180]"),
        (lambda c: c.cone(float("nan"), 0, 1), "finite"),
        (lambda c: c.cone(10, 0, 1, columns=["nope"]), "unknown column"),
        (lambda c: c.cone(10, 0, 1, where="nope > 1"), "unknown column 'nope'"),
        (lambda c: c.cone(10, 0, 1, where="ra > (select 1)"), "subqueries"),
        (lambda c: c.cone(10, 0, 1, where="ra >"), "not valid SQL"),
    ],
)
def test_bad_input_names_the_problem(edge_sky, call, message):
    root, _ = edge_sky
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")
    ):
        call(open_interactive(root))


def test_where_and_columns(edge_sky):
    root, pdf = edge_sky
    got = open_interactive(root).cone(
        180, 0, 3, columns=["source_id", "phot_g_mean_mag"], where="phot_g_mean_mag < 12.5"
    )
    assert got.column_names == ["source_id", "phot_g_mean_mag"]
    assert set(got["source_id"].to_pylist()) == {
        s
        for s in brute_force(pdf, 180, 0, 3)
        if pdf.set_index("source_id").loc[s, "phot_g_mean_mag"] < 12.5
    }
