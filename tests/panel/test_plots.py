"""A million points become one fixed-size image on the server, with every point counted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from panel_apps.plots import RASTER_HEIGHT, RASTER_WIDTH, sky_density


def test_a_million_points_ship_as_one_small_image_that_counts_them_all() -> None:
    import holoviews as hv
    from bokeh.models import ColumnDataSource, GlyphRenderer, Image

    rng = np.random.default_rng(3)
    n = 1_000_000
    frame = pd.DataFrame({"ra": rng.uniform(50, 60, n), "dec": rng.normal(24, 1, n)})
    plot = hv.render(sky_density(frame), backend="bokeh")
    images = [r for r in plot.select(GlyphRenderer) if isinstance(r.glyph, Image)]
    assert len(images) == 1
    image = np.asarray(images[0].data_source.data["image"][0])
    assert image.shape == (RASTER_HEIGHT, RASTER_WIDTH)
    assert np.nansum(image) == n  # every point lands in some pixel, none is shipped itself
    shipped = sum(np.asarray(v).size for s in plot.select(ColumnDataSource)
                  for v in s.data.values())
    assert shipped < 2 * RASTER_WIDTH * RASTER_HEIGHT < n
    assert plot.x_range.start > plot.x_range.end  # RA grows to the left, as on the sky
