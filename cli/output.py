"""Where every ``avip`` command writes: results to stdout, errors to stderr.

Exit codes are the same for every command: 0 done, 1 a failure (a job failed,
a service could not be reached), 2 bad input (the message says what to fix).
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.text import Text

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

console = Console()
errors = Console(stderr=True)


def report(message: str) -> None:
    """Print ``message`` as an error on stderr, as plain text (brackets in it, from a
    list or a file name, are not read as markup)."""
    errors.print(Text("error: ", style="bold red") + Text(message))


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Report ``message`` and return the exit to raise."""
    report(message)
    return typer.Exit(code)
