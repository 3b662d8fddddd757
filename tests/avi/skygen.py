"""A small synthetic sky for the AVI tests: field stars plus injected clusters.

Independent of the lakehouse's generator on purpose: the tests know exactly
which stars belong to which cluster. source_id follows Gaia's rule (level-12
nested HEALPix index << 35), which the cluster finder's fields rely on.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from cdshealpix import nested


def make_sky(
    n_field: int = 20000,
    n_clusters: int = 8,
    seed: int = 1,
    ra_range: tuple[float, float] = (40.0, 60.0),
    dec_range: tuple[float, float] = (-10.0, 10.0),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stars, truth): stars with DR3 columns and cluster_id (-1: field), and the truth."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(*ra_range, n_field)
    sin_dec = rng.uniform(*np.sin(np.radians(dec_range)), n_field)
    dec = np.degrees(np.arcsin(sin_dec))
    parallax = rng.gamma(2.0, 0.6, n_field)
    pmra = rng.normal(0, 6, n_field)
    pmdec = rng.normal(-2, 6, n_field)
    cid = np.full(n_field, -1)
    truth = []
    parts = [(ra, dec, parallax, pmra, pmdec, cid)]
    for k in range(n_clusters):
        n = int(rng.integers(40, 120))
        c_ra = rng.uniform(ra_range[0] + 2, ra_range[1] - 2)
        c_dec = rng.uniform(dec_range[0] + 2, dec_range[1] - 2)
        radius = rng.uniform(0.1, 0.3)
        c_plx = rng.uniform(0.5, 3.0)
        c_pmra, c_pmdec = rng.normal(0, 5, 2)
        r = np.abs(rng.normal(0, radius, n))
        phi = rng.uniform(0, 2 * np.pi, n)
        m_dec = c_dec + r * np.sin(phi)
        m_ra = c_ra + r * np.cos(phi) / np.cos(np.radians(c_dec))
        parts.append((m_ra, m_dec, rng.normal(c_plx, 0.05, n), rng.normal(c_pmra, 0.15, n),
                      rng.normal(c_pmdec, 0.15, n), np.full(n, k)))
        truth.append({"cluster_id": k, "ra": c_ra, "dec": c_dec, "parallax": c_plx,
                      "pmra": c_pmra, "pmdec": c_pmdec, "radius_deg": radius, "n_members": n})
    ra, dec, parallax, pmra, pmdec, cid = (np.concatenate(x) for x in zip(*parts, strict=True))
    coords = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs")
    gal = coords.galactic
    pix12 = nested.lonlat_to_healpix(coords.ra, coords.dec, 12).astype(np.int64)
    order = np.argsort(pix12, kind="stable")
    n = len(ra)
    stars = pd.DataFrame({
        "source_id": (pix12 << 35) + np.arange(n),
        "ra": ra, "dec": dec, "l": gal.l.deg, "b": gal.b.deg,
        "parallax": parallax,
        "parallax_error": np.full(n, 0.05),
        "pmra": pmra, "pmdec": pmdec,
        "phot_g_mean_mag": rng.uniform(8, 20, n).astype(np.float32),
        "bp_rp": rng.uniform(-0.2, 3.0, n).astype(np.float32),
        "ruwe": rng.uniform(0.8, 1.3, n).astype(np.float32),
        "cluster_id": cid,
    }).iloc[order].reset_index(drop=True)
    stars["parallax_over_error"] = (stars["parallax"] / stars["parallax_error"]).astype(np.float32)
    return stars, pd.DataFrame(truth)
