"""User space on S3-compatible object storage: one key prefix per user.

:class:`S3PrefixBackend` implements :class:`api.space.user_space.StorageBackend`
over ``s3://<bucket>/<prefix>/<user>/``; :class:`api.space.user_space.UserSpace`
keeps doing the path checks, the quota and the read-only areas, exactly as
for the local directory backend.

Why pyarrow's S3 filesystem and not boto3: pyarrow is already the
interactive reader's stack (same credentials from :mod:`config.s3`), and boto3's
``botocore`` pins ``python-dateutil<3`` while the ``kubernetes`` client we
depend on needs ``>=3`` — adding boto3 would break that dependency.

Safety rules, each tested against a real S3 server (MinIO):

* confinement — every key is built from a path that is re-checked here
  (no ``..``, no absolute path, no empty segment) and must start with the
  user's prefix *and a slash*, so user ``al`` can never reach ``alice/``;
* no partial object — an upload is spooled locally while the quota is
  enforced chunk by chunk; only a complete, in-quota upload is sent, first to
  a temporary key under ``.uploads/`` and then copied server-side onto the
  final key (S3 copies are atomic), so a failure at any point leaves the old
  object or nothing; the temporary key is always deleted;
* S3 has no real folders: a folder exists while a key lies under it;
* job inputs — AVIs read their inputs as local files, so a ``space://`` input
  on S3 is staged (:func:`stage_input`): copied whole into a content-addressed
  local folder, then renamed into place, so a job never sees half a file; the
  copy is removed once no unfinished job names it (:mod:`api.space.staged_inputs`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO, cast

from pyarrow import fs as pafs

from api.space.user_space import TMP_DIR, Entry, PathRefused, SpaceNotFound, normalize
from config.s3 import arrow_filesystem
from config.settings import Settings

#: Uploads up to this size are spooled in memory, larger ones in a local temporary file.
SPOOL_IN_MEMORY_BYTES = 8 << 20


def s3_backend(settings: Settings, user: str) -> S3PrefixBackend:
    """``user``'s space on S3: the objects under ``<s3_bucket>/<s3_space_prefix>/<user>/``."""
    if not settings.s3_bucket:
        raise RuntimeError("user_space_backend is s3 but AVIP_S3_BUCKET is not set; set it")
    prefix = f"{settings.s3_space_prefix.strip('/')}/{normalize(user)}"
    return S3PrefixBackend(arrow_filesystem(settings), settings.s3_bucket, prefix)


def _mtime(info: pafs.FileInfo) -> float:
    when = info.mtime
    return when.timestamp() if isinstance(when, datetime) else 0.0


class S3PrefixBackend:
    """One user's space as the objects under ``<bucket>/<prefix>`` (a pyarrow path)."""

    def __init__(self, filesystem: pafs.FileSystem, bucket: str, prefix: str) -> None:
        parts = [p for p in prefix.split("/") if p]
        if not bucket or not parts or any(p in (".", "..") for p in parts):
            raise PathRefused(f"space prefix {prefix!r} in bucket {bucket!r} is not a plain key")
        self.fs = filesystem
        self.root = "/".join([bucket, *parts])

    def _key(self, path: str) -> str:
        """The object key of a canonical space path, confined to this user's prefix."""
        if path and normalize(path) != path:
            raise PathRefused(f"path {path!r} is not a canonical space path; refused")
        key = f"{self.root}/{path}" if path else self.root
        if key != self.root and not key.startswith(self.root + "/"):
            raise PathRefused(f"path {path!r} leaves your space; refused")
        return key

    def _entry(self, path: str, info: pafs.FileInfo) -> Entry:
        is_dir = info.type == pafs.FileType.Directory
        return Entry(path, is_dir, 0 if is_dir else int(info.size or 0), _mtime(info))

    def _info(self, path: str) -> pafs.FileInfo:
        return self.fs.get_file_info(self._key(path))

    def list(self, path: str) -> list[Entry]:
        key = self._key(path)
        if path and self.fs.get_file_info(key).type != pafs.FileType.Directory:
            raise SpaceNotFound(f"no folder {path!r} in your space")
        infos = self.fs.get_file_info(pafs.FileSelector(key, allow_not_found=True))
        entries = [
            self._entry(f"{path}/{info.base_name}" if path else info.base_name, info)
            for info in infos
            if info.base_name != TMP_DIR
        ]
        return sorted(entries, key=lambda e: e.path)

    def stat(self, path: str) -> Entry | None:
        info = self._info(path)
        return None if info.type == pafs.FileType.NotFound else self._entry(path, info)

    def open_read(self, path: str) -> BinaryIO:
        if self._info(path).type != pafs.FileType.File:
            raise SpaceNotFound(f"no file {path!r} in your space")
        return cast(BinaryIO, self.fs.open_input_stream(self._key(path)))

    @contextmanager
    def open_write(self, path: str, temp_path: Path | None = None) -> Iterator[BinaryIO]:
        """Bytes spool locally (``temp_path`` is for local backends; unused), then go up
        whole when the block ends without an error."""
        final = self._key(path)
        if self.fs.get_file_info(final).type == pafs.FileType.Directory:
            raise PathRefused(f"{path!r} is a folder; give a file name")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
            yield cast(BinaryIO, spool)  # an exception here (quota) sends nothing at all
            spool.seek(0)
            tmp = f"{self.root}/{TMP_DIR}/{uuid.uuid4().hex}"
            try:
                with self.fs.open_output_stream(tmp) as out:
                    shutil.copyfileobj(cast(IO[bytes], spool), out, 1 << 20)
                self.fs.move(tmp, final)  # server-side copy: the final key is whole or untouched
            finally:
                if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                    self.fs.delete_file(tmp)

    def delete(self, path: str) -> None:
        kind = self._info(path).type
        if kind == pafs.FileType.Directory:
            self.fs.delete_dir(self._key(path))
        elif kind == pafs.FileType.File:
            self.fs.delete_file(self._key(path))
        else:
            raise SpaceNotFound(f"no file {path!r} in your space")

    def files_under(self, path: str) -> list[Entry]:
        """Every file below the folder ``path`` (any depth), sorted by path."""
        key = self._key(path)
        selector = pafs.FileSelector(key, recursive=True, allow_not_found=True)
        return sorted(
            (
                self._entry(f"{path}/{info.path[len(key) + 1 :]}", info)
                for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File
            ),
            key=lambda e: e.path,
        )

    def upload_tree(self, local: Path, path: str) -> int:
        """Copy the regular files of the local folder ``local`` to the folder ``path`` of
        this space (a job's published results: written by the platform, not through the
        quota'd upload); returns how many. A symbolic link anywhere in it refuses the whole
        copy before any byte is sent: job code could plant one pointing at another user's
        files."""
        if local.is_symlink():
            raise PathRefused(f"{local} is a symbolic link; not published")
        files = []
        for folder, dirs, names in os.walk(local):  # never follows links
            for name in dirs + names:
                entry = Path(folder) / name
                if entry.is_symlink():
                    raise PathRefused(f"{entry} is a symbolic link; not published")
                if name in names:
                    files.append(entry)
        for file in files:
            key = self._key(normalize(f"{path}/{file.relative_to(local).as_posix()}"))
            fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)  # a link swapped in since: refused
            with os.fdopen(fd, "rb") as source, self.fs.open_output_stream(key) as out:
                shutil.copyfileobj(source, out, 1 << 20)
        return len(files)

    def used_bytes(self) -> int:
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        skip = f"{self.root}/{TMP_DIR}/"
        return sum(
            int(info.size or 0)
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and not info.path.startswith(skip)
        )


def stage_input(settings: Settings, *, owner: str, path: str, staging: Path) -> Path:
    """A local copy of the file or folder ``path`` of ``owner``'s S3 space, for a job to read.

    AVIs open their inputs as local files (astropy, pandas), so the object is
    copied to ``staging/<digest>/<name>``; the digest covers names, sizes and
    bytes, so staging the same content again reuses the copy and a changed
    upload gets a new one (a task keyed by the file's digest then runs anew).
    The copy is written to a temporary folder renamed into place: a job never
    sees half an input. Confinement is the backend's: ``path`` is a space path
    checked against ``owner``'s prefix; sharing is checked by the caller, who
    also holds :func:`api.space.staged_inputs.held_for_submission` until the job naming
    the copy is committed (else the copy may be released meanwhile).
    """
    backend = s3_backend(settings, owner)
    entry = backend.stat(path)
    if entry is None:
        raise SpaceNotFound(f"no file {path!r} in the space")
    name = path.rsplit("/", 1)[-1]
    files = backend.files_under(path) if entry.is_dir else [entry]
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=staging))
    try:
        digest = hashlib.sha256()
        for file in files:
            relative = name if file.path == path else f"{name}/{file.path[len(path) + 1 :]}"
            digest.update(f"{relative}\0{file.size}\0".encode())
            target = tmp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with backend.open_read(file.path) as source, target.open("wb") as out:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        final = staging / digest.hexdigest()
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not "staged already, by another request": a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / name
