"""The ``avip`` command line: one Typer app, one sub-app per area.

Each area keeps its commands in its own module of this package and is
registered here with one line, so this file stays the table of contents.
"""

from __future__ import annotations

import typer

from cli import (
    admin,
    alerts,
    avi,
    catalog,
    dashboards,
    demo,
    jobs,
    k8s,
    kafka,
    samp,
    service,
    space,
    zeppelin,
)

app = typer.Typer(
    name="avip",
    help="avip — a science platform for the Gaia catalogue.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.add_typer(catalog.ingest_app, name="ingest")
catalog.register(app)
app.add_typer(avi.avi_app, name="avi")
app.add_typer(k8s.k8s_app, name="k8s")
jobs.register(app)
service.register(app)
app.command("demo")(demo.demo)
app.add_typer(space.space_app, name="space")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.tokens_app, name="tokens")
app.add_typer(admin.pools_app, name="pools")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(alerts.events_app, name="events")
app.add_typer(kafka.kafka_app, name="kafka")
app.add_typer(zeppelin.zeppelin_app, name="zeppelin")
app.add_typer(samp.samp_app, name="samp")
app.command("dashboards")(dashboards.dashboards)
