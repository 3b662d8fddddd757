"""Show figures, tables and HTML from a note the way Zeppelin renders them.

Notes print through Zeppelin's display system (``%img``, ``%table``,
``%html`` at the start of a line), which needs no Zeppelin-specific object:
the same paragraph renders in the Zeppelin UI, comes back typed through the
REST API, and is typed identically by the local notes runner.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

MAX_TABLE_ROWS = 1000


def show_figure(fig: Any) -> None:
    """Render a matplotlib figure as an IMG result (base64 PNG) and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    print("%img " + base64.b64encode(buffer.getvalue()).decode("ascii"))
    print("%text ", end="")


def show_table(frame: Any, max_rows: int = MAX_TABLE_ROWS) -> None:
    """Render a small pandas DataFrame (or Spark DataFrame, limited first) as a TABLE result."""
    if hasattr(frame, "toPandas"):
        frame = frame.limit(max_rows).toPandas()
    frame = frame.head(max_rows)

    def cell(value: Any) -> str:
        return str(value).replace("\t", " ").replace("\n", " ")

    lines = ["\t".join(cell(c) for c in frame.columns)]
    lines += ["\t".join(cell(v) for v in row) for row in frame.itertuples(index=False)]
    print("%table " + "\n".join(lines) + "\n")
    print("%text ", end="")


def show_html(markup: str) -> None:
    """Render HTML markup as an HTML result."""
    print("%html " + markup)
    print("%text ", end="")


def escape(text: str) -> str:
    """HTML-escape text for :func:`show_html`."""
    return html.escape(text)
