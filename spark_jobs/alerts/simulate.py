"""Realistic alert streams: Rubin visits of ~10,000 alerts, some on Gaia stars.

A visit is one pointing of a 3.5-degree field at one time in one band. Its
alerts are a mix of

- *stellar variables*: positions of real catalogue stars (drawn from the
  lakehouse by the caller) plus astrometric noise, fluxes from the star's G
  magnitude and a periodic light curve — these are the alerts a Gaia
  annotation should match;
- *transients*: supernova-like rise and decline at random positions;
- *bogus*: low signal-to-noise detections, half of them negative.

Each alert carries a light-curve history (``prvDiaSources``, forced
photometry) consistent with its model, so filters on history length or
object means behave as on real streams. Fluxes are in nJy (AB: 31.4 - 2.5
log10 f). The random generator is seeded, so a stream is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

import lakehouse
from config.settings import Settings
from lakehouse.regions import angular_distance_deg
from spark_jobs.alerts import codec
from spark_jobs.alerts.rows import JD_MJD_OFFSET, named_records

FIELD_RADIUS_DEG = 1.75
BANDS = ("u", "g", "r", "i", "z", "y")
AB_NJY_ZEROPOINT = 31.4
NIGHT_START_MJD = 61000.0


def mag_to_njy(mag: np.ndarray | float) -> np.ndarray | float:
    return 10 ** ((AB_NJY_ZEROPOINT - np.asarray(mag)) / 2.5)


@dataclass
class VisitPlan:
    """How one simulated visit looks."""

    visit: int
    ra_deg: float
    dec_deg: float
    mjd: float
    band: str
    n_alerts: int = 10_000
    star_fraction: float = 0.3
    bogus_fraction: float = 0.2
    max_history: int = 20


def _template(record: dict[str, Any]) -> dict[str, Any]:
    """A record of the schema filled with nulls, or zeros where a value is required."""
    zero = {"long": 0, "int": 0, "float": 0.0, "double": 0.0, "boolean": False, "string": ""}
    out: dict[str, Any] = {}
    for f in record["fields"]:
        t = f["type"]
        nullable = isinstance(t, list) and "null" in t
        out[f["name"]] = None if nullable else zero.get(t if isinstance(t, str) else "", None)
    return out


def _records(schema: codec.RubinSchema) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    named_records(schema.parsed, found)
    return {name.rsplit(".", 1)[-1]: rec for name, rec in found.items()}


def _random_in_field(rng: np.random.Generator, ra0: float, dec0: float, n: int) -> tuple:
    """Uniform positions on the sphere inside the field's circle."""
    r = np.radians(FIELD_RADIUS_DEG) * np.sqrt(rng.uniform(0, 1, n))
    theta = rng.uniform(0, 2 * np.pi, n)
    d0, a0 = np.radians(dec0), np.radians(ra0)
    dec = np.arcsin(np.sin(d0) * np.cos(r) + np.cos(d0) * np.sin(r) * np.cos(theta))
    ra = a0 + np.arctan2(
        np.sin(theta) * np.sin(r) * np.cos(d0), np.cos(r) - np.sin(d0) * np.sin(dec)
    )
    return np.degrees(ra) % 360.0, np.degrees(dec)


@dataclass
class RubinSimulator:
    """Builds Rubin alert records for visits; ``stars`` are Gaia rows (source_id, ra, dec,
    phot_g_mean_mag) that variables are placed on."""

    stars: pd.DataFrame | None = None
    seed: int = 0
    schema: codec.RubinSchema = field(default_factory=codec.rubin_schema)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        recs = _records(self.schema)
        self._src = _template(recs["diaSource"])
        self._obj = _template(recs["diaObject"])
        self._forced = _template(recs["diaForcedSource"])
        self._alert = _template(recs["alert"])
        if self.stars is not None:
            missing = {"source_id", "ra", "dec", "phot_g_mean_mag"} - set(self.stars.columns)
            if missing:
                raise ValueError(
                    f"stars need columns source_id, ra, dec, phot_g_mean_mag; missing {missing}"
                )

    # -- one alert -----------------------------------------------------------
    def _source(
        self,
        *,
        source_id: int,
        object_id: int,
        visit: int,
        mjd: float,
        band: str,
        ra: float,
        dec: float,
        flux: float,
        err: float,
        template_flux: float,
    ) -> dict:
        s = dict(self._src)
        s.update(
            diaSourceId=source_id,
            visit=visit,
            detector=int(self.rng.integers(0, 189)),
            diaObjectId=object_id,
            midpointMjdTai=mjd,
            exposureTime=30.0,
            ra=ra,
            dec=dec,
            raErr=1e-5,
            decErr=1e-5,
            x=float(self.rng.uniform(0, 4000)),
            y=float(self.rng.uniform(0, 4000)),
            psfFlux=flux,
            psfFluxErr=err,
            apFlux=flux * 0.97,
            apFluxErr=err * 1.1,
            snr=abs(flux) / err,
            psfNdata=441,
            scienceFlux=template_flux + flux,
            scienceFluxErr=err,
            templateFlux=template_flux,
            templateFluxErr=err * 0.5,
            isNegative=flux < 0,
            band=band,
            extendedness=float(self.rng.uniform(0, 0.3)),
            reliability=float(self.rng.beta(8, 2)),
            timeProcessedMjdTai=mjd + 0.0005,
            bboxSize=21,
        )
        return s

    def alerts_for_visit(self, plan: VisitPlan) -> Iterator[dict[str, Any]]:
        """The alert records of one visit (schema-complete dicts)."""
        rng = self.rng
        n = plan.n_alerts
        kinds = rng.choice(
            ["star", "transient", "bogus"],
            size=n,
            p=[
                plan.star_fraction,
                1 - plan.star_fraction - plan.bogus_fraction,
                plan.bogus_fraction,
            ],
        )
        ra, dec = _random_in_field(rng, plan.ra_deg, plan.dec_deg, n)
        base_mag = rng.uniform(18, 24, n)
        object_ids = rng.integers(1, 2**62, n)
        stars = self._stars_in_field(plan)
        if stars is not None and len(stars):
            on_star = np.flatnonzero(kinds == "star")
            pick = rng.integers(0, len(stars), len(on_star))
            noise = rng.normal(0, 0.1 / 3600, (len(on_star), 2))  # 0.1 arcsec astrometry
            ra[on_star] = (
                stars["ra"].to_numpy()[pick]
                + noise[:, 0] / np.cos(np.radians(stars["dec"].to_numpy()[pick]))
            ) % 360
            dec[on_star] = stars["dec"].to_numpy()[pick] + noise[:, 1]
            base_mag[on_star] = stars["phot_g_mean_mag"].to_numpy()[pick]
            # A star's object id is stable from visit to visit.
            object_ids[on_star] = stars["source_id"].to_numpy()[pick] % (2**62)
        for i in range(n):
            yield self._alert_record(
                plan,
                i,
                kinds[i],
                float(ra[i]),
                float(dec[i]),
                float(base_mag[i]),
                int(object_ids[i]),
            )

    def _stars_in_field(self, plan: VisitPlan) -> pd.DataFrame | None:
        if self.stars is None:
            return None
        sep = angular_distance_deg(self.stars["ra"], self.stars["dec"], plan.ra_deg, plan.dec_deg)
        return self.stars[np.asarray(sep) <= FIELD_RADIUS_DEG]

    def _lightcurve(
        self, kind: str, base_mag: float, t: np.ndarray, phase: float, period: float
    ) -> tuple[np.ndarray, float]:
        """Difference fluxes at times ``t`` (days relative to now) and the template flux."""
        template = float(mag_to_njy(base_mag))
        if kind == "star":
            amp = template * self.rng.uniform(0.05, 0.5)
            return amp * np.sin(2 * np.pi * (t / period + phase)), template
        if kind == "transient":
            peak = float(mag_to_njy(base_mag - 1.5))
            age = t + self.rng.uniform(1, 40)  # days since explosion at each epoch
            rise = np.clip(age / 15.0, 0, 1)
            return peak * rise * np.exp(-np.clip(age - 15, 0, None) / 30.0), 0.0
        return self.rng.normal(0, 400, t.shape) * self.rng.choice([-1, 1]), 0.0

    def _alert_record(
        self,
        plan: VisitPlan,
        i: int,
        kind: str,
        ra: float,
        dec: float,
        base_mag: float,
        object_id: int,
    ) -> dict[str, Any]:
        rng = self.rng
        n_prv = 0 if kind == "bogus" else int(min(rng.geometric(0.15) - 1, plan.max_history))
        t = np.concatenate([-np.sort(rng.uniform(0.5, 60, n_prv))[::-1], [0.0]])
        flux, template = self._lightcurve(kind, base_mag, t, rng.uniform(), rng.uniform(0.2, 30))
        err = np.maximum(np.abs(flux) * 0.02, 150.0 + rng.uniform(0, 100, t.shape))
        if kind == "bogus":
            flux = np.sign(flux) * np.maximum(np.abs(flux), 5.5 * err)
        source_id = plan.visit * 1_000_000 + i
        srcs = [
            self._source(
                source_id=source_id - (k + 1) * 10_000_000_000_000 if k < n_prv else source_id,
                object_id=object_id,
                visit=plan.visit - (n_prv - k) if k < n_prv else plan.visit,
                mjd=plan.mjd + float(t[k]),
                band=plan.band if k == n_prv else BANDS[k % 6],
                ra=ra,
                dec=dec,
                flux=float(flux[k]),
                err=float(err[k]),
                template_flux=template,
            )
            for k in range(n_prv + 1)
        ]
        alert = dict(self._alert)
        alert.update(
            diaSourceId=source_id,
            diaSource=srcs[-1],
            observation_reason="wfd",
            target_name=f"field_{plan.visit % 5000}",
        )
        if n_prv:
            alert["prvDiaSources"] = srcs[:-1]
            forced = []
            for k in range(min(n_prv, 12)):
                fs = dict(self._forced)
                fs.update(
                    diaForcedSourceId=source_id * 100 + k,
                    diaObjectId=object_id,
                    ra=ra,
                    dec=dec,
                    visit=srcs[k]["visit"],
                    detector=srcs[k]["detector"],
                    psfFlux=srcs[k]["psfFlux"],
                    psfFluxErr=srcs[k]["psfFluxErr"],
                    midpointMjdTai=srcs[k]["midpointMjdTai"],
                    band=srcs[k]["band"],
                    timeProcessedMjdTai=srcs[k]["timeProcessedMjdTai"],
                )
                forced.append(fs)
            alert["prvDiaForcedSources"] = forced
            obj = dict(self._obj)
            obj.update(
                diaObjectId=object_id,
                validityStartMjdTai=plan.mjd + float(t[0]),
                ra=ra,
                dec=dec,
                raErr=1e-5,
                decErr=1e-5,
            )
            obj[f"{plan.band}_psfFluxMean"] = float(np.mean(flux))
            obj[f"{plan.band}_psfFluxSigma"] = float(np.std(flux))
            alert["diaObject"] = obj
        return alert


def plan_night(
    n_visits: int,
    pointings: list[tuple[float, float]],
    n_alerts: int = 10_000,
    seed: int = 0,
    first_visit: int = 1,
    star_fraction: float = 0.3,
) -> list[VisitPlan]:
    """Visits cycling over ``pointings`` (ra, dec deg), 40 s apart, bands rotating."""
    if not pointings:
        raise ValueError("need at least one pointing (ra, dec) for the visits")
    rng = np.random.default_rng(seed)
    return [
        VisitPlan(
            visit=first_visit + k,
            ra_deg=pointings[k % len(pointings)][0],
            dec_deg=pointings[k % len(pointings)][1],
            mjd=NIGHT_START_MJD + k * 40 / 86400,
            band=BANDS[int(rng.integers(1, 5))],
            n_alerts=n_alerts,
            star_fraction=star_fraction,
        )
        for k in range(n_visits)
    ]


def ztf_alert(
    rng: np.random.Generator,
    candid: int,
    ra: float,
    dec: float,
    mjd: float,
    mag: float,
    n_prv: int = 5,
) -> dict[str, Any]:
    """One ZTF-style alert record (see :data:`codec.ZTF_SCHEMA`)."""
    jd = mjd + JD_MJD_OFFSET
    cand = {
        "jd": jd,
        "fid": int(rng.integers(1, 3)),
        "pid": candid // 1000,
        "candid": candid,
        "isdiffpos": "t",
        "ra": ra,
        "dec": dec,
        "magpsf": mag,
        "sigmapsf": 0.05 + 0.02 * (mag - 16),
        "diffmaglim": 20.5,
        "rb": float(rng.beta(8, 2)),
        "drb": float(rng.beta(8, 2)),
        "fwhm": 2.1,
        "elong": 1.05,
        "ssdistnr": -999.0,
        "sgscore1": float(rng.uniform()),
        "distpsnr1": float(rng.uniform(0, 5)),
        "ndethist": n_prv + 1,
        "jdstarthist": jd - 30,
    }
    prv = [
        {
            "jd": jd - 3 * (k + 1),
            "fid": 1 + k % 2,
            "magpsf": mag + 0.1 * k,
            "sigmapsf": 0.1,
            "diffmaglim": 20.5,
        }
        for k in range(n_prv)
    ]
    name = "ZTF" + "".join(chr(97 + int(c)) for c in rng.integers(0, 26, 7))
    return {
        "schemavsn": "3.3",
        "publisher": "avip-simulator",
        "objectId": name,
        "candid": candid,
        "candidate": cand,
        "prv_candidates": prv or None,
    }


def encode_visit(sim: RubinSimulator, plan: VisitPlan) -> list[tuple[bytes, bytes]]:
    """(key, value) Kafka messages of one visit, keyed by diaSourceId."""
    return [
        (str(a["diaSourceId"]).encode(), codec.encode_rubin(a, sim.schema))
        for a in sim.alerts_for_visit(plan)
    ]


def gaia_stars_from_lakehouse(
    n_max: int = 200_000,
    seed: int = 0,
    spark: SparkSession | None = None,
    root: str | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Up to ``n_max`` catalogue stars (source_id, ra, dec, phot_g_mean_mag) from the lakehouse
    at ``root`` (default: ``settings``' lakehouse, the platform's settings by default)."""
    cat = lakehouse.open_catalog(root, spark=spark, settings=settings)
    df = cat.select("source_id", "ra", "dec", "phot_g_mean_mag").df
    df = df.where("phot_g_mean_mag IS NOT NULL")
    total = df.count()
    if total == 0:
        raise ValueError("the lakehouse's gaia_source table is empty: run `avip ingest` first")
    fraction = min(1.0, n_max / total)
    return df.sample(fraction=fraction, seed=seed).limit(n_max).toPandas()


def pointings_on(stars: pd.DataFrame, n: int, seed: int = 0) -> list[tuple[float, float]]:
    """``n`` pointings centred on random catalogue stars, so fields overlap the catalogue."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(stars), n)
    return [(float(stars["ra"].iloc[i]), float(stars["dec"].iloc[i])) for i in idx]
