"""Engine, sessions and schema migration for the job store.

SQLite (embedded default) gets WAL mode and a busy timeout so the scheduler
thread and the request threads can write concurrently; PostgreSQL needs
nothing special. The schema is always created by running the Alembic
migrations, never by ``metadata.create_all``, so the embedded store and
production go through the same upgrade path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, *, busy_timeout_s: float = 30.0, pool_size: int = 20,
                max_overflow: int = 40, autocheckpoint: bool = True) -> Engine:
    """An engine for ``url``; SQLite files get their directory created and WAL turned on.

    SQLite only: ``busy_timeout_s`` is how long a statement waits for another connection's
    write lock before failing with "database is locked" (0: fail at once);
    ``autocheckpoint=False`` leaves WAL checkpoints to someone else (see api.store.loop).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
            pool_size=pool_size, max_overflow=max_overflow,
        )
        busy_timeout_ms = int(busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            if not autocheckpoint:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


#: The advisory lock migrations take on PostgreSQL (any constant: ours alone use it).
MIGRATION_LOCK_KEY = 0x61766970  # "avip"


def migrate(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent).

    Processes that start together (the API's replicas, the scheduler, the relay) all
    migrate: on PostgreSQL a transaction-scoped advisory lock makes them take turns, and
    DDL being transactional there, the later ones find the schema at head and do nothing."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (routes return them)."""
    return sessionmaker(engine, expire_on_commit=False)


def ping(sessions: sessionmaker[Session]) -> None:
    """One round trip to the store (readiness); raises if it does not answer."""
    with sessions() as session:
        session.execute(text("SELECT 1"))
