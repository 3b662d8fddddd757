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

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from api.space.claims import Claims

TMP_DIR = ".uploads"  # in-progress uploads; never listed, never counted twice
CLAIM_STEP_BYTES = 8 << 20  # an upload of unknown size claims quota in steps of this
JOBS_DIR = "jobs"  # job results, written by the runner: read-only through the space API
STAGED_INPUTS = ".inputs"  # in JOBS_DIR: copies of S3 files a job reads (not counted)
MAX_NAME_BYTES = 240  # under NAME_MAX (255) and MinIO's file layout (246 measured)
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


class StorageFull(SpaceError):
    """The storage under the spaces has no room left (whatever the user's quota)."""


class StorageUnavailable(SpaceError):
    """The storage did not answer or refused the write (S3 down, I/O error)."""


def storage_error(error: OSError) -> SpaceError:
    """What to tell the user about an OSError from the storage; nothing was written."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("the platform's storage is full, so nothing was written; an "
                           "operator must free room (your quota is not the limit here)")
    return StorageUnavailable(f"the storage did not take the file ({error}); nothing was "
                              "written; try again in a minute")


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
    def open_write(self, path: str, temp_path: Path | None = None) -> Iterator[BinaryIO]: ...
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
    def open_write(self, path: str, temp_path: Path | None = None) -> Iterator[BinaryIO]:
        """Bytes go to ``temp_path`` (default: a new name under ``.uploads/``), renamed into
        place when the block ends without an error."""
        final = self._real(path)
        if final.is_dir():
            raise PathRefused(f"{path!r} is a folder; give a file name")
        tmp_dir = self.root / TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = temp_path or tmp_dir / uuid.uuid4().hex
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
        """Bytes of the files of the space; uploads in progress count by their claims."""
        return folder_bytes(self.root, skip=TMP_DIR)


def folder_bytes(root: Path, *, skip: str | None = None) -> int:
    """Bytes of the regular files below ``root`` (links not followed; a top-level folder
    named ``skip`` left out)."""
    total = 0
    for dirpath, dirs, files in os.walk(root):
        if skip is not None and dirpath == str(root) and skip in dirs:
            dirs.remove(skip)
        for name in files:
            full = os.path.join(dirpath, name)
            try:
                if not os.path.islink(full):
                    total += os.path.getsize(full)
            except FileNotFoundError:  # removed while walking
                continue
    return total


class UserSpace:
    """One user's space: path checks, quota and read-only areas over a backend."""

    def __init__(self, backend: StorageBackend, quota_bytes: int, *, claims: Claims,
                 results: Path | None = None) -> None:
        """``claims``: where uploads in progress claim their bytes (a local folder);
        ``results``: a local folder of job results that counts against the quota too
        (spaces on S3, whose job results are local)."""
        self.backend = backend
        self.quota_bytes = quota_bytes
        self.claims = claims
        self.results = results

    def list(self, path: str = "") -> list[Entry]:
        return self.backend.list(normalize(path, allow_root=True))

    def stat(self, path: str) -> Entry | None:
        return self.backend.stat(normalize(path))

    def open_read(self, path: str) -> BinaryIO:
        return self.backend.open_read(normalize(path))

    def delete(self, path: str) -> None:
        self.backend.delete(self._writable(path))

    def used_bytes(self) -> int:
        """What the space holds: files, job results, and the claims of uploads in progress."""
        return self._stored_bytes() + self.claims.claimed_bytes()

    def _stored_bytes(self) -> int:
        results = (folder_bytes(self.results, skip=STAGED_INPUTS)
                   if self.results is not None else 0)
        return self.backend.used_bytes() + results

    def _writable(self, path: str) -> str:
        key = normalize(path)
        if key.split("/")[0] == JOBS_DIR:
            raise ReadOnlyPath(f"{JOBS_DIR}/ holds job results and is read-only; pick another path")
        return key

    @contextmanager
    def upload(self, path: str, declared_size: int | None = None) -> Iterator[Upload]:
        """Write a file atomically within the quota; any error leaves no file (see
        :class:`Upload`; an async caller uses :meth:`begin_upload` to write off its loop)."""
        upload = self.begin_upload(path, declared_size)
        try:
            yield upload
        except BaseException as error:
            upload.abort(error)
            raise
        upload.commit()

    def begin_upload(self, path: str, declared_size: int | None = None) -> Upload:
        """Start writing ``path``: a claim on the quota (``declared_size`` at once, when
        known) and a temporary file. Over the quota → :class:`QuotaExceeded`, nothing
        written."""
        key = self._writable(path)
        try:
            existing = self.backend.stat(key)
        except OSError as error:
            raise storage_error(error) from None
        replaced = existing.size if existing and not existing.is_dir else 0
        return Upload(self, key, replaced, declared_size)


class Upload:
    """One upload in progress: chunks are written only within its claim on the quota, grown
    as they come (by :data:`CLAIM_STEP_BYTES` at least), so parallel uploads together never
    exceed the quota; the file being replaced counts as freed. :meth:`commit` puts the file
    in place; :meth:`abort` (or any error) leaves nothing."""

    def __init__(self, space: UserSpace, key: str, replaced: int,
                 declared_size: int | None) -> None:
        self.space, self.key, self.written = space, key, 0
        self._replaced = replaced
        self._claim = space.claims.open()
        self._stack = ExitStack()
        try:
            self._grow(declared_size or 0)
            temp = self._claim.temp_path if isinstance(space.backend, LocalDirectoryBackend) \
                else None
            self._handle = self._stack.enter_context(space.backend.open_write(key, temp))
        except BaseException:
            self._stack.close()
            self._claim.release()
            raise

    def _grow(self, total: int) -> None:
        quota = self.space.quota_bytes
        try:
            free = self._claim.grow(total, quota=quota,
                                    used=lambda: self.space._stored_bytes() - self._replaced)
        except OSError as error:  # the storage could not be listed
            raise storage_error(error) from None
        if free is None:
            room = quota - (self.space.used_bytes() - self._replaced - self._claim.bytes)
            raise QuotaExceeded(_quota_message(total, room, quota))

    def write(self, chunk: bytes) -> None:
        needed = self.written + len(chunk)
        if needed > self._claim.bytes:
            try:
                self._grow(max(needed, self._claim.bytes + CLAIM_STEP_BYTES))
            except QuotaExceeded:
                self._grow(needed)  # no room for a whole step: claim exactly what is needed
        try:
            self._handle.write(chunk)
        except OSError as error:
            self.abort(error)
            raise storage_error(error) from None
        self.written = needed

    def commit(self) -> Entry:
        """Put the file in place (replacing the old one) and end the claim."""
        try:
            self._stack.close()
        except OSError as error:  # the temporary file or object is gone with the error
            raise storage_error(error) from None
        finally:
            self._claim.release()
        entry = self.space.backend.stat(self.key)
        assert entry is not None
        return entry

    def abort(self, error: BaseException | None = None) -> None:
        """Drop what was written (the old file, if any, is untouched) and end the claim;
        once (a second call does nothing)."""
        if self._claim.released:
            return
        error = error or RuntimeError("upload abandoned")
        try:
            self._stack.__exit__(type(error), error, error.__traceback__)
        finally:
            self._claim.release()


def _quota_message(size: int, room: int, quota: int) -> str:
    return (
        f"upload of at least {size} bytes exceeds your space quota ({max(room, 0)} of {quota} "
        "bytes free); delete files or ask an operator for a larger pool"
    )


def space_for(space_root: Path, user: str, quota_bytes: int) -> UserSpace:
    """The embedded-mode space of ``user`` (a directory under ``space_root``)."""
    root = space_root / user
    return UserSpace(LocalDirectoryBackend(root), quota_bytes, claims=Claims(root / TMP_DIR))


def sweep_crashed_uploads(space_root: Path) -> int:
    """Remove what uploads killed mid-way left in every user's ``.uploads/`` (their claims
    and temporary files; live uploads are left alone). Returns the users looked at."""
    if not space_root.is_dir():
        return 0
    folders = [user / TMP_DIR for user in space_root.iterdir()
               if user.is_dir() and not user.is_symlink() and (user / TMP_DIR).is_dir()]
    for folder in folders:
        Claims(folder).sweep()
    return len(folders)
