"""The cluster finder's result view: cluster table, sky map and proper-motion diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from avi_plugins.bundled.views import figure, figure_pane, table_pane


def cluster_view(result_dir: Path) -> Any:
    """Panel layout of a cluster_finder result folder."""
    import panel as pn

    clusters = pd.read_parquet(result_dir / "clusters.parquet")
    members = pd.read_parquet(result_dir / "members.parquet")
    sky_fig, sky = figure()
    sky.scatter(members["l"], members["b"], c=members["cluster_id"], s=2, cmap="tab20")
    sky.set_xlabel("l [deg]")
    sky.set_ylabel("b [deg]")
    sky.invert_xaxis()
    pm_fig, pm = figure()
    pm.scatter(members["pmra"], members["pmdec"], c=members["cluster_id"], s=2, cmap="tab20")
    pm.set_xlabel("pmra [mas/yr]")
    pm.set_ylabel("pmdec [mas/yr]")
    return pn.Column(
        f"## Open clusters: {len(clusters)} found, {len(members)} members",
        table_pane(clusters, "Clusters"),
        pn.Row(figure_pane(sky_fig, "Members on the sky"),
               figure_pane(pm_fig, "Proper motions")),
    )
