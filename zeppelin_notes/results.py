"""What running a paragraph produces, the same shape for Zeppelin and the local runner.

Zeppelin returns a paragraph's output as a list of typed messages (TEXT,
TABLE, HTML, IMG...). Its "display system" turns interpreter output into
those messages: a line beginning ``%table``, ``%html`` or ``%img`` starts a
new message of that type. :func:`split_display_output` applies the same rule
to captured stdout, so the local runner and the server report identical
results for the same note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RESULT_TYPES = ("TEXT", "TABLE", "HTML", "IMG", "ANGULAR", "NETWORK")
_MAGIC = re.compile(r"^%(text|table|html|img|angular|network)(?:[ \n]|$)", re.MULTILINE)


@dataclass(frozen=True)
class Result:
    """One output message of a paragraph: its type and raw data (IMG is base64 PNG)."""

    type: str
    data: str

    def table_rows(self) -> list[list[str]]:
        """A TABLE result as rows of cells (the first row is the header)."""
        if self.type != "TABLE":
            raise ValueError(f"result is {self.type}, not TABLE")
        return [line.split("\t") for line in self.data.splitlines() if line]


@dataclass
class ParagraphRun:
    """Status and output of one paragraph run."""

    paragraph_id: str
    title: str
    status: str
    results: list[Result] = field(default_factory=list)
    error: str | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    def of_type(self, type_: str) -> list[Result]:
        return [r for r in self.results if r.type == type_]


def split_display_output(text: str) -> list[Result]:
    """Split interpreter output into typed results the way Zeppelin's display system does.

    >>> [(r.type, r.data) for r in split_display_output("hi\\n%table a\\tb\\n1\\t2\\n")]
    [('TEXT', 'hi\\n'), ('TABLE', 'a\\tb\\n1\\t2\\n')]
    """
    results: list[Result] = []
    position, current = 0, "TEXT"
    for match in _MAGIC.finditer(text):
        chunk = text[position : match.start()]
        if chunk.strip():
            results.append(Result(current, chunk))
        current, position = match.group(1).upper(), match.end()
    tail = text[position:]
    if tail.strip():
        results.append(Result(current, tail))
    return results
