"""A short-lived, in-process cache of token → user, dropped on any auth change.

Why: every request authenticates, and looking the token's hash up in the store
(a join, a transaction, a trip to a worker thread) was a large share of a
cheap request's cost. What stays true with the cache:

* tokens are still only known by their SHA-256; the cache is keyed by it;
* an expiry is checked on every hit, so an expired token is 401 at once;
* any committed change to a ``tokens`` or ``users`` row made through a
  session of this process (revoke, disable, roles, groups...) empties the
  cache right after the commit, so revocation takes effect on the next
  request. A *generation* counter stops a lookup that read the store before
  such a commit from putting its stale answer back afterwards;
* changes made by another process sharing the store are seen after at most
  ``ttl_s`` seconds (0 turns the cache off).

Cached users are detached ORM rows shared between requests: read them, never
change or ``session.add`` them (no route does; updates load their own row).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from api.models import Token, User, utcnow

_CHANGED = "avip.auth_changed"


@dataclass(frozen=True)
class _Entry:
    user: User
    expires_at: datetime | None
    cached_at: float


class TokenCache:
    """token hash → enabled user, for at most ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float = 10.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._generation = 0
        self._lock = threading.Lock()

    @classmethod
    def watching(cls, sessions: sessionmaker[Session], ttl_s: float = 10.0) -> TokenCache:
        """A cache emptied whenever a session of ``sessions`` commits a user or token change."""
        cache = cls(ttl_s)
        cache.watch(sessions)
        return cache

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Also empty the cache when a session of ``sessions`` commits a user or token change."""
        event.listen(sessions, "after_flush", _note_auth_changes)
        event.listen(sessions, "after_commit", self._after_commit)

    @property
    def generation(self) -> int:
        """Take this before reading the store; pass it to :meth:`put`."""
        return self._generation

    def get(self, token_hash: str) -> User | None:
        if self.ttl_s <= 0:
            return None
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if time.monotonic() - entry.cached_at >= self.ttl_s or (
            entry.expires_at is not None and entry.expires_at <= utcnow()
        ):
            self._entries.pop(token_hash, None)
            return None
        return entry.user

    def put(self, token_hash: str, user: User, expires_at: datetime | None,
            generation: int) -> None:
        """Remember a valid token, unless an auth change committed since ``generation``."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[token_hash] = _Entry(user, expires_at, time.monotonic())

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            self.clear()


def _note_auth_changes(session: Session, _context: Any) -> None:
    """Flag the session when a flush wrote a user or token row (new ones cannot be cached)."""
    touched = (*session.dirty, *session.deleted)
    if any(isinstance(obj, (User, Token)) for obj in touched):
        session.info[_CHANGED] = True
