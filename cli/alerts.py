"""``avip alerts ...`` (simulate, filters, consume, stream) and ``avip events ...``.

Filter commands go through the REST API (:class:`api.client.AvipClient`, with
the login from ``avip login``), so a user only ever sees and consumes their
own filters. ``avip alerts stream`` runs the alert streaming job and hands it
its filters — the job store's enabled ones, re-read every micro-batch, or a
JSON file — and a callback that switches off in the store a filter Spark
cannot run. Bad input exits with code 2, a failure with 1.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import lakehouse
from cli.angles import angle_option
from cli.jobs import connect
from cli.output import fail
from config.kafka import DEAD_LETTER_TOPIC, KafkaAuth, kafka_config
from config.settings import get_settings

if TYPE_CHECKING:
    from spark_jobs.alerts.filters import AlertFilter

# confluent_kafka and the alert modules (pyspark types, fastavro) are imported inside the
# commands that use them: ~0.35 s that `avip --help` and every other command would pay.

log = logging.getLogger(__name__)
#: How long the stream waits at start for the job store to answer with its tables (the API
#: migrates it as it starts; in a deployment both start together).
STORE_WAIT_S = 120.0

alerts_app = typer.Typer(
    help="Alert streams: simulate, filter, consume, run the stream.", no_args_is_help=True
)
filters_app = typer.Typer(
    help="Your alert filters (SQL WHERE over alert + Gaia columns).", no_args_is_help=True
)
events_app = typer.Typer(help="Job events on Kafka.", no_args_is_help=True)
alerts_app.add_typer(filters_app, name="filters")


def _bootstrap(option: str | None = None, *, has_option: bool = False) -> str:
    """The Kafka bootstrap servers: a command's ``--bootstrap``, else the settings'."""
    bootstrap = option or get_settings().kafka_bootstrap
    if not bootstrap:
        how = "pass --bootstrap HOST:PORT or set" if has_option else "set"
        raise fail(f"no Kafka configured: {how} AVIP_KAFKA_BOOTSTRAP=host:port")
    return bootstrap


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
    # The simulator's catalogue reads and sky geometry (Spark SQL, astropy): ~2 s to import,
    # paid by this command, not by every `avip` command.
    from confluent_kafka import Producer

    from spark_jobs.alerts import simulate

    settings = get_settings()
    bootstrap = _bootstrap()
    topic = topic or settings.alerts_raw_topic
    stars = None
    pointings = [(float(180 * (seed % 2)), -30.0)]
    if not no_gaia:
        try:
            stars = simulate.gaia_stars_from_lakehouse(seed=seed, settings=settings)
        except (ValueError, FileNotFoundError) as err:
            raise fail(f"{err} (or pass --no-gaia)") from None
        pointings = simulate.pointings_on(stars, visits, seed)
    sim = simulate.RubinSimulator(stars=stars, seed=seed)
    producer = Producer(kafka_config(bootstrap, settings.kafka_auth, linger_ms=20))
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
    with connect() as client:
        f = client.create_alert_filter(name, where, output_format=output_format)
    typer.echo(f"filter {f.name} (id {f.id}) → topic {f.topic}")


@filters_app.command("list")
def filters_list() -> None:
    with connect() as client:
        listing = client.alert_filters()
    for f in listing.data:
        state = "on " if f.enabled else "off"
        typer.echo(f"{f.id:>5} {state} {f.name:<24} {f.output_format:<5} {f.where}")
        if f.disabled_reason:
            typer.echo(f"      switched off by the stream: {f.disabled_reason}")


@filters_app.command("enable")
def filters_enable(name: str) -> None:
    with connect() as client:
        f = client.enable_alert_filter(name)
    typer.echo(f"filter {f.name} is on")


@filters_app.command("disable")
def filters_disable(name: str) -> None:
    with connect() as client:
        f = client.disable_alert_filter(name)
    typer.echo(f"filter {f.name} is off")


@filters_app.command("delete")
def filters_delete(name: str) -> None:
    with connect() as client:
        client.delete_alert_filter(name)
    typer.echo(f"filter {name} deleted")


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
    """Print the matches of one of your filters (JSON lines), with your own Kafka
    credentials (AVIP_KAFKA_USERNAME/PASSWORD, from your operator's `avip kafka user`)."""
    import uuid

    from spark_jobs.alerts.consumer import consume

    with connect() as client:
        topic = client.alert_filter(filter_name).topic  # 404 unless it is yours
    # The broker lets a user join only groups named after their own topics.
    group_id = f"{topic}.{group}" if group else f"{topic}.reader-{uuid.uuid4().hex[:12]}"
    for msg in consume(
        _bootstrap(),
        topic,
        group_id=group_id,
        max_messages=max_messages,
        idle_timeout_s=idle_timeout_s,
        auth=get_settings().kafka_auth,
        keep_position=group is not None,
    ):
        typer.echo(json.dumps(msg.value, default=str))


# -- the alert stream -----------------------------------------------------------


def _json_filters(path: Path) -> Callable[[], Sequence[AlertFilter]]:
    """Filters from a JSON file (re-read every micro-batch), checked once now."""
    from spark_jobs.alerts.filters import filters_from_json

    source = filters_from_json(str(path))
    try:
        source()
    except (OSError, ValueError, KeyError, TypeError) as err:  # FilterError is a ValueError
        raise fail(f"--filters-json {path}: {type(err).__name__}: {err}") from None
    return source


def _store_filters(
    store_url: str,
) -> tuple[Callable[[], Sequence[AlertFilter]], Callable[[AlertFilter, str], None]]:
    """The job store's enabled filters (re-read every micro-batch), and the callback that
    switches off a filter the stream cannot run: its owner sees it disabled and can fix
    and re-enable it; the reason goes to this process's log (the store keeps none yet)."""
    # SQLAlchemy and Alembic cost ~1 s to import; only the stream reads the store directly.
    from sqlalchemy.exc import SQLAlchemyError

    from api.db import make_engine, session_factory
    from api.store import alert_filters as filter_store

    sessions = session_factory(make_engine(store_url))

    def load() -> list[AlertFilter]:
        with sessions() as session:
            return filter_store.enabled_filters(session)

    def on_disabled(f: AlertFilter, reason: str) -> None:
        with sessions() as session:
            row = filter_store.disable_unrunnable(
                session, filter_id=f.filter_id, owner=f.owner, spark_sql=f.spark_sql,
                reason=reason,
            )
            session.commit()
        if row is None:
            log.warning("filter %s/%s cannot run (%s); it changed or was deleted since, so it "
                        "stays as it is", f.owner, f.name, reason)  # fmt: skip
        else:
            log.error("filter %s/%s (id %d) cannot run; disabled in the job store: %s",
                      f.owner, f.name, f.filter_id, reason)  # fmt: skip

    deadline = time.monotonic() + STORE_WAIT_S
    while True:  # started with the API, the stream may come up before the store is migrated
        try:
            load()
            break
        except SQLAlchemyError as err:
            message = str(err).splitlines()[0]
            if time.monotonic() > deadline:
                raise fail(f"cannot read the alert filters from the job store: {message}",
                           1) from None
            log.warning("the job store is not ready (%s); trying again", message)
            time.sleep(2.0)
    return load, on_disabled


@alerts_app.command("stream")
def stream_command(
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint directory: a path, file://, s3a:// or s3:// (keep it: "
            "it holds the stream's position; default: settings' alerts_checkpoint)."
        ),
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers (default: settings).")
    ] = None,
    filters_json: Annotated[
        Path | None,
        typer.Option(
            help="Filters from this JSON list of {owner, name, where, output_format?, "
            "enabled?} (default: the job store's enabled filters)."
        ),
    ] = None,
    raw_topic: Annotated[
        str | None, typer.Option(help="Raw alert topic (default: settings).")
    ] = None,
    dead_letter_topic: Annotated[
        str, typer.Option(help="Where undecodable packets go, with the reason.")
    ] = DEAD_LETTER_TOPIC,
    radius_arcsec: Annotated[
        float, angle_option("arcsec", "Gaia match radius.", "--radius-arcsec", "--radius")
    ] = 5.0,
    max_offsets: Annotated[int, typer.Option(help="Most raw alerts per micro-batch.")] = 20_000,
    lakehouse_root: Annotated[
        str | None, typer.Option("--lakehouse", help="Catalogue root (default: settings).")
    ] = None,
    no_gaia: Annotated[bool, typer.Option("--no-gaia", help="Skip the Gaia annotation.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Process what is there, then stop.")] = False,
    master: Annotated[str | None, typer.Option(help="Spark master (default: settings).")] = None,
    probes_port: Annotated[int, typer.Option(
        help="Port of /healthz, /readyz and /metrics (0: none).")] = 8768,
    probes_host: Annotated[str, typer.Option(help="Address of the probes.")] = "127.0.0.1",
) -> None:
    """Run the alert stream: raw topic → decode → Gaia annotation → filters → their topics."""
    # The stream job (Spark SQL and streaming, delta-rs, astropy): ~2 s to import, paid by
    # this command, not by every `avip` command.
    from spark_jobs.alerts.stream import AlertStream, StreamConfig, log_disabled

    settings = get_settings()
    checkpoint = checkpoint or settings.alerts_checkpoint
    if not checkpoint:
        raise fail("the stream needs a checkpoint: pass --checkpoint DIR or set "
                   "AVIP_ALERTS_CHECKPOINT (s3a://bucket/path on a cluster)")
    try:
        config = StreamConfig(
            bootstrap=_bootstrap(bootstrap, has_option=True),
            checkpoint_dir=checkpoint,
            auth=settings.kafka_auth,
            raw_topic=raw_topic or settings.alerts_raw_topic,
            dead_letter_topic=dead_letter_topic,
            radius_arcsec=radius_arcsec,
            max_offsets_per_trigger=max_offsets,
        )
    except ValueError as err:
        raise fail(str(err)) from None  # before Spark starts
    if filters_json is not None:  # a file's filter that Spark cannot run is only logged
        source, on_disabled = _json_filters(filters_json), log_disabled
    else:
        source, on_disabled = _store_filters(settings.store_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spark = lakehouse.get_spark(master, app_name="avip-alerts", settings=settings)
    catalog = None
    if not no_gaia:
        try:
            catalog = lakehouse.open_catalog(lakehouse_root, spark=spark, settings=settings)
        except (ValueError, FileNotFoundError) as err:
            raise fail(f"{err} (or pass --no-gaia)") from None
    disabled = [0]

    def counted(f: AlertFilter, reason: str) -> None:
        on_disabled(f, reason)
        disabled[0] += 1

    job = AlertStream(spark, config, source, catalog, on_disabled=counted, settings=settings)
    probes = None
    if probes_port:
        from prometheus_client import CollectorRegistry

        from api.routes.health import check
        from cli.probes import StreamCollector, serve_probes

        registry = CollectorRegistry()
        registry.register(StreamCollector(lambda: job.stats, lambda: disabled[0]))
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        probes = serve_probes(registry, lambda: {"kafka": check(
            lambda: _kafka_reachable(config.bootstrap, config.auth))}, host=probes_host,
            port=probes_port, token=token)
    query = job.start(available_now=once)
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    finally:
        job.close()
        if probes is not None:
            probes.shutdown()
            probes.server_close()


# -- job events -----------------------------------------------------------------


@events_app.command("tail")
def events_tail(
    from_beginning: bool = False,
    idle_timeout_s: Annotated[float | None, typer.Option(help="Stop after this long idle.")] = None,
) -> None:
    """Follow job events on the events topic (duplicates dropped by event id)."""
    from api.events_relay import tail  # SQLAlchemy (the outbox's models): ~1 s to import

    settings = get_settings()
    for event in tail(
        _bootstrap(),
        settings.events_topic,
        from_beginning=from_beginning,
        idle_timeout_s=idle_timeout_s,
        auth=settings.kafka_auth,
    ):
        typer.echo(json.dumps(event))


@events_app.command("relay")
def events_relay_command(
    probes_port: Annotated[int, typer.Option(
        help="Port of /healthz, /readyz and /metrics (0: none).")] = 8767,
    probes_host: Annotated[str, typer.Option(help="Address of the probes.")] = "127.0.0.1",
) -> None:
    """Run the outbox relay (publishes unpublished job events until interrupted)."""
    # The job store (SQLAlchemy, Alembic): ~1 s to import, for the commands that open it.
    from prometheus_client import CollectorRegistry

    from api.db import make_engine, ping, session_factory
    from api.events_relay import EventRelay
    from api.metrics import StoreCollector
    from api.routes.health import check
    from cli.probes import RelayCollector, serve_probes

    settings = get_settings()
    sessions = session_factory(make_engine(settings.store_url))
    bootstrap = _bootstrap()
    relay = EventRelay(sessions, bootstrap, settings.events_topic, auth=settings.kafka_auth)
    probes = None
    if probes_port:
        registry = CollectorRegistry()
        registry.register(StoreCollector(sessions))
        registry.register(RelayCollector(lambda: relay.published_total))

        def ready() -> dict[str, str]:
            return {"store": check(lambda: ping(sessions)),
                    "kafka": check(lambda: _kafka_reachable(bootstrap, settings.kafka_auth))}

        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        probes = serve_probes(registry, ready, host=probes_host, port=probes_port, token=token)
    try:
        relay.run()
    except KeyboardInterrupt:
        pass
    finally:
        if probes is not None:
            probes.shutdown()
            probes.server_close()


def _kafka_reachable(bootstrap: str, auth: KafkaAuth | None, timeout_s: float = 3.0) -> None:
    """One metadata round trip, authenticated as the process itself (wrong credentials
    make the probe fail, naming the broker's answer)."""
    from confluent_kafka.admin import AdminClient

    AdminClient(kafka_config(bootstrap, auth)).list_topics(timeout=timeout_s)
