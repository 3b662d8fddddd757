"""``avip kafka ...``: the operator's Kafka principals and ACLs (config/kafka_access.py).

    avip kafka services [--relay-password P] [--stream-password P]
    avip kafka user NAME [--password P]

Both run with the operator's own Kafka credentials (``AVIP_KAFKA_USERNAME=admin``, the
broker's super user). A password that is not given is generated and printed once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.output import fail
from config.names import USER_NAME
from config.settings import get_settings

kafka_app = typer.Typer(help="Operator: Kafka principals and their ACLs.",
                        no_args_is_help=True)

Password = Annotated[str | None, typer.Option(help="Set this password (default: generate).")]


def _admin():  # type: ignore[no-untyped-def]
    # confluent_kafka: imported by the commands that talk to the broker only.
    from confluent_kafka.admin import AdminClient

    from config.kafka import kafka_config

    settings = get_settings()
    if not settings.kafka_bootstrap:
        raise fail("no Kafka configured: set AVIP_KAFKA_BOOTSTRAP=host:port")
    return settings, AdminClient(kafka_config(settings.kafka_bootstrap, settings.kafka_auth))


def _run(action):  # type: ignore[no-untyped-def]
    from confluent_kafka import KafkaException

    try:
        return action()
    except KafkaException as error:
        raise fail(f"the broker refused: {error.args[0]} (run this with the operator's "
                   "Kafka credentials: AVIP_KAFKA_USERNAME / AVIP_KAFKA_PASSWORD)") from None


@kafka_app.command("services")
def services_command(relay_password: Password = None, stream_password: Password = None) -> None:
    """Give the relay and the alert stream their principals (avip-relay, avip-stream) and
    exactly the ACLs their code needs."""
    from config import kafka_access as access
    from config.kafka import COMMIT_TOPIC, DEAD_LETTER_TOPIC

    settings, admin = _admin()
    acls = [*access.relay_acls(settings.events_topic),
            *access.stream_acls(settings.alerts_raw_topic, DEAD_LETTER_TOPIC, COMMIT_TOPIC,
                                settings.alerts_filter_topic_prefix)]
    for principal, given in ((access.RELAY_PRINCIPAL, relay_password),
                             (access.STREAM_PRINCIPAL, stream_password)):
        password = _run(lambda p=principal, g=given: access.set_password(admin, p, g))
        if given is None:
            typer.echo(f"{principal}: AVIP_KAFKA_PASSWORD={password}")
    count = _run(lambda: access.apply_acls(admin, acls))
    typer.echo(f"{count} ACLs for {access.RELAY_PRINCIPAL} and {access.STREAM_PRINCIPAL}")


@kafka_app.command("user")
def user_command(
    name: Annotated[str, typer.Argument(help="The platform user (their login name).")],
    password: Password = None,
) -> None:
    """Give a user Kafka credentials that read their own filters' topics and nothing else."""
    from config import kafka_access as access

    if not USER_NAME.match(name):
        raise fail(f"{name!r} is not a user name (a-z, 0-9, _ and -, starting with a letter)")
    if name in access.RESERVED_PRINCIPALS:
        raise fail(f"{name!r} is one of the broker's own principals "
                   f"({', '.join(sorted(access.RESERVED_PRINCIPALS))}); a user cannot have it")
    settings, admin = _admin()
    secret = _run(lambda: access.set_password(admin, name, password))
    _run(lambda: access.apply_acls(admin, access.user_acls(
        name, settings.alerts_filter_topic_prefix)))
    prefix = access.user_topic_prefix(settings.alerts_filter_topic_prefix, name)
    typer.echo(f"# {name} reads topics {prefix}* (their filters); give them:")
    typer.echo(f"AVIP_KAFKA_USERNAME={name}")
    if password is None:
        typer.echo(f"AVIP_KAFKA_PASSWORD={secret}")
