"""Finding AVIs: every installed package's ``avip.avis`` entry points.

Bundled AVIs register exactly as a third-party package does (in avip's own
``pyproject.toml``), so there is one discovery path. Discovery is done on each
call, never at import time, and a plugin that fails to import or is malformed
is reported as a :class:`BrokenAVI` instead of breaking the listing.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from avi_plugins.sdk import AVI

GROUP = "avip.avis"


@dataclass(frozen=True)
class AVIInfo:
    """An AVI that loaded and passed its checks."""

    name: str
    version: str
    title: str
    summary: str
    author: str
    tags: tuple[str, ...]
    entry_point: str
    distribution: str | None
    broken: bool = field(default=False, init=False)


@dataclass(frozen=True)
class BrokenAVI:
    """An entry point that could not be loaded; ``error`` says why."""

    name: str
    entry_point: str
    distribution: str | None
    error: str
    broken: bool = field(default=True, init=False)


class UnknownAVIError(LookupError):
    """No AVI of that name (or version) is installed."""


class BrokenAVIError(RuntimeError):
    """The AVI is installed but cannot be loaded."""


def _entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: (ep.name, ep.value))


def _dist_name(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else None


def load_entry_point(ep: EntryPoint) -> AVI:
    """Import, instantiate and check the AVI behind one entry point."""
    target = ep.load()
    if not (isinstance(target, type) and issubclass(target, AVI)):
        raise TypeError(f"{ep.value} is not a subclass of avi_plugins.sdk.AVI")
    avi = target()
    avi.check()
    if avi.manifest.name != ep.name:
        raise ValueError(
            f"entry point name {ep.name!r} differs from manifest name {avi.manifest.name!r}"
        )
    return avi


def list_avis(group: str = GROUP) -> list[AVIInfo | BrokenAVI]:
    """Every registered AVI, loaded and checked; broken ones are listed, not raised."""
    found: list[AVIInfo | BrokenAVI] = []
    for ep in _entry_points(group):
        try:
            avi = load_entry_point(ep)
        except Exception as error:  # noqa: BLE001 — any plugin failure is reported
            last = traceback.format_exception_only(type(error), error)[-1].strip()
            found.append(BrokenAVI(ep.name, ep.value, _dist_name(ep), last))
            continue
        m = avi.manifest
        found.append(
            AVIInfo(m.name, m.version, m.title, m.summary, m.author, tuple(m.tags), ep.value,
                    _dist_name(ep))
        )
    return found


def get_avi(name: str, version: str | None = None, group: str = GROUP) -> AVI:
    """Load one AVI by name (and, if given, check its version).

    Raises
    ------
    UnknownAVIError
        When no entry point has that name, or the installed version differs.
    BrokenAVIError
        When it is registered but fails to import or to pass its checks.
    """
    candidates = [ep for ep in _entry_points(group) if ep.name == name]
    if not candidates:
        known = ", ".join(sorted({ep.name for ep in _entry_points(group)})) or "none"
        raise UnknownAVIError(f"no AVI named {name!r} is installed (installed: {known})")
    if len(candidates) > 1:
        sources = ", ".join(ep.value for ep in candidates)
        raise BrokenAVIError(f"AVI {name!r} is registered more than once ({sources})")
    try:
        avi = load_entry_point(candidates[0])
    except Exception as error:
        raise BrokenAVIError(f"AVI {name!r} ({candidates[0].value}) is broken: {error}") from error
    if version is not None and avi.manifest.version != version:
        raise UnknownAVIError(
            f"AVI {name!r} version {version} is not installed (installed: {avi.manifest.version})"
        )
    return avi
