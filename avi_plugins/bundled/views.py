"""Small Panel building blocks shared by the bundled AVIs' result views.

Imports of Panel and matplotlib happen inside the functions so that loading
an AVI (for listing or running it) never pays for the plotting stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def figure(width_in: float = 8.0, height_in: float = 5.0, **subplot_kw: Any) -> tuple[Any, Any]:
    """A matplotlib Figure not attached to pyplot's global state (safe in servers)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    return fig, fig.add_subplot(1, 1, 1, **subplot_kw)


def save_png(fig: Any, path: Path) -> Path:
    """Save a figure as PNG without timestamps, so reruns give the same bytes."""
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def table_pane(frame: pd.DataFrame, title: str) -> Any:
    import panel as pn

    return pn.Column(f"### {title}", pn.widgets.Tabulator(frame, pagination="remote",
                                                           page_size=20, disabled=True))


def image_pane(path: Path, title: str) -> Any:
    import panel as pn

    return pn.Column(f"### {title}", pn.pane.PNG(str(path), sizing_mode="scale_width"))


def figure_pane(fig: Any, title: str) -> Any:
    import panel as pn

    return pn.Column(f"### {title}", pn.pane.Matplotlib(fig, tight=True, dpi=100))
