"""First start: create an operator so someone can log in and create the others."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.store import users as user_store

TOKEN_FILE = "operator.token"


def ensure_operator(sessions: sessionmaker[Session], data_dir: Path, ttl_days: int) -> Path | None:
    """If the store has no user, create ``operator`` and write its token to a 0600 file.

    Returns the token file's path when a user was created, else None.
    """
    with sessions() as session:
        if user_store.count_users(session):
            return None
        user = user_store.create_user(session, name="operator", roles=["operator"])
        _token, secret = user_store.issue_token(session, user=user, label="bootstrap",
                                                ttl=timedelta(days=ttl_days))
        session.commit()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return path
