"""The embedded SQLite store used straight from the event loop, for the hot routes.

Why: SQLite is a library inside this process, so a poll or a submission is
~0.1-0.5 ms of CPU under the GIL — less than handing it to a worker thread
and back, and on a busy machine every such hand-off also waits for the GIL
and the OS scheduler. So the hot routes (see :func:`api.deps.run_store`) run
their store work on the loop, through connections of their own that:

* never wait for a lock (busy timeout 0): when another connection (the
  scheduler thread, a CLI, a sync route) holds the write lock, "database is
  locked" comes at once and the work is redone in a worker thread, where
  writes queue on :attr:`LoopStore.write_limiter`, one at a time, rather than
  sleeping in SQLite's busy handler (1, 2, 5 ... 100 ms steps however soon
  the lock frees);
* never checkpoint the WAL themselves (a checkpoint writes pages back and
  fsyncs, milliseconds to tens of ms on a shared disk): :meth:`LoopStore.checkpoint_every`
  does it in a worker thread, PASSIVE (it never blocks a writer).

PostgreSQL has none of this: its routes do their store work in one worker
thread hop (network round trips must not stall the loop).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import anyio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, session_factory

log = logging.getLogger(__name__)


@dataclass
class LoopStore:
    """Sessions for the event loop, and the writer queue for the worker-thread fallback."""

    sessions: sessionmaker[Session]
    engine: Engine
    write_limiter: anyio.CapacityLimiter

    @classmethod
    def for_store(cls, engine: Engine) -> LoopStore | None:
        """A loop store on the same database as ``engine`` if it is SQLite, else None."""
        if engine.dialect.name != "sqlite":
            return None
        url = engine.url.render_as_string(hide_password=False)
        loop_engine = make_engine(url, busy_timeout_s=0, pool_size=1, max_overflow=1,
                                  autocheckpoint=False)
        return cls(session_factory(loop_engine), loop_engine, anyio.CapacityLimiter(1))

    def checkpoint(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    async def checkpoint_every(self, interval_s: float = 1.0) -> None:
        """Run until cancelled: move the WAL's committed pages into the database file."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await anyio.to_thread.run_sync(self.checkpoint)
            except Exception:  # noqa: BLE001 — a missed checkpoint is retried next time
                log.warning("WAL checkpoint failed; retrying in %.0f s", interval_s,
                            exc_info=True)
