"""``avip avi new NAME``: a new AVI package from the template in ``template/``.

The template is a real, working AVI (a G-magnitude histogram in a cone) with
a test that compares it to numpy, so a developer starts from green.
"""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATE = Path(__file__).parent / "template"
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


def class_name(name: str) -> str:
    """``my_avi`` -> ``MyAvi``.

    >>> class_name("star_counts")
    'StarCounts'
    """
    return "".join(part.capitalize() for part in name.split("_") if part)


def scaffold(name: str, parent: Path, title: str | None = None) -> Path:
    """Write package ``avip-<name>`` under ``parent/<name>``; return that folder."""
    if not _NAME.match(name):
        raise ValueError(
            f"AVI name {name!r} must be lower_snake_case (letters, digits, _), 2-63 characters"
        )
    target = Path(parent) / name
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose another name or folder")
    title = title or name.replace("_", " ").capitalize()
    replacements = {"__NAME__": name, "__CLASS__": class_name(name), "__TITLE__": title}
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")
        parts = [f"avip_{name}" if p == "package" else p for p in relative.parts]
        text = source.read_text(encoding="utf-8")
        for token, value in replacements.items():
            text = text.replace(token, value)
        destination = target.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text, encoding="utf-8")
    return target
