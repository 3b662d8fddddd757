"""Plots of large point sets, rasterized on the server (HoloViews + Datashader).

The browser receives a fixed-size image whatever the number of points, and a
zoom asks the server for a new image of the visible range: a million-star
result never travels to the browser as points.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

RASTER_WIDTH = 500
RASTER_HEIGHT = 350


def rasterized_points(frame: pd.DataFrame, x: str, y: str, *, width: int = RASTER_WIDTH,
                      height: int = RASTER_HEIGHT, invert_x: bool = False,
                      invert_y: bool = False) -> Any:
    """A HoloViews DynamicMap: counts of ``frame`` points per pixel, re-rasterized on zoom."""
    import holoviews as hv
    from holoviews.operation.datashader import rasterize

    hv.extension("bokeh", logo=False) if not hv.Store.renderers else None
    points = hv.Points(frame[[x, y]], kdims=[x, y])
    return rasterize(points, width=width, height=height, dynamic=True).opts(
        cmap="viridis", cnorm="eq_hist", colorbar=True, tools=["hover"], width=width,
        height=height, invert_xaxis=invert_x, invert_yaxis=invert_y, clabel="sources",
    )


def sky_density(frame: pd.DataFrame) -> Any:
    """RA/Dec density with RA increasing to the left, as on the sky."""
    return rasterized_points(frame, "ra", "dec", invert_x=True)


def cmd_density(frame: pd.DataFrame, colour: str = "bp_rp", magnitude: str = "phot_g_mean_mag",
                ) -> Any:
    """Colour-magnitude density with bright stars at the top."""
    return rasterized_points(frame, colour, magnitude, invert_y=True)
