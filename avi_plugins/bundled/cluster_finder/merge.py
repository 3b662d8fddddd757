"""Merging clusters found in more than one field, and summarising the survivors.

A cluster straddling a pixel edge can be kept by two neighbouring fields when
its centre, estimated from slightly different member sets, falls on each
side. Candidates sharing at least ``overlap`` of the smaller one's members
are one cluster (union-find over shared members); their members are united
and each star keeps its highest membership probability. Cluster numbers are
assigned in order of each cluster's smallest ``source_id`` so they do not
depend on which Spark task finished first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from avi_plugins.bundled.cluster_finder.fields import mean_direction
from lakehouse.regions import angular_distance_deg


def _find(parent: dict[int, int], item: int) -> int:
    while parent[item] != item:
        parent[item] = parent[parent[item]]
        item = parent[item]
    return item


def merge_candidates(members: pd.DataFrame, overlap: float = 0.5) -> pd.DataFrame:
    """Give each member row a final ``cluster_id``; duplicates across fields collapse.

    ``members`` has one row per (field, label, source_id). Returns one row per
    (cluster_id, source_id), sorted by both.
    """
    if members.empty:
        return members.assign(cluster_id=pd.Series(dtype="int64")).drop(columns=["field", "label"])
    members = members.sort_values(["field", "label", "source_id"], kind="stable")
    keys = members["field"].to_numpy() * 1_000_000 + members["label"].to_numpy()
    members = members.assign(candidate=keys)
    sizes = members.groupby("candidate").size()
    parent = {int(c): int(c) for c in sizes.index}
    shared = members[members.duplicated("source_id", keep=False)]
    pairs = shared.merge(shared, on="source_id")[["candidate_x", "candidate_y"]]
    pairs = pairs[pairs["candidate_x"] < pairs["candidate_y"]]
    counts = pairs.value_counts()
    for (a, b), n in sorted(counts.items()):
        if n >= overlap * min(sizes[a], sizes[b]):
            root_a, root_b = _find(parent, int(a)), _find(parent, int(b))
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
    members["root"] = [_find(parent, int(c)) for c in members["candidate"]]
    # a star keeps its most probable membership (within and across clusters)
    members = members.sort_values(["source_id", "probability", "root"],
                                  ascending=[True, False, True], kind="stable")
    members = members.drop_duplicates("source_id", keep="first")
    order = members.groupby("root")["source_id"].min().sort_values(kind="stable")
    numbering = pd.Series(np.arange(1, len(order) + 1, dtype=np.int64), index=order.index)
    members["cluster_id"] = members["root"].map(numbering).astype("int64")
    significance = members.groupby("cluster_id")["significance"].transform("max")
    members["significance"] = significance
    out = members.drop(columns=["candidate", "root", "label", "field"])
    return out.sort_values(["cluster_id", "source_id"], kind="stable").reset_index(drop=True)


def summarise(members: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster: size, centre, mean and spread of astrometry, radius."""
    rows = []
    for cluster_id, group in members.groupby("cluster_id", sort=True):
        ra, dec = mean_direction(group["ra"].to_numpy(), group["dec"].to_numpy())
        lon, lat = mean_direction(group["l"].to_numpy(), group["b"].to_numpy())
        sep = angular_distance_deg(group["ra"].to_numpy(), group["dec"].to_numpy(), ra, dec)
        rows.append({
            "cluster_id": int(cluster_id),
            "n_members": len(group),
            "ra": ra, "dec": dec, "l": lon, "b": lat,
            "radius_deg": float(np.median(sep)),
            "pmra": float(group["pmra"].mean()), "pmra_std": float(group["pmra"].std(ddof=0)),
            "pmdec": float(group["pmdec"].mean()),
            "pmdec_std": float(group["pmdec"].std(ddof=0)),
            "parallax": float(group["parallax"].mean()),
            "parallax_std": float(group["parallax"].std(ddof=0)),
            "significance": float(group["significance"].max()),
        })
    columns = ["cluster_id", "n_members", "ra", "dec", "l", "b", "radius_deg", "pmra", "pmra_std",
               "pmdec", "pmdec_std", "parallax", "parallax_std", "significance"]
    return pd.DataFrame(rows, columns=columns)

