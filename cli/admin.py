"""Operator commands: ``avip users``, ``avip tokens``, ``avip pools``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.schemas import QuotaPublic
from cli.jobs import connect
from cli.output import console

users_app = typer.Typer(help="Operator: create, list and change users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Operator: issue, list and revoke tokens.", no_args_is_help=True)
pools_app = typer.Typer(help="Operator: show and set users' pools.", no_args_is_help=True)


@users_app.command("list")
def users_list() -> None:
    with connect() as client:
        listing = client.users()
    table = Table("name", "roles", "groups", "disabled")
    for user in listing.data:
        table.add_row(user.name, ",".join(user.roles), ",".join(user.groups), str(user.disabled))
    console.print(table)


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="operator, developer, scientist, "
                                            "outreach or anonymous; repeatable.")],
    group: Annotated[list[str] | None, typer.Option("--group", help="Repeatable.")] = None,
    token: Annotated[bool, typer.Option(help="Also issue a token and print it.")] = True,
) -> None:
    """Create a user (and, by default, their first token)."""
    with connect() as client:
        user = client.create_user(name, role, group or [])
        console.print(f"created {user.name} ({', '.join(user.roles)})")
        if token:
            issued = client.issue_token(name, label="created with the user")
            typer.echo(issued.token)


@users_app.command("disable")
def users_disable(name: str, enable: Annotated[bool, typer.Option(help="Re-enable.")] = False,
                  ) -> None:
    with connect() as client:
        user = client.update_user(name, disabled=not enable)
    console.print(f"{user.name}: {'disabled' if user.disabled else 'enabled'}")


@tokens_app.command("issue")
def tokens_issue(
    user: str, label: str = "",
    ttl_days: Annotated[int | None, typer.Option(min=1, help="Lifetime in days.")] = None,
) -> None:
    """Issue a token; it is printed once."""
    with connect() as client:
        issued = client.issue_token(user, label, ttl_days)
    typer.echo(issued.token)


@tokens_app.command("list")
def tokens_list(user: str) -> None:
    with connect() as client:
        listing = client.tokens(user)
    table = Table("id", "label", "created", "expires", "revoked")
    for t in listing.data:
        table.add_row(str(t.id), t.label, str(t.created_at), str(t.expires_at or ""),
                      str(t.revoked_at or ""))
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(user: str, token_id: int) -> None:
    with connect() as client:
        client.revoke_token(user, token_id)
    console.print(f"revoked token {token_id} of {user}")


@pools_app.command("list")
def pools_list() -> None:
    """Effective pools of every user, and the cluster's capacity."""
    with connect() as client:
        pools = client.pools()
    table = Table("user", "roles", "cores", "memory MB", "jobs", "space bytes", "set by")
    for p in pools.data:
        q = p.quota
        table.add_row(p.user, ",".join(p.roles), str(q.cores), str(q.memory_mb),
                      str(q.max_jobs), f"{q.space_bytes:,d}",
                      "operator" if p.overridden else "role")
    console.print(table)
    console.print(f"cluster: {pools.cluster_cores} cores, {pools.cluster_memory_mb} MB")


@pools_app.command("set")
def pools_set(
    user: str,
    cores: Annotated[int, typer.Option(min=0)],
    memory_mb: Annotated[int, typer.Option(min=0)],
    max_jobs: Annotated[int, typer.Option(min=0)],
    space_bytes: Annotated[int, typer.Option(min=0)],
) -> None:
    """Replace a user's role-default pool."""
    with connect() as client:
        client.set_pool(user, QuotaPublic(cores=cores, memory_mb=memory_mb, max_jobs=max_jobs,
                                          space_bytes=space_bytes))
    console.print(f"pool of {user} set")


@pools_app.command("reset")
def pools_reset(user: str) -> None:
    """Go back to the role default."""
    with connect() as client:
        client.clear_pool(user)
    console.print(f"pool of {user} back to its role default")


@users_app.command("usage")
def users_usage() -> None:
    """What every user holds now: jobs waiting and running, cores and memory (operators)."""
    with connect() as client:
        rows = client.usage().data
    table = Table("user", "queued", "running", "cores", "memory MB")
    for row in rows:
        table.add_row(row.user, str(row.queued_jobs), str(row.running_jobs),
                      str(row.running_cores), str(row.running_memory_mb))
    console.print(table)
