"""A finished job's results where its owner's space is: a local folder, or their S3 prefix.

The runner always writes ``<job>/result/`` on the job's (shared) volume. With user spaces
on S3 the scheduler then publishes it into the owner's space, at ``jobs/<id>/result/``
(:func:`publish`, called once the job succeeded), and removes the local copy: the
results are then files of the space like any other — browsed, downloaded, shared, used
as a ``space://`` input of another job, counted once against the quota. Until that has
happened (or when it failed: the error is logged and the local copy kept), they are
read where the runner left them. :class:`JobResults` reads either, the same way: the
same listing (a Spark-written ``*.parquet`` folder is one table), the same downloads and
``?format=`` conversions.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from api.errors import NotFound
from api.space import result_files
from api.space.s3 import S3PrefixBackend, s3_backend, stage_input
from api.space.user_space import JOBS_DIR, Entry, SpaceError, normalize
from config.settings import Settings

RESULT_DIR = "result"


def result_folder(job_id: int | str) -> str:
    """The space path of a job's published results."""
    return f"{JOBS_DIR}/{job_id}/{RESULT_DIR}"


def publish(settings: Settings, owner: str, job_id: int, result_dir: Path) -> int:
    """Copy ``result_dir`` into ``owner``'s S3 space, then remove it; returns the files
    published (0: nothing to publish). The local copy goes only after every file is up."""
    if not result_dir.is_dir():
        return 0
    sent = s3_backend(settings, owner).upload_tree(result_dir, result_folder(job_id))
    shutil.rmtree(result_dir)
    return sent


def _skipped(segments: list[str]) -> bool:
    return any(s.startswith((".", "_")) for s in segments)


class JobResults:
    """One job's results: local until published, then in the owner's S3 space."""

    def __init__(self, settings: Settings, owner: str, job_id: int | str,
                 output_dir: Path) -> None:
        self.local = output_dir / RESULT_DIR
        self.settings, self.owner, self.folder = settings, owner, result_folder(job_id)
        self.backend: S3PrefixBackend | None = None
        if settings.user_space_backend == "s3" and not self.local.is_dir():
            self.backend = s3_backend(settings, owner)

    def list(self) -> list[tuple[str, int, list[str]]]:
        """(relative path, bytes, formats) of every result, tables first-class."""
        if self.backend is None:
            return result_files.list_results(self.local)
        tables: dict[str, int] = {}
        found = []
        for entry in self.backend.files_under(self.folder):
            segments = entry.path[len(self.folder) + 1:].split("/")
            table = next((i for i, s in enumerate(segments[:-1])
                          if s.lower().endswith(".parquet")), None)
            if table is not None:  # a file inside a Spark-written Parquet folder
                if _skipped(segments[:table + 1]):
                    continue
                key = "/".join(segments[:table + 1])
                size = entry.size if segments[-1].lower().endswith(".parquet") else 0
                tables[key] = tables.get(key, 0) + size
            elif not _skipped(segments):
                formats = (result_files.TABLE_FORMATS
                           if segments[-1].lower().endswith((".parquet", ".csv"))
                           else ["original"])
                found.append(("/".join(segments), entry.size, formats))
        found += [(key, size, result_files.TABLE_FORMATS) for key, size in tables.items()]
        return sorted(found)

    def _published(self, path: str) -> tuple[str, Entry]:
        """The space path of the published result ``path`` and its entry (404 if none)."""
        try:
            inner = f"{self.folder}/{normalize(path)}"
        except SpaceError as error:
            raise NotFound(f"no result {path!r}: {error}") from None
        assert self.backend is not None
        entry = self.backend.stat(inner)
        if entry is None:
            raise NotFound(f"no result {path!r}; list them with GET /jobs/{{id}}/results")
        return inner, entry

    def local_file(self, path: str) -> Path | None:
        """The local file or Parquet folder of ``path`` (None: it is in the S3 space)."""
        return None if self.backend is not None else result_files.locate(self.local, path)

    def open_published(self, path: str) -> tuple[BinaryIO, str] | None:
        """A stream of the published file ``path`` and its name (None: it is a folder)."""
        inner, entry = self._published(path)
        assert self.backend is not None
        if entry.is_dir:
            return None
        return self.backend.open_read(inner), inner.rsplit("/", 1)[-1]

    def convert(self, path: str, fmt: str) -> tuple[bytes, str, str]:
        """``path`` as ``fmt`` (bytes, media type, name), from wherever it is."""
        local = self.local_file(path)
        if local is not None:
            return result_files.convert(local, fmt)
        inner, entry = self._published(path)
        assert self.backend is not None
        size = (sum(f.size for f in self.backend.files_under(inner)) if entry.is_dir
                else entry.size)
        result_files.check_convertible(inner.rsplit("/", 1)[-1], size, fmt)  # before fetching
        with tempfile.TemporaryDirectory(prefix="avip-result-") as staging:
            copy = stage_input(self.settings, owner=self.owner, path=inner,
                               staging=Path(staging))
            return result_files.convert(copy, fmt)
