"""``avip alerts ...`` (simulate, filters, consume) and ``avip events tail``.

Filter commands go through the REST API with the token from ``avip login``,
so a user only ever sees and consumes their own filters.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from config.settings import get_settings

alerts_app = typer.Typer(help="Alert streams: simulate, filter, consume.", no_args_is_help=True)
filters_app = typer.Typer(
    help="Your alert filters (SQL WHERE over alert + Gaia columns).", no_args_is_help=True
)
events_app = typer.Typer(help="Job events on Kafka.", no_args_is_help=True)
alerts_app.add_typer(filters_app, name="filters")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _bootstrap() -> str:
    bootstrap = get_settings().kafka_bootstrap
    if not bootstrap:
        raise _fail("no Kafka configured: set AVIP_KAFKA_BOOTSTRAP=host:port")
    return bootstrap


def _api(method: str, path: str, body: Any = None) -> Any:
    from api.client import ApiError, AvipClient, format_detail
    from cli.jobs import read_config

    config = read_config()
    with AvipClient(config.get("url", get_settings().api_url), config.get("token")) as client:
        try:
            response = client._request(method, path, json=body)
        except ApiError as err:
            raise _fail(format_detail(err.detail)) from None
    return None if response.status_code == 204 else response.json()


@alerts_app.command("simulate")
def simulate_command(
    visits: Annotated[int, typer.Option(min=1, help="Number of visits.")] = 1,
    alerts_per_visit: Annotated[int, typer.Option(min=1, max=100_000)] = 10_000,
    topic: Annotated[str | None, typer.Option(help="Raw topic (default: settings).")] = None,
    seed: int = 0,
    no_gaia: Annotated[bool, typer.Option(help="Random positions only (no lakehouse).")] = False,
    pause_s: Annotated[float, typer.Option(help="Seconds between visits.")] = 0.0,
) -> None:
    """Produce Rubin alert bursts, part of them on catalogue stars."""
    from confluent_kafka import Producer

    from spark_jobs.alerts import simulate

    bootstrap = _bootstrap()
    topic = topic or get_settings().alerts_raw_topic
    stars = None
    pointings = [(float(180 * (seed % 2)), -30.0)]
    if not no_gaia:
        try:
            stars = simulate.gaia_stars_from_lakehouse(seed=seed)
        except (ValueError, FileNotFoundError) as err:
            raise _fail(f"{err} (or pass --no-gaia)") from None
        pointings = simulate.pointings_on(stars, visits, seed)
    sim = simulate.RubinSimulator(stars=stars, seed=seed)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for plan in simulate.plan_night(visits, pointings, alerts_per_visit, seed):
        started = time.monotonic()
        for key, value in simulate.encode_visit(sim, plan):
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(60)
        typer.echo(
            f"visit {plan.visit}: {plan.n_alerts} alerts at ({plan.ra_deg:.3f}, "
            f"{plan.dec_deg:.3f}) in {time.monotonic() - started:.1f}s → {topic}"
        )
        time.sleep(pause_s)


@filters_app.command("create")
def filters_create(
    name: str, where: str, output_format: Annotated[str, typer.Option("--format")] = "json"
) -> None:
    """Create a filter: avip alerts filters create NAME "diaSource.psfFlux > 1000 AND ..."."""
    f = _api(
        "POST", "/alert-filters", {"name": name, "where": where, "output_format": output_format}
    )
    typer.echo(f"filter {f['name']} (id {f['id']}) → topic {f['topic']}")


@filters_app.command("list")
def filters_list() -> None:
    for f in _api("GET", "/alert-filters")["data"]:
        state = "on " if f["enabled"] else "off"
        typer.echo(f"{f['id']:>5} {state} {f['name']:<24} {f['output_format']:<5} {f['where']}")


@filters_app.command("enable")
def filters_enable(name: str) -> None:
    _api("PATCH", f"/alert-filters/{name}", {"enabled": True})


@filters_app.command("disable")
def filters_disable(name: str) -> None:
    _api("PATCH", f"/alert-filters/{name}", {"enabled": False})


@filters_app.command("delete")
def filters_delete(name: str) -> None:
    _api("DELETE", f"/alert-filters/{name}")


@filters_app.command("columns")
def filters_columns() -> None:
    """Columns a filter may use (no login needed)."""
    from spark_jobs.alerts.rows import filter_columns

    for name, t in filter_columns().items():
        typer.echo(f"{name:<48} {t.simpleString()}")


@alerts_app.command("consume")
def consume_command(
    filter_name: Annotated[str, typer.Argument(metavar="FILTER")],
    max_messages: Annotated[int | None, typer.Option(min=1)] = None,
    idle_timeout_s: float = 10.0,
    group: Annotated[str | None, typer.Option(help="Consumer group to resume from.")] = None,
) -> None:
    """Print the matches of one of your filters (JSON lines)."""
    from spark_jobs.alerts.consumer import consume

    f = _api("GET", f"/alert-filters/{filter_name}")  # 404 unless it is yours
    for msg in consume(
        _bootstrap(),
        f["topic"],
        group_id=group,
        max_messages=max_messages,
        idle_timeout_s=idle_timeout_s,
    ):
        typer.echo(json.dumps(msg.value, default=str))


@events_app.command("tail")
def events_tail(
    from_beginning: bool = False,
    idle_timeout_s: Annotated[float | None, typer.Option(help="Stop after this long idle.")] = None,
) -> None:
    """Follow job events on the events topic (duplicates dropped by event id)."""
    from api.events_relay import tail

    settings = get_settings()
    for event in tail(
        _bootstrap(),
        settings.events_topic,
        from_beginning=from_beginning,
        idle_timeout_s=idle_timeout_s,
    ):
        typer.echo(json.dumps(event))


@events_app.command("relay")
def events_relay_command() -> None:
    """Run the outbox relay (publishes unpublished job events until interrupted)."""
    from api.db import make_engine, session_factory
    from api.events_relay import EventRelay

    settings = get_settings()
    relay = EventRelay(
        session_factory(make_engine(settings.store_url)), _bootstrap(), settings.events_topic
    )
    try:
        relay.run()
    except KeyboardInterrupt:
        pass
