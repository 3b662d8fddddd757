"""A typed client for Apache Zeppelin's REST API (0.10 – 0.12).

Logs in through Shiro's form login (``POST /api/login``) and keeps the
``JSESSIONID`` cookie in a :class:`requests.Session`. Errors are specific so
callers can act on them: a wrong password, an expired session, a malformed
note and a failing paragraph each have their own exception, and each message
says what to fix.

>>> client = ZeppelinClient("http://127.0.0.1:18490")          # doctest: +SKIP
>>> client.login("user1", "secret")                            # doctest: +SKIP
>>> note_id = client.import_note(Path("zeppelin_notes/notes/start_here.zpln"))  # doctest: +SKIP
>>> runs = client.run_all(note_id)                             # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from zeppelin_notes.notes import NoteFormatError, load_note, validate_note
from zeppelin_notes.results import ParagraphRun, Result

__all__ = [
    "AuthenticationError",
    "NoteFormatError",
    "ParagraphFailed",
    "SessionExpired",
    "ZeppelinClient",
    "ZeppelinError",
]

RUNNING_STATES = {"READY", "PENDING", "RUNNING"}


class ZeppelinError(RuntimeError):
    """The server refused or failed a request (message carries status and server text)."""


class AuthenticationError(ZeppelinError):
    """Login refused: wrong user name or password."""


class SessionExpired(ZeppelinError):
    """The session cookie is no longer valid (expired, logged out, or server restarted)."""


class ParagraphFailed(ZeppelinError):
    """A paragraph finished in ERROR (or was aborted); carries its run with the error text."""

    def __init__(self, note_id: str, run: ParagraphRun) -> None:
        self.note_id, self.run = note_id, run
        title = f" ({run.title})" if run.title else ""
        super().__init__(
            f"paragraph {run.paragraph_id}{title} of note {note_id} ended {run.status}:\n"
            f"{run.error or '(no error text)'}"
        )


def _results(msgs: list[dict[str, Any]] | None) -> list[Result]:
    return [
        Result(m.get("type", "TEXT"), m.get("data", ""))
        for m in msgs or []
        if m.get("data", "").strip()
    ]


def paragraph_run(paragraph: dict[str, Any]) -> ParagraphRun:
    """A :class:`ParagraphRun` from a paragraph object of ``GET /api/notebook/{id}``."""
    results = _results((paragraph.get("results") or {}).get("msg"))
    status = paragraph.get("status", "READY")
    error = paragraph.get("errorMessage")
    if status == "ERROR" and not error:
        error = "\n".join(r.data for r in results if r.type == "TEXT") or None
    return ParagraphRun(paragraph["id"], paragraph.get("title", ""), status, results, error)


class ZeppelinClient:
    """One user's connection to a Zeppelin server."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        self.user: str | None = None

    # -- plumbing ------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one API request and return the envelope's ``body``."""
        kwargs.setdefault("timeout", self.timeout_s)
        url = f"{self.base_url}/api/{path.lstrip('/')}"
        try:
            response = self.http.request(method, url, allow_redirects=False, **kwargs)
        except requests.ConnectionError as exc:
            raise ZeppelinError(f"cannot reach Zeppelin at {self.base_url}: {exc}") from exc
        # Shiro answers an unauthenticated request by redirecting to its login URL.
        if response.status_code in (301, 302, 303, 401) or (
            response.status_code == 403 and self.user is not None and path != "login"
        ):
            if self.user is None:
                raise SessionExpired(f"{method} {path}: not logged in; call login(user, password)")
            raise SessionExpired(
                f"{method} {path}: the session of {self.user!r} has expired or was closed "
                f"(HTTP {response.status_code}); log in again"
            )
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if response.status_code >= 400 or envelope is None:
            detail = (envelope or {}).get("message") if isinstance(envelope, dict) else None
            raise ZeppelinError(
                f"{method} {path} failed with HTTP {response.status_code}: "
                f"{detail or response.text[:500].strip() or response.reason}"
            )
        return envelope.get("body")

    # -- session -------------------------------------------------------------
    def login(self, user: str, password: str) -> None:
        """Log in with Shiro's form login; the session cookie is kept for later calls."""
        url = f"{self.base_url}/api/login"
        try:
            response = self.http.post(
                url, data={"userName": user, "password": password}, timeout=self.timeout_s
            )
        except requests.ConnectionError as exc:
            raise ZeppelinError(f"cannot reach Zeppelin at {self.base_url}: {exc}") from exc
        if response.status_code == 403:
            raise AuthenticationError(
                f"Zeppelin refused the login of {user!r}: wrong user or password"
            )
        if response.status_code != 200:
            raise ZeppelinError(f"login of {user!r} failed with HTTP {response.status_code}")
        self.user = user

    def logout(self) -> None:
        """End the server-side session (later calls raise :class:`SessionExpired`)."""
        self.http.post(f"{self.base_url}/api/login/logout", timeout=self.timeout_s)

    def version(self) -> str:
        return self._request("GET", "version")["version"]

    # -- notes ---------------------------------------------------------------
    def list_notes(self) -> list[dict[str, str]]:
        """Notes this user can read, as ``{"id", "path"}`` dicts."""
        notes = self._request("GET", "notebook")
        return [{"id": n["id"], "path": n.get("path") or n.get("name", "")} for n in notes]

    def find_note(self, path: str) -> str | None:
        """The id of the note at ``path`` ("/folder/name"), or None."""
        wanted = "/" + path.lstrip("/")
        return next((n["id"] for n in self.list_notes() if n["path"] == wanted), None)

    def get_note(self, note_id: str) -> dict[str, Any]:
        return self._request("GET", f"notebook/{note_id}")

    def import_note(self, note: dict[str, Any] | str | Path, path: str | None = None) -> str:
        """Import a note (dict, JSON text or ``.zpln`` file) and return its new id.

        The note is validated first, so a malformed note fails with a
        :class:`NoteFormatError` naming the problem instead of a server 500.
        ``path`` ("/folder/name") places it; by default the note's own name.
        """
        if isinstance(note, Path):
            note = load_note(note)
        elif isinstance(note, str):
            try:
                note = json.loads(note)
            except json.JSONDecodeError as exc:
                raise NoteFormatError(f"note is not JSON: {exc}") from exc
        validate_note(note)
        params = {"notePath": "/" + path.lstrip("/")} if path else None
        return self._request("POST", "notebook/import", params=params, data=json.dumps(note))

    def replace_note(self, note: dict[str, Any], path: str) -> str:
        """Import ``note`` at ``path``, deleting a note already there first (Zeppelin
        refuses two notes at one path); its new id."""
        old = self.find_note(path)
        if old:
            self.delete_note(old)
        return self.import_note(note, path=path)

    def export_note(self, note_id: str) -> dict[str, Any]:
        """The note as ``.zpln`` JSON (with the results of its last run)."""
        return json.loads(self._request("GET", f"notebook/export/{note_id}"))

    def delete_note(self, note_id: str) -> None:
        self._request("DELETE", f"notebook/{note_id}")

    # -- running -------------------------------------------------------------
    def paragraph(self, note_id: str, paragraph_id: str) -> ParagraphRun:
        """Current status and results of one paragraph."""
        return paragraph_run(self._request("GET", f"notebook/{note_id}/paragraph/{paragraph_id}"))

    def run_paragraph(self, note_id: str, paragraph_id: str, check: bool = True) -> ParagraphRun:
        """Run one paragraph and wait for it on the server (synchronous REST call)."""
        started = time.monotonic()
        body = self._request(
            "POST", f"notebook/run/{note_id}/{paragraph_id}", timeout=max(self.timeout_s, 3600)
        )
        run = self.paragraph(note_id, paragraph_id)
        run.seconds = time.monotonic() - started
        if body and body.get("code") == "ERROR" and run.status != "ERROR":
            run.status = "ERROR"
            run.error = "\n".join(m.get("data", "") for m in body.get("msg", []))
        if check and not run.ok:
            raise ParagraphFailed(note_id, run)
        return run

    def submit_paragraph(self, note_id: str, paragraph_id: str) -> None:
        """Start one paragraph and return at once (poll with :meth:`wait_paragraph`)."""
        self._request("POST", f"notebook/job/{note_id}/{paragraph_id}")

    def wait_paragraph(
        self, note_id: str, paragraph_id: str, timeout_s: float = 1800, poll_s: float = 0.5,
        check: bool = True,
    ) -> ParagraphRun:
        """Poll a submitted paragraph until it leaves READY/PENDING/RUNNING."""
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            run = self.paragraph(note_id, paragraph_id)
            if run.status not in RUNNING_STATES or time.monotonic() > deadline:
                break
            time.sleep(poll_s)
        run.seconds = time.monotonic() - started
        if run.status in RUNNING_STATES:
            raise ZeppelinError(f"paragraph {paragraph_id} still {run.status} after {timeout_s}s")
        if check and not run.ok:
            raise ParagraphFailed(note_id, run)
        return run

    def statuses(self, note_id: str) -> dict[str, str]:
        """Paragraph id -> status for the whole note."""
        body = self._request("GET", f"notebook/job/{note_id}")
        return {p["id"]: p["status"] for p in body.get("paragraphs", [])}

    def run_all(
        self, note_id: str, timeout_s: float = 3600, poll_s: float = 1.0, check: bool = True,
        params: dict[str, Any] | None = None,
    ) -> list[ParagraphRun]:
        """Run every paragraph in order (server-side "run all") and return each one's run.

        Zeppelin stops a run-all at the first failing paragraph; with ``check``
        that paragraph is raised as :class:`ParagraphFailed`. ``params`` are
        dynamic-form values (``z.textbox``) given to every paragraph.
        """
        note = self.get_note(note_id)
        ids = [p["id"] for p in note.get("paragraphs", []) if (p.get("text") or "").strip()]
        started = time.monotonic()
        body = json.dumps({"params": params}) if params else None
        self._request("POST", f"notebook/job/{note_id}", params={"blocking": "false"}, data=body)
        deadline = started + timeout_s
        while True:
            time.sleep(poll_s)
            job = self._request("GET", f"notebook/job/{note_id}")
            busy = any(p["status"] in ("PENDING", "RUNNING") for p in job.get("paragraphs", []))
            if not (busy or job.get("isRunning")):
                break
            if time.monotonic() > deadline:
                raise ZeppelinError(f"note {note_id} still running after {timeout_s}s")
        runs = [paragraph_run(p) for p in self.get_note(note_id)["paragraphs"] if p["id"] in ids]
        if check:
            for run in runs:
                if run.status in ("ERROR", "ABORT"):
                    raise ParagraphFailed(note_id, run)
        return runs
