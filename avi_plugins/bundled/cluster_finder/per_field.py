"""Clustering one field: the work each Spark task does (and the serial baseline repeats).

Following Hunt & Reffert (A&A 646, A104, 2021; A&A 673, A114, 2023):
the five astrometric dimensions (l, b, pmra, pmdec, parallax) are rescaled
per field to zero median and unit inter-quartile range (``RobustScaler``), so
no dimension dominates whatever the field's proper-motion spread; HDBSCAN
then finds over-densities; each candidate is kept only when a Mann-Whitney U
test shows its members' nearest-neighbour distances are smaller than those
of comparable field stars (their cluster significance test, CST; here with
an effect-size cut as well, since with hundreds of stars a mere mode of the
field population is also "significant") and when its centre lies in the
field's own pixel (the margin only completes it).
Positions are projected onto the field's tangent plane first so the 0/360
wrap in l cannot split a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.stats import mannwhitneyu, norm
from sklearn.preprocessing import RobustScaler
from threadpoolctl import threadpool_limits

from avi_plugins.bundled.cluster_finder.fields import (
    centre_pixel,
    field_order_pixel,
    mean_direction,
    tangent_plane,
)

INPUT_COLUMNS = ("source_id", "ra", "dec", "l", "b", "pmra", "pmdec", "parallax")
MEMBER_SCHEMA = (
    "field long, label int, source_id long, ra double, dec double, l double, b double, "
    "pmra double, pmdec double, parallax double, probability double, significance double"
)
MEMBER_COLUMNS = tuple(part.split()[0] for part in MEMBER_SCHEMA.split(", "))
_MEMBER_DTYPES = {
    part.split()[0]: {"long": "int64", "int": "int32", "double": "float64"}[part.split()[1]]
    for part in MEMBER_SCHEMA.split(", ")
}
MAX_CLUSTER_STARS = 2000  # larger candidates are field populations, not comparison-excluded
_MAX_SIGMA = 37.0  # norm.isf of the smallest double p-value


@dataclass(frozen=True)
class FieldSettings:
    """How each field is clustered (a picklable bundle shipped to Spark workers)."""

    min_cluster_size: int
    min_samples: int
    selection_method: str
    min_significance: float
    max_contrast: float = 0.5
    max_radius_pc: float = 20.0
    backend: str = "hdbscan"


@cache
def one_thread_per_process() -> None:
    """Limit BLAS/OpenMP pools to one thread, once per (worker) process.

    Each Spark task clusters on one core, as the serial baseline does; doing
    this once instead of per field saves the few milliseconds threadpoolctl
    spends finding the loaded libraries on every call.
    """
    threadpool_limits(1)


def _no_members() -> pd.DataFrame:
    return pd.DataFrame({name: np.empty(0, dtype) for name, dtype in _MEMBER_DTYPES.items()})


def run_hdbscan(points: np.ndarray, settings: FieldSettings) -> tuple[np.ndarray, np.ndarray]:
    """Labels (-1 = noise) and membership probabilities from one HDBSCAN run on one core."""
    if settings.backend == "sklearn":
        from sklearn.cluster import HDBSCAN

        model = HDBSCAN(
            min_cluster_size=settings.min_cluster_size,
            min_samples=settings.min_samples,
            cluster_selection_method=settings.selection_method,
            n_jobs=1,
        ).fit(points)
    else:
        import hdbscan

        model = hdbscan.HDBSCAN(
            min_cluster_size=settings.min_cluster_size,
            min_samples=settings.min_samples,
            cluster_selection_method=settings.selection_method,
            core_dist_n_jobs=1,
        ).fit(points)
    return model.labels_.astype(np.int32), model.probabilities_.astype(np.float64)


def significance(
    points: np.ndarray,
    members: np.ndarray,
    k: int,
    trees: FieldTrees | None = None,
    others: np.ndarray | None = None,
) -> tuple[float, float]:
    """CST: (sigma, contrast) of how much denser the members are than comparable field stars.

    The comparison stars are the non-members closest to the candidate in
    proper motion and parallax only, wherever they are in the field: for a
    real cluster they are the field population it is seen against and are
    spread over the field, so the members' k-th nearest-neighbour distances
    (in the rescaled 5-d space) are much smaller; for a mere mode of the field
    population they are not. Returns the one-sided Mann-Whitney U significance
    in sigma and the ratio of median k-NN distances (members / field).
    ``trees`` (built once per field) saves rebuilding the k-d trees per candidate.
    ``others`` marks members of the field's other compact candidates: they are
    left out of the comparison, or a cluster next to another one in proper
    motion would be judged against that cluster's density instead of the field's.
    """
    n_members = int(members.sum())
    k = max(1, min(k, len(points) - 1))
    usable = ~members if others is None else ~(members | others)
    n_field = min(int(usable.sum()), max(10 * n_members, 50))
    if n_field < 5:
        return 0.0, 1.0
    trees = trees or FieldTrees(points)
    centre = np.median(points[members, 2:], axis=0)
    n_query = min(len(points), len(points) - int(usable.sum()) + n_field)
    near = np.atleast_1d(trees.kinematic.query(centre, k=n_query)[1])
    candidates = near[usable[near]][:n_field]
    member_dist = trees.knn_distance(np.flatnonzero(members), k)
    field_dist = trees.knn_distance(candidates, k)
    p_value = mannwhitneyu(member_dist, field_dist, alternative="less").pvalue
    sigma = float(min(_MAX_SIGMA, norm.isf(max(p_value, 1e-300))))
    contrast = float(np.median(member_dist) / max(np.median(field_dist), 1e-12))
    return sigma, contrast


class FieldTrees:
    """k-d trees of one field's points, in 5-d and in (pmra, pmdec, parallax), built once."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points
        self.full = cKDTree(points)
        self.kinematic = cKDTree(points[:, 2:])

    def knn_distance(self, index: np.ndarray, k: int) -> np.ndarray:
        """Distance of each indexed point to its k-th neighbour (itself excluded)."""
        return self.full.query(self.points[index], k=[k + 1])[0][:, 0]


def half_mass_radius_pc(raw: np.ndarray) -> float:
    """Median distance of members from their centre, in parsecs at their median parallax.

    ``raw`` rows are (x, y in degrees on the tangent plane, pmra, pmdec, parallax).
    A parallax below 0.05 mas (noise-dominated) counts as 20 kpc.
    """
    offsets = raw[:, :2] - np.median(raw[:, :2], axis=0)
    radius_deg = float(np.median(np.hypot(offsets[:, 0], offsets[:, 1])))
    return float(np.radians(radius_deg) * 1000.0 / max(float(np.median(raw[:, 4])), 0.05))


def _candidates(
    points: np.ndarray, raw: np.ndarray, settings: FieldSettings, depth: int = 0
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(member indices, probabilities, sigma) of accepted clusters among ``points``.

    ``raw`` holds the same stars before rescaling. A candidate is kept when it is
    significantly denser than comparable field stars (:func:`significance`) and
    physically compact: a half-mass radius above ``max_radius_pc`` is a
    kinematic mode of the distant field population, which looks tight in
    proper motion and parallax but spreads over the whole field, not an open
    cluster (Hunt & Reffert 2023 set such extended groups apart as well).
    A rejected candidate large enough is clustered once more on its own
    (rescaled again): a compact cluster that HDBSCAN attached to a broad mode
    of the field population then separates from it.
    """
    labels, probabilities = run_hdbscan(points, settings)
    trees = FieldTrees(points)
    found, sizes = np.unique(labels[labels >= 0], return_counts=True)
    compact = np.isin(labels, found[sizes <= MAX_CLUSTER_STARS])
    accepted = []
    for label in found:
        members = labels == label
        sigma, contrast = significance(points, members, settings.min_samples, trees,
                                       others=compact & ~members)
        if (sigma >= settings.min_significance and contrast <= settings.max_contrast
                and half_mass_radius_pc(raw[members]) <= settings.max_radius_pc):
            accepted.append((np.flatnonzero(members), probabilities[members], sigma))
        elif depth == 0 and members.sum() >= 4 * settings.min_cluster_size:
            inner = np.flatnonzero(members)
            rescaled = RobustScaler().fit_transform(points[inner])
            for sub, prob, sub_sigma in _candidates(rescaled, raw[inner], settings, depth + 1):
                accepted.append((inner[sub], prob, sub_sigma))
    return accepted


def cluster_field(frame: pd.DataFrame, settings: FieldSettings) -> pd.DataFrame:
    """Cluster one field's stars; return the members of the clusters this field keeps.

    ``frame`` holds the :data:`INPUT_COLUMNS` and a constant ``field``. Rows are
    sorted by ``source_id`` first, so the result does not depend on the order
    Spark delivered them in.
    """
    if len(frame) < max(2 * settings.min_cluster_size, settings.min_samples + 2):
        return _no_members()
    frame = frame.sort_values("source_id", kind="stable").reset_index(drop=True)
    field = int(frame["field"].iloc[0])
    field_order, field_pixel = field_order_pixel(field)
    l0, b0 = mean_direction(frame["l"].to_numpy(), frame["b"].to_numpy())
    x, y = tangent_plane(frame["l"].to_numpy(), frame["b"].to_numpy(), l0, b0)
    raw = np.column_stack(
        [x, y, frame["pmra"].to_numpy(), frame["pmdec"].to_numpy(), frame["parallax"].to_numpy()]
    )
    points = RobustScaler().fit_transform(raw)
    kept = []
    ra, dec = frame["ra"].to_numpy(), frame["dec"].to_numpy()
    for label, (index, probability, sigma) in enumerate(_candidates(points, raw, settings)):
        ra_c, dec_c = mean_direction(ra[index], dec[index])
        if centre_pixel(ra_c, dec_c, field_order) != field_pixel:
            continue  # another field holds its centre and keeps it whole
        part = frame.loc[index, list(INPUT_COLUMNS)].copy()
        part.insert(0, "label", np.int32(label))
        part.insert(0, "field", np.int64(field))
        part["probability"] = probability
        part["significance"] = sigma
        kept.append(part)
    if not kept:
        return _no_members()
    return pd.concat(kept, ignore_index=True)[list(MEMBER_COLUMNS)]
