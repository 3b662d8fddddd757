"""Staged job inputs: local copies of S3 space files, kept exactly as long as a job needs them.

With user spaces on S3, a ``space://`` input is staged by the submission
(:func:`api.space.s3.stage_input`) into ``<space_root>/<user>/jobs/.inputs/<digest>/``
and the job's params record the staged path (a string inside that folder). Nothing
else owns those copies: without :func:`release_unused` local disk would keep every
input ever submitted.

The rule, in one place (:func:`release_unused`, applied by the dispatcher's tick): a
copy is kept while a job that has not finished (queued or running) has a param naming
a path inside it, and removed as soon as none has — after the last such job succeeded,
failed or was cancelled, or at once when no job ever named it (a submission refused
after staging, a crash between staging and queueing).

Staging and removal never race into a job seeing a missing file. Each user's staging
folder has an advisory lock (``flock`` on the folder itself, so it works between the
API's threads and between processes on the host): a submission holds it *shared*
(:func:`held_for_submission`) from before staging until its job row is committed;
removal takes it *exclusive* without waiting, and simply skips the folder this tick if
a submission holds it. Under the exclusive lock the store therefore holds every job
that will ever name a copy staged before, so reading the unfinished jobs' params then
is exact, and no staging is in progress (so ``.staging-*`` folders are crash leftovers).
An unreferenced copy is renamed aside (``.removing-*``, atomic) under the lock and
deleted after it: a later staging of the same digest never finds a half-deleted
folder under the digest's name — it finds nothing and stages a fresh copy.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.space.user_space import JOBS_DIR, STAGED_INPUTS
from api.store import jobs as job_store
from config.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Staged job inputs live in ``<space_root>/<user>/jobs/.inputs/<digest>/``.
#: Prefix of a copy being deleted (renamed aside first, see the module docstring).
REMOVING = ".removing-"


def staging_dir(space_root: Path, user: str) -> Path:
    """The folder of ``user``'s staged inputs (their jobs' copies of S3 space files)."""
    return space_root / user / JOBS_DIR / STAGED_INPUTS


@contextmanager
def _flock(folder: Path, mode: int) -> Iterator[bool]:
    """``flock`` ``folder`` (created if missing) for the block; yields False if a
    non-blocking request found it held. Closing the descriptor releases the lock."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextmanager
def held_for_submission(settings: Settings | None, user: str) -> Iterator[None]:
    """Keep ``user``'s staged inputs from removal for the block: wrap staging *and* the
    commit of the job row that names them (a no-op when spaces are local: nothing is staged)."""
    if settings is None or settings.user_space_backend != "s3":
        yield
        return
    with _flock(staging_dir(settings.space_root, user), fcntl.LOCK_SH):
        yield


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def names_staged_copy(value: str, staging: Path) -> str | None:
    """The staged copy (digest folder name) inside ``staging`` that the param ``value`` names,
    if any. Paths are compared resolved: AVIs may store the resolved path of an input."""
    if f"{os.sep}{STAGED_INPUTS}{os.sep}" not in value or "\x00" in value:
        return None  # not a path into a staging folder (a cheap test before touching the disk)
    inside = os.path.relpath(os.path.realpath(value), os.path.realpath(staging))
    first = inside.split(os.sep, 1)[0]
    return None if first in (os.curdir, os.pardir) else first


def release_unused(session: Session, staging: Path) -> list[str] | None:
    """Remove the staged copies in ``staging`` that no unfinished job names; return their
    names, or None when a submission holds the folder (nothing done: try again later).

    Every unfinished job is read, not only the folder owner's: a copy any job names is kept.
    """
    if not staging.is_dir():
        return []
    doomed: list[Path] = []
    with _flock(staging, fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
        if not held:
            return None
        entries = sorted(os.listdir(staging))
        if not entries:
            return []
        referenced = {
            name
            for params in job_store.unfinished_params(session)
            for value in _strings(params)
            if (name := names_staged_copy(value, staging)) is not None
        }
        removed = [name for name in entries if name not in referenced]
        for name in removed:
            aside = staging / f"{REMOVING}{uuid.uuid4().hex}"
            os.rename(staging / name, aside)
            doomed.append(aside)
    for aside in doomed:
        if aside.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)
    return removed


def staging_folders(space_root: Path) -> Iterator[tuple[str, Path, frozenset[str]]]:
    """(user, staging folder, entry names) for every user with a staging folder."""
    try:
        users = list(os.scandir(space_root))
    except FileNotFoundError:
        return
    for user in users:
        staging = staging_dir(space_root, user.name)
        try:
            names = frozenset(os.listdir(staging))
        except (FileNotFoundError, NotADirectoryError):
            continue
        yield user.name, staging, names
