"""A deterministic synthetic Gaia sky at any scale, with injected open clusters.

Stars are drawn in 3-D from a thin disc, thick disc, bulge and halo, seen from
the Sun, dimmed by distance and a dust layer, and kept when G < 21 — so counts
rise toward the Galactic plane and bulge and the magnitude, colour, parallax
and proper-motion distributions look like Gaia's. Astrometric and photometric
errors follow Gaia DR3's run with magnitude. ``source_id`` encodes the order-12
HEALPix index in bits 35+ and a running number below, as Gaia does.

Open clusters (compact in position, proper motion and parallax) are injected;
their members are rows ``0 .. M-1`` and field stars the rest. The cluster table
and the member list are stored beside the catalogue as ground truth.

Determinism: row ``i`` depends only on (seed, chunk of i); chunks are
generated in parallel by Spark, each from its own numpy generator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord

from lakehouse import healpix
from lakehouse.schema import COLUMN_NAMES, numpy_dtype

CHUNK_ROWS = 250_000
R0_KPC, Z0_KPC = 8.2, 0.02
V_CIRC, V_SUN = 230.0, np.array([11.1, 245.0, 7.3])
G_LIMIT = 21.0
K_PM = 4.740470446  # km/s per (kpc * mas/yr)

# name, weight, generator of galactocentric (x, y, z) kpc, velocity dispersion km/s, rotates
_COMPONENTS = (
    ("thin", 0.55, (35.0, 25.0, 18.0), True),
    ("thick", 0.22, (60.0, 45.0, 40.0), True),
    ("bulge", 0.13, (110.0, 100.0, 90.0), False),
    ("halo", 0.10, (150.0, 110.0, 100.0), False),
)


def default_cluster_count(rows: int) -> int:
    """About one cluster per 40,000 stars, 10 to 2,000."""
    return int(min(max(rows // 40_000, 10), 2000))


@dataclass(frozen=True)
class SkyPlan:
    """Everything needed to regenerate any row: rows, seed and the cluster table."""

    rows: int
    seed: int
    clusters: pd.DataFrame  # one row per cluster, with first_row / n_members

    @property
    def member_rows(self) -> int:
        return int(self.clusters["n_members"].sum())

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.rows / CHUNK_ROWS)


def plan_sky(rows: int, seed: int, clusters: int | None = None) -> SkyPlan:
    """Draw the injected clusters (on the driver; small) and fix the row layout."""
    if rows < 1000:
        raise ValueError(f"--rows must be at least 1000, got {rows}")
    if rows >= 2**35:
        raise ValueError(f"--rows must be below 2**35 so source_ids stay unique, got {rows}")
    n = default_cluster_count(rows) if clusters is None else clusters
    if n < 0 or n * 400 > rows // 2:
        raise ValueError(f"{n} clusters do not fit in {rows} rows (at most {rows // 800})")
    rng = np.random.default_rng([seed, 1])
    dist = 0.25 + 2.5 * rng.uniform(0, 1, n) ** 1.5
    l = rng.uniform(0, 360, n)
    b = rng.normal(0, 4.0, n)
    r50_pc = rng.uniform(1.0, 3.5, n)
    members = np.round(np.exp(rng.uniform(math.log(60), math.log(400), n))).astype(int)
    vel = _disc_velocity(*_helio_to_galactocentric(l, b, dist)) + rng.normal(0, 12, (n, 3))
    eq, _ = _icrs_motion(l, b, dist, vel)
    table = pd.DataFrame(
        {
            "cluster_id": np.arange(n, dtype=np.int32),
            "ra": eq.ra.deg,
            "dec": eq.dec.deg,
            "l": l,
            "b": b,
            "distance_kpc": dist,
            "parallax": 1 / dist,
            "pmra": eq.pm_ra_cosdec.to_value(u.mas / u.yr),
            "pmdec": eq.pm_dec.to_value(u.mas / u.yr),
            "radius_deg": np.degrees(r50_pc / 1000 / dist),
            "n_members": members.astype(np.int32),
            "vx": vel[:, 0],
            "vy": vel[:, 1],
            "vz": vel[:, 2],
        }
    )
    table["first_row"] = np.concatenate([[0], np.cumsum(members)[:-1]]).astype(np.int64)
    return SkyPlan(rows=rows, seed=seed, clusters=table)


def _helio_to_galactocentric(l, b, d):
    lr, br = np.radians(l), np.radians(b)
    x = d * np.cos(br) * np.cos(lr) - R0_KPC
    y = d * np.cos(br) * np.sin(lr)
    z = d * np.sin(br) + Z0_KPC
    return x, y, z


def _disc_velocity(x, y, z):
    """Flat rotation curve velocity (km/s) at galactocentric positions."""
    r = np.hypot(x, y) + 1e-9
    return np.stack([V_CIRC * y / r, -V_CIRC * x / r, np.zeros_like(z)], axis=-1)


def _proper_motions(l, b, d, vel):
    """(pm_l cos b, pm_b) in mas/yr and radial velocity (km/s) from Galactic velocities."""
    v = vel - V_SUN
    lr, br = np.radians(l), np.radians(b)
    v_l = -v[:, 0] * np.sin(lr) + v[:, 1] * np.cos(lr)
    v_b = (
        -v[:, 0] * np.cos(lr) * np.sin(br)
        - v[:, 1] * np.sin(lr) * np.sin(br)
        + v[:, 2] * np.cos(br)
    )
    v_r = (
        v[:, 0] * np.cos(lr) * np.cos(br) + v[:, 1] * np.sin(lr) * np.cos(br) + v[:, 2] * np.sin(br)
    )
    return v_l / (K_PM * d), v_b / (K_PM * d), v_r


def _icrs_motion(l, b, d, vel) -> tuple[SkyCoord, np.ndarray]:
    """ICRS position and proper motion of stars at Galactic (l, b) in degrees and distance
    ``d`` in kpc moving with Galactic velocities ``vel`` (km/s); and their radial velocity."""
    pm_l, pm_b, v_r = _proper_motions(l, b, d, vel)
    eq = SkyCoord(
        l=l * u.deg,
        b=b * u.deg,
        distance=d * u.kpc,
        pm_l_cosb=pm_l * u.mas / u.yr,
        pm_b=pm_b * u.mas / u.yr,
        frame="galactic",
    ).icrs
    return eq, v_r


def _absolute_mags(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """M_G and intrinsic BP-RP: main sequence (rising to faint) plus 8% giants."""
    giant = rng.uniform(size=n) < 0.08
    ms = -1.0 + 13.0 * rng.power(1.6, n)
    m = np.where(giant, rng.normal(0.6, 0.9, n), ms)
    colour = np.where(
        giant,
        rng.normal(1.25, 0.18, n),
        0.05 + 0.16 * ms + 0.012 * np.maximum(ms - 5, 0) ** 2 + rng.normal(0, 0.05, n),
    )
    return m, np.clip(colour, -0.4, 5.5)


def _extinction_g(d, z_helio):
    """A_G (mag) through a dust layer of scale height 120 pc, 0.8 mag/kpc in the plane."""
    h = 0.12
    s = np.abs(z_helio) / h
    path = np.where(s > 1e-6, d * (1 - np.exp(-s)) / np.maximum(s, 1e-6), d)
    return 0.8 * path


def _positions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Galactocentric positions and velocities for n field stars."""
    comp = rng.choice(len(_COMPONENTS), size=n, p=[c[1] for c in _COMPONENTS])
    x, y, z = np.empty(n), np.empty(n), np.empty(n)
    vel = np.empty((n, 3))
    for k, (name, _, sigma, rotates) in enumerate(_COMPONENTS):
        sel = comp == k
        m = int(sel.sum())
        if name in ("thin", "thick"):
            r = rng.gamma(2.0, 2.6 if name == "thin" else 2.0, m)
            phi = rng.uniform(0, 2 * np.pi, m)
            px, py = r * np.cos(phi), r * np.sin(phi)
            pz = rng.laplace(0, 0.3 if name == "thin" else 0.9, m)
        elif name == "bulge":
            px, py, pz = rng.normal(0, [0.9, 0.4, 0.35], (m, 3)).T
        else:
            rr = 2.0 * (rng.pareto(2.0, m) + 0.2)
            vec = rng.normal(size=(m, 3))
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            px, py, pz = (rr[:, None] * vec).T
        x[sel], y[sel], z[sel] = px, py, pz
        v = rng.normal(0, sigma, (m, 3))
        if rotates:
            v += _disc_velocity(px, py, pz) * (1.0 if name == "thin" else 0.8)
        vel[sel] = v
    return x, y, z, vel


def _observe(rng, l, b, d, vel, m_abs, colour0) -> pd.DataFrame:
    """Turn true stars into a Gaia-like table (errors, noise, derived columns)."""
    n = len(l)
    z_helio = d * np.sin(np.radians(b))
    a_g = _extinction_g(d, z_helio)
    g = m_abs + 5 * np.log10(d * 100) + a_g
    bp_rp = colour0 + a_g / 1.9
    eq, v_r = _icrs_motion(l, b, d, vel)
    sig_plx = np.hypot(0.018, 0.5 * 10 ** (0.2 * (g - 20)))
    sig_pm = 1.1 * sig_plx
    sig_g = 0.0003 + 0.004 * 10 ** (0.4 * (g - 20))
    plx = 1 / d + rng.normal(0, sig_plx)
    rp = g - (0.1 + 0.52 * bp_rp)
    rv = np.where(g < 14.5, v_r + rng.normal(0, 1.0, n), np.nan)
    ruwe = (
        1 + np.abs(rng.normal(0, 0.08, n)) + (rng.uniform(size=n) < 0.04) * rng.lognormal(0, 0.6, n)
    )
    return pd.DataFrame(
        {
            "ra": eq.ra.deg,
            "dec": eq.dec.deg,
            "l": l % 360,
            "b": b,
            "ra_error": 0.8 * sig_plx,
            "dec_error": 0.75 * sig_plx,
            "parallax": plx,
            "parallax_error": sig_plx,
            "parallax_over_error": plx / sig_plx,
            "pmra": eq.pm_ra_cosdec.to_value(u.mas / u.yr) + rng.normal(0, sig_pm),
            "pmra_error": sig_pm,
            "pmdec": eq.pm_dec.to_value(u.mas / u.yr) + rng.normal(0, sig_pm),
            "pmdec_error": 0.9 * sig_pm,
            "ruwe": ruwe,
            "phot_g_mean_mag": g + rng.normal(0, sig_g),
            "phot_bp_mean_mag": rp + bp_rp,
            "phot_rp_mean_mag": rp,
            "bp_rp": bp_rp,
            "phot_g_mean_flux_over_error": 1.0857 / sig_g,
            "astrometric_sigma5d_max": 1.6 * sig_plx,
            "visibility_periods_used": rng.integers(9, 33, n),
            "astrometric_excess_noise": np.abs(rng.normal(0, 0.08, n)) * (ruwe - 0.9),
            "astrometric_excess_noise_sig": np.abs(rng.normal(0, 1.0, n)),
            "radial_velocity": rv,
        }
    )


def _field_stars(rng: np.random.Generator, n: int) -> pd.DataFrame:
    parts, have = [], 0
    while have < n:
        batch = max(int((n - have) * 1.6), 1000)
        x, y, z, vel = _positions(rng, batch)
        hx, hy, hz = x + R0_KPC, y, z - Z0_KPC
        d = np.sqrt(hx**2 + hy**2 + hz**2)
        l = np.degrees(np.arctan2(hy, hx)) % 360
        b = np.degrees(np.arcsin(hz / d))
        m_abs, colour = _absolute_mags(rng, batch)
        a_g = _extinction_g(d, hz)
        visible = (m_abs + 5 * np.log10(d * 100) + a_g < G_LIMIT) & (d > 0.02)
        idx = np.flatnonzero(visible)[: n - have]
        parts.append(_observe(rng, l[idx], b[idx], d[idx], vel[idx], m_abs[idx], colour[idx]))
        have += len(idx)
    return pd.concat(parts, ignore_index=True)


def cluster_members(plan: SkyPlan, cluster_id: int) -> pd.DataFrame:
    """All members of one injected cluster, identical wherever it is generated."""
    c = plan.clusters.iloc[cluster_id]
    rng = np.random.default_rng([plan.seed, 2, cluster_id])
    n = int(c["n_members"])
    offsets = rng.normal(0, 1, (n, 3)) * (c["radius_deg"] / 1.18) / 57.2958 * c["distance_kpc"]
    d = np.clip(c["distance_kpc"] + offsets[:, 2], 0.05, None)
    l = c["l"] + np.degrees(offsets[:, 0] / d) / max(math.cos(math.radians(c["b"])), 0.05)
    b = c["b"] + np.degrees(offsets[:, 1] / d)
    vel = np.array([c["vx"], c["vy"], c["vz"]]) + rng.normal(0, 0.8, (n, 3))
    m_abs, colour = _absolute_mags(rng, 4 * n)
    a_g = _extinction_g(c["distance_kpc"], c["distance_kpc"] * math.sin(math.radians(c["b"])))
    bright = np.flatnonzero(m_abs + 5 * math.log10(c["distance_kpc"] * 100) + a_g < G_LIMIT - 0.3)
    pick = bright[:n] if len(bright) >= n else np.resize(bright, n) if len(bright) else np.arange(n)
    return _observe(
        rng,
        l,
        b,
        d,
        vel,
        m_abs[pick] if len(bright) else np.full(n, 4.0),
        colour[pick] if len(bright) else np.full(n, 0.8),
    )


def _finish(plan: SkyPlan, rows: pd.DataFrame, first_row: int) -> pd.DataFrame:
    idx = np.arange(first_row, first_row + len(rows), dtype=np.int64)
    hpx = healpix.healpix_index(rows["ra"].to_numpy(), rows["dec"].to_numpy(), healpix.INDEX_ORDER)
    rows["source_id"] = (hpx << healpix.SOURCE_ID_SHIFT) | idx
    rows["designation"] = "Synthetic " + rows["source_id"].astype(str)
    step = 1_000_003
    while math.gcd(step, plan.rows) != 1:
        step += 2
    rows["random_index"] = (idx * step + plan.seed) % plan.rows
    return rows.astype({c: numpy_dtype(c) for c in COLUMN_NAMES})[list(COLUMN_NAMES)]


def generate_chunk(plan: SkyPlan, chunk: int) -> pd.DataFrame:
    """Rows ``chunk*CHUNK_ROWS ..`` of the sky: cluster members first, then field stars."""
    start = chunk * CHUNK_ROWS
    stop = min(start + CHUNK_ROWS, plan.rows)
    parts, cursor = [], start
    members_end = plan.member_rows
    if cursor < members_end:
        cl = plan.clusters
        touching = cl[(cl["first_row"] < stop) & (cl["first_row"] + cl["n_members"] > cursor)]
        for _, c in touching.iterrows():
            m = cluster_members(plan, int(c["cluster_id"]))
            lo = max(cursor, int(c["first_row"])) - int(c["first_row"])
            hi = min(stop, int(c["first_row"] + c["n_members"])) - int(c["first_row"])
            parts.append(m.iloc[lo:hi])
        cursor = min(stop, members_end)
    if cursor < stop:
        rng = np.random.default_rng([plan.seed, 0, chunk])
        parts.append(_field_stars(rng, stop - cursor))
    return _finish(plan, pd.concat(parts, ignore_index=True), start)


def truth_members(plan: SkyPlan) -> pd.DataFrame:
    """(cluster_id, source_id) of every injected member — the ground truth."""
    out = []
    for cid in plan.clusters["cluster_id"]:
        c = plan.clusters.iloc[int(cid)]
        rows = _finish(plan, cluster_members(plan, int(cid)), int(c["first_row"]))
        out.append(pd.DataFrame({"cluster_id": np.int32(cid), "source_id": rows["source_id"]}))
    return (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame(
            {"cluster_id": np.array([], np.int32), "source_id": np.array([], np.int64)}
        )
    )


def chunk_iterator(plan: SkyPlan):
    """A ``mapInPandas`` function: chunk ids in, catalogue rows out."""

    def generate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for chunk in batch["id"]:
                yield generate_chunk(plan, int(chunk))

    return generate
