"""The ``avip`` command line: one Typer app, one sub-app per area.

Each area keeps its commands in its own module and is registered here with
one ``add_typer`` line, so this file stays the table of contents.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="avip",
    help="avip — a science platform for the Gaia catalogue.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

from api import cli_catalog  # noqa: E402

app.add_typer(cli_catalog.ingest_app, name="ingest")
cli_catalog.register(app)

from api import cli_avi  # noqa: E402

app.add_typer(cli_avi.avi_app, name="avi")

from api import cli_k8s  # noqa: E402

app.add_typer(cli_k8s.k8s_app, name="k8s")

from api import cli_admin, cli_demo, cli_jobs, cli_space  # noqa: E402

cli_jobs.register(app)
app.command("demo")(cli_demo.demo)
app.add_typer(cli_space.space_app, name="space")
app.add_typer(cli_admin.users_app, name="users")
app.add_typer(cli_admin.tokens_app, name="tokens")
app.add_typer(cli_admin.pools_app, name="pools")

from api import cli_alerts  # noqa: E402

app.add_typer(cli_alerts.alerts_app, name="alerts")
app.add_typer(cli_alerts.events_app, name="events")

from api import cli_zeppelin  # noqa: E402

app.add_typer(cli_zeppelin.zeppelin_app, name="zeppelin")

from api import cli_dashboards  # noqa: E402

app.command("dashboards")(cli_dashboards.dashboards)
