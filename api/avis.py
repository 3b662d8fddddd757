"""The AVIs the service offers, seen through one small interface.

:class:`RegistryCatalogue` reads installed plugins through
``avi_plugins.registry`` (entry-point group ``avip.avis``) — the same path the
job runner uses, so what the API accepts is what the runner can run. Tests
and embedders may pass any object with the same two methods.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Protocol

from api.errors import Invalid, NotFound
from avi_plugins.registry import AVIInfo, BrokenAVIError, UnknownAVIError, get_avi, list_avis
from avi_plugins.sdk import AVI


class AviCatalogue(Protocol):
    def list(self) -> tuple[list[AVI], list[dict[str, str]]]: ...
    def get(self, name: str, version: str | None = None) -> AVI: ...


class RegistryCatalogue:
    """Installed AVIs from the entry-point registry.

    Loaded AVIs are kept: loading scans every installed distribution's entry points and runs
    the plugin's checks (~30 ms, holding the GIL, so every request in flight waits too).
    Every ``ttl_s`` seconds the mtimes of the import path's folders are compared with those
    seen at load time; installing or removing a distribution changes its folder, and only
    then is the AVI loaded again — a newly installed plugin still appears without a restart.
    """

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str | None], tuple[float, tuple[int, ...], AVI]] = {}

    def list(self) -> tuple[list[AVI], list[dict[str, str]]]:
        good: list[AVI] = []
        broken: list[dict[str, str]] = []
        for info in list_avis():
            if isinstance(info, AVIInfo):
                good.append(get_avi(info.name))
            else:
                broken.append({"name": info.name, "error": info.error})
        return good, broken

    def get(self, name: str, version: str | None = None) -> AVI:
        key = (name, version)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None:
            checked_at, stamp, avi = hit
            if now - checked_at < self.ttl_s:
                return avi
            if _installed_stamp() == stamp:
                self._cache[key] = (now, stamp, avi)
                return avi
        stamp = _installed_stamp()
        try:
            avi = get_avi(name, version)
        except UnknownAVIError as error:
            raise NotFound(str(error)) from None
        except BrokenAVIError as error:
            raise Invalid(str(error), field="avi") from None
        self._cache[key] = (now, stamp, avi)
        return avi


def _installed_stamp() -> tuple[int, ...]:
    """Modification times of the import path's folders (an install or removal changes one)."""
    stamp = []
    for folder in sys.path:
        try:
            stamp.append(os.stat(folder or ".").st_mtime_ns)
        except OSError:
            stamp.append(-1)
    return tuple(stamp)


def describe(avi: AVI) -> dict[str, Any]:
    m = avi.manifest
    return {"name": m.name, "version": m.version, "title": m.title, "summary": m.summary,
            "author": m.author, "tags": list(m.tags)}
