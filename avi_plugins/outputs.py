"""Content-addressed task outputs.

A task's output folder is named by a hash of everything that determines it:
the AVI's name and version, the task name, the values of the parameters the
task declared, any extra key (e.g. a digest of an uploaded file), the pinned
path and Delta version of every table it reads, and the addresses of the
tasks it depends on. Same inputs, same address: the runner skips a task whose
address already exists, and different inputs can never collide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from avi_plugins.sdk import Manifest, Task


def task_identity(
    manifest: Manifest,
    task: Task,
    params: BaseModel,
    tables: Mapping[str, Mapping[str, Any]],
    upstream: Mapping[str, str],
) -> dict[str, Any]:
    """The JSON-able record whose hash is the task's address (kept in provenance)."""
    values = params.model_dump(mode="json")
    if task.params is not None:
        values = {name: values[name] for name in task.params}
    return {
        "avi": manifest.name,
        "avi_version": manifest.version,
        "task": task.name,
        "params": values,
        "key": dict(task.key(params)) if task.key else {},
        "tables": {name: dict(tables[name]) for name in task.tables},
        "after": {name: upstream[name] for name in task.after},
    }


def address_of(identity: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of an identity record (hex, 32 characters).

    >>> address_of({"a": 1, "b": [1, 2]}) == address_of({"b": [1, 2], "a": 1})
    True
    """
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def output_dir(cache_root: Path, identity: Mapping[str, Any], address: str) -> Path:
    """Where a task output lives: ``<cache>/<avi>/<version>/<task>/<address>``."""
    return (
        Path(cache_root)
        / str(identity["avi"])
        / str(identity["avi_version"])
        / str(identity["task"])
        / address
    )


def file_digest(path: Path | str, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, for ``Task.key`` of tasks reading user files."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
