"""Quota claims of uploads in progress: N parallel uploads never hold more than the quota.

An upload claims bytes before it writes them. A claim is granted under an exclusive
flock of the user's claims folder (the folder itself is the lock) only if what the
space holds, plus every live claim, plus this one fits the quota. A claim is a small
file (``<id>.claim``, the bytes claimed) that its upload holds open with a shared
flock: when the process dies the kernel drops the lock, and the claim (with the
upload's temporary file, named by the same id) no longer counts and is swept, at
start and whenever a claim is made. flock serialises every thread and process of
this host; replicas on several hosts need the folder on one shared volume.

Written by hand: no library reserves space against a quota computed from a listing.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SUFFIX = ".claim"


class Claims:
    """The live claims of one user's uploads, kept in ``folder`` (a local directory)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)  # the folder is the lock
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _live(self, *, sweep: bool) -> dict[str, int]:
        """Claim id → bytes of every claim whose upload is alive; with ``sweep``, the dead
        ones' files (claim and temporary upload) are removed. Call under the lock."""
        live: dict[str, int] = {}
        if not self.folder.is_dir():
            return live
        claimed_ids = set()
        for path in self.folder.glob(f"*{SUFFIX}"):
            claim_id = path.name.removesuffix(SUFFIX)
            claimed_ids.add(claim_id)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # its upload holds it: alive
                    live[claim_id] = int(os.pread(fd, 32, 0) or b"0")
                    continue
                if sweep:
                    path.unlink(missing_ok=True)
                    (self.folder / claim_id).unlink(missing_ok=True)
            finally:
                os.close(fd)
        if sweep:  # a temporary file without a claim outlived its upload
            for path in self.folder.iterdir():
                if path.is_file() and "." not in path.name and path.name not in claimed_ids:
                    path.unlink(missing_ok=True)
        return live

    def claimed_bytes(self) -> int:
        """Bytes the live claims hold now (for a listing: not a reservation)."""
        with self._exclusive():
            return sum(self._live(sweep=False).values())

    def sweep(self) -> None:
        """Remove what crashed uploads left (claims and temporary files)."""
        with self._exclusive():
            self._live(sweep=True)

    def open(self) -> Claim:
        """A new, empty claim, held by this process until :meth:`Claim.release`."""
        claim_id = uuid.uuid4().hex
        path = self.folder / f"{claim_id}{SUFFIX}"
        with self._exclusive():  # no sweep sees it before it is held
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)
            os.pwrite(fd, b"0", 0)
        return Claim(self, claim_id, fd)


class Claim:
    """Bytes one upload may write; grows by :meth:`grow`, released when the upload ends."""

    def __init__(self, claims: Claims, claim_id: str, fd: int) -> None:
        self.claims, self.id, self._fd, self.bytes = claims, claim_id, fd, 0
        self.released = False

    @property
    def temp_path(self) -> Path:
        """Where a local upload writes its bytes (swept with the claim if it dies)."""
        return self.claims.folder / self.id

    def grow(self, total_bytes: int, *, used: Callable[[], int], quota: int) -> int | None:
        """Claim ``total_bytes`` in all for this upload if the space holds room for them
        beside every other live claim: the bytes now free after it (None: no room; the
        claim stays as it was). ``used``: what the space holds, uploads excluded."""
        with self.claims._exclusive():
            others = sum(b for i, b in self.claims._live(sweep=True).items() if i != self.id)
            free = quota - used() - others - total_bytes
            if free < 0:
                return None
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(total_bytes).encode(), 0)
            self.bytes = total_bytes
            return free

    def release(self) -> None:
        """End the claim (the upload was committed or abandoned); once."""
        if self.released:
            return
        self.released = True
        (self.claims.folder / f"{self.id}{SUFFIX}").unlink(missing_ok=True)
        os.close(self._fd)
