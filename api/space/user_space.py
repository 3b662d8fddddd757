"""Per-user storage: browse, upload, download, delete, under a byte quota.

A :class:`UserSpace` speaks in *space paths* (``"data/stars.csv"``): relative,
``/``-separated, no ``..``, no empty or dot segments. It checks them and the
quota, and delegates bytes to a :class:`StorageBackend`: a
:class:`LocalDirectoryBackend` (a directory per user) or, with
``user_space_backend = "s3"``, an :class:`api.space.s3.S3PrefixBackend`
(a key prefix per user); :func:`api.space.selection.user_space` picks one from
the settings.

Safety rules, each tested: ``..``, absolute paths, backslashes and NUL are
refused before touching storage; the local backend also refuses any path
that crosses a symlink (so a link planted in the directory cannot point
outside it); an upload goes to a temporary file that is renamed into place
only when complete and within quota, so a refused upload leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

TMP_DIR = ".uploads"  # in-progress uploads; never listed, never counted twice
JOBS_DIR = "jobs"  # job results, written by the runner: read-only through the space API
MAX_NAME_BYTES = 255  # NAME_MAX of Linux file systems, and S3-safe
MAX_PATH_BYTES = 1024  # an S3 key's limit, less room for the user's prefix
MAX_DEPTH = 32


class SpaceError(ValueError):
    """Base of user-space errors; the message says what to fix."""


class PathRefused(SpaceError):
    pass


class SpaceNotFound(SpaceError):
    pass


class QuotaExceeded(SpaceError):
    pass


class ReadOnlyPath(SpaceError):
    pass


@dataclass(frozen=True)
class Entry:
    path: str
    is_dir: bool
    size: int
    modified: float


def normalize(path: str, *, allow_root: bool = False) -> str:
    """Check a space path and return it in canonical form (no trailing slash).

    >>> normalize("data//stars.csv")
    'data/stars.csv'
    >>> normalize("../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    api.space.user_space.PathRefused: path '../etc/passwd' has a '..' segment; use a path inside ...
    """
    if "\x00" in path or "\\" in path:
        raise PathRefused(f"path {path!r} has a NUL or backslash; use '/'-separated names")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise PathRefused(f"path {path!r} is absolute; give a path relative to your space")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathRefused(f"path {path!r} has a '..' segment; use a path inside your space")
    too_long = next((p for p in parts if len(p.encode()) > MAX_NAME_BYTES), None)
    if too_long is not None:
        raise PathRefused(f"the name {too_long[:40]!r}... has {len(too_long.encode())} bytes; "
                          f"a file or folder name has at most {MAX_NAME_BYTES}")
    if len(parts) > MAX_DEPTH or sum(len(p.encode()) + 1 for p in parts) > MAX_PATH_BYTES:
        raise PathRefused(f"path {path[:60]!r}... is too long: at most {MAX_DEPTH} folders "
                          f"deep and {MAX_PATH_BYTES} bytes")
    if parts and parts[0] == TMP_DIR:
        raise PathRefused(f"{TMP_DIR}/ is reserved for uploads in progress")
    if not parts and not allow_root:
        raise PathRefused("an empty path names your whole space; give a file path")
    return "/".join(parts)


class StorageBackend(Protocol):
    """Bytes for one user's space, addressed by canonical space paths."""

    def list(self, path: str) -> list[Entry]: ...
    def stat(self, path: str) -> Entry | None: ...
    def open_read(self, path: str) -> BinaryIO: ...
    @contextmanager
    def open_write(self, path: str) -> Iterator[BinaryIO]: ...
    def delete(self, path: str) -> None: ...
    def used_bytes(self) -> int: ...


class LocalDirectoryBackend:
    """A user's space as a directory; symlinks anywhere on a path are refused."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _real(self, path: str) -> Path:
        if path and normalize(path) != path:  # callers normalize; re-checked here all the same
            raise PathRefused(f"path {path!r} is not a canonical space path; refused")
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root
        for part in path.split("/") if path else []:
            target = target / part
            if target.is_symlink():
                raise PathRefused(f"path {path!r} goes through a symbolic link; refused")
        resolved = target.resolve()
        if resolved != self.root.resolve() and self.root.resolve() not in resolved.parents:
            raise PathRefused(f"path {path!r} leaves your space; refused")
        return target

    def local_path(self, path: str) -> Path:
        """The checked filesystem path (for handing inputs to a Spark job)."""
        return self._real(path)

    def _entry(self, path: str, real: Path) -> Entry:
        st = real.stat()
        return Entry(path, real.is_dir(), 0 if real.is_dir() else st.st_size, st.st_mtime)

    def list(self, path: str) -> list[Entry]:
        real = self._real(path)
        if not real.is_dir():
            raise SpaceNotFound(f"no folder {path or '/'!r} in your space")
        entries = []
        for child in sorted(real.iterdir()):
            if child.name == TMP_DIR or child.is_symlink():
                continue
            entries.append(self._entry(f"{path}/{child.name}" if path else child.name, child))
        return entries

    def stat(self, path: str) -> Entry | None:
        real = self._real(path)
        return self._entry(path, real) if real.exists() else None

    def open_read(self, path: str) -> BinaryIO:
        real = self._real(path)
        if not real.is_file():
            raise SpaceNotFound(f"no file {path!r} in your space")
        return real.open("rb")

    @contextmanager
    def open_write(self, path: str) -> Iterator[BinaryIO]:
        final = self._real(path)
        if final.is_dir():
            raise PathRefused(f"{path!r} is a folder; give a file name")
        tmp_dir = self.root / TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / uuid.uuid4().hex
        try:
            with tmp.open("wb") as handle:
                yield handle
            final.parent.mkdir(parents=True, exist_ok=True)
            self._real(path)  # re-check: a link may have appeared meanwhile
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, path: str) -> None:
        real = self._real(path)
        if real.is_dir():
            shutil.rmtree(real)
        elif real.exists():
            real.unlink()
        else:
            raise SpaceNotFound(f"no file {path!r} in your space")

    def used_bytes(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                full = os.path.join(dirpath, name)
                if not os.path.islink(full):
                    total += os.path.getsize(full)
        return total


class UserSpace:
    """One user's space: path checks, quota and read-only areas over a backend."""

    def __init__(self, backend: StorageBackend, quota_bytes: int) -> None:
        self.backend = backend
        self.quota_bytes = quota_bytes

    def list(self, path: str = "") -> list[Entry]:
        return self.backend.list(normalize(path, allow_root=True))

    def stat(self, path: str) -> Entry | None:
        return self.backend.stat(normalize(path))

    def open_read(self, path: str) -> BinaryIO:
        return self.backend.open_read(normalize(path))

    def delete(self, path: str) -> None:
        self.backend.delete(self._writable(path))

    def used_bytes(self) -> int:
        return self.backend.used_bytes()

    def _writable(self, path: str) -> str:
        key = normalize(path)
        if key.split("/")[0] == JOBS_DIR:
            raise ReadOnlyPath(f"{JOBS_DIR}/ holds job results and is read-only; pick another path")
        return key

    @contextmanager
    def upload(self, path: str, declared_size: int | None = None) -> Iterator[UploadSink]:
        """Write a file atomically; exceeding the quota aborts and leaves no file.

        The quota is checked before writing (``declared_size``) and again on
        every chunk, counting the file being replaced as freed.
        """
        key = self._writable(path)
        existing = self.backend.stat(key)
        replaced = existing.size if existing and not existing.is_dir else 0
        room = self.quota_bytes - (self.backend.used_bytes() - replaced)
        if declared_size is not None and declared_size > room:
            raise QuotaExceeded(_quota_message(declared_size, room, self.quota_bytes))
        with self.backend.open_write(key) as handle:
            yield UploadSink(handle, room, self.quota_bytes)


class UploadSink:
    """Receives an upload's chunks and stops as soon as the quota would be exceeded."""

    def __init__(self, handle: BinaryIO, room: int, quota: int) -> None:
        self._handle, self._room, self._quota, self.written = handle, room, quota, 0

    def write(self, chunk: bytes) -> None:
        self.written += len(chunk)
        if self.written > self._room:
            raise QuotaExceeded(_quota_message(self.written, self._room, self._quota))
        self._handle.write(chunk)


def _quota_message(size: int, room: int, quota: int) -> str:
    return (
        f"upload of at least {size} bytes exceeds your space quota ({max(room, 0)} of {quota} "
        "bytes free); delete files or ask an operator for a larger pool"
    )


def space_for(space_root: Path, user: str, quota_bytes: int) -> UserSpace:
    """The embedded-mode space of ``user`` (a directory under ``space_root``)."""
    return UserSpace(LocalDirectoryBackend(space_root / user), quota_bytes)
