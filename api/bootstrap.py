"""Start-up: the service's state made private, and on first start an operator so
someone can log in and create the others."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.errors import Conflict
from api.store import users as user_store

TOKEN_FILE = "operator.token"
PRIVATE_UMASK = 0o077


def secure_state(data_dir: Path, store_url: str) -> None:
    """Keep what the service writes readable by its own account only: umask 077 for the
    process from here on, and the modes of what an earlier start (or another umask) left
    fixed: the data folder and its first level 0700, the SQLite store and the operator's
    token 0600. Jobs' drivers, children of the service, inherit the umask."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True)
    private = [data_dir, *(p for p in data_dir.iterdir() if p.is_dir() and not p.is_symlink())]
    for folder in private:
        folder.chmod(0o700)
    files = [data_dir / TOKEN_FILE]
    if store_url.startswith("sqlite:///"):
        store = Path(store_url.removeprefix("sqlite:///"))
        files += [store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")]
    for file in files:
        if file.is_file() and not file.is_symlink():
            file.chmod(0o600)


def ensure_operator(sessions: sessionmaker[Session], data_dir: Path, ttl_days: int) -> Path | None:
    """If the store has no user, create ``operator`` and write its token to a 0600 file.

    Returns the token file's path when a user was created, else None — also when another
    process starting at the same moment (a second replica, the scheduler) created it
    first: the store's unique name decides, and that process writes the token.
    """
    with sessions() as session:
        if user_store.count_users(session):
            return None
        try:
            user = user_store.create_user(session, name="operator", roles=["operator"])
            _token, secret = user_store.issue_token(session, user=user, label="bootstrap",
                                                    ttl=timedelta(days=ttl_days))
            session.commit()
        except (IntegrityError, Conflict):  # the store's unique name: another won
            session.rollback()
            return None
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return path
