"""``avip dashboards``: serve the Panel dashboards, which talk to the API over REST."""

from __future__ import annotations

from typing import Annotated

import typer

from config.settings import get_settings


def dashboards(
    address: Annotated[str, typer.Option(help="Bind address (loopback by default).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the dashboards.")] = 5006,
    api_url: Annotated[str | None, typer.Option(help="The API (default: settings api_url).")]
    = None,
    allow_origin: Annotated[list[str] | None, typer.Option(
        help="A host[:port] browsers reach the dashboards by (repeatable; default: settings "
        "dashboards_origins).")] = None,
) -> None:
    """Serve the dashboards (sign-in, gallery, jobs, results, space, presets) until Ctrl-C."""
    from panel_apps.app import serve  # Panel + Bokeh + HoloViews: seconds, only here

    settings = get_settings()
    url = api_url or settings.api_url
    typer.echo(f"dashboards on http://{address}:{port}/ using the API at {url}")
    serve(url, address=address, port=port, cache_root=settings.data_dir / "panel-cache",
          allowed_origins=allow_origin or settings.dashboards_origins)
