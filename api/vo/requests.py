"""What every IVOA endpoint shares: its parameters, its caller, its errors.

DALI parameters are case-insensitive in their names and arrive in the query
string (GET) or a form body (POST, multipart when it carries UPLOAD tables);
errors are VOTable documents (``QUERY_STATUS=ERROR``) with a 4xx status, so
pyvo, astroquery and TOPCAT show the message.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from api.deps import get_current_user
from api.models import User
from config.settings import Settings
from lakehouse.adql import AdqlError
from lakehouse.adql.formats import result_format
from lakehouse.votable import error_votable

VOTABLE = "application/x-votable+xml"
LANGS = {"ADQL", "ADQL-2.0", "ADQL-2.1"}
#: Longest parameter value read (a query is far shorter; UPLOAD tables are files).
MAX_VALUE_CHARS = 200_000


class VOError(Exception):
    """A request to refuse with an error VOTable: ``status`` and what to fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error_response(error: VOError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return Response(error_votable(error.message), status_code=error.status,
                    media_type=VOTABLE, headers=headers)


@dataclass
class Params:
    """A request's DALI parameters (names upper-cased) and its uploaded files."""

    values: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.values.get(name.upper())
        return found[-1] if found else default

    def all(self, name: str) -> list[str]:
        return self.values.get(name.upper(), [])

    def integer(self, name: str, lowest: int = 0) -> int | None:
        text = self.get(name)
        if text is None or not text.strip():
            return None
        try:
            value = int(text)
        except ValueError:
            raise VOError(400, f"{name} must be a whole number, got {text[:40]!r}") from None
        if value < lowest:
            raise VOError(400, f"{name} must be at least {lowest}, got {value}")
        return value

    def number(self, name: str) -> float | None:
        text = self.get(name)
        if text is None or not text.strip():
            return None
        try:
            return float(text)
        except ValueError:
            raise VOError(400, f"{name} must be a number, got {text[:40]!r}") from None


async def read_params(request: Request, max_file_bytes: int) -> Params:
    """The request's parameters: query string, then the form body of a POST."""
    params = Params()
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        try:
            form = await request.form(max_files=16, max_fields=256)
        except Exception as err:  # noqa: BLE001 — a malformed body is the client's to fix
            raise VOError(400, f"the request body is not a form: {str(err)[:200]}") from None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(max_file_bytes + 1)
                if len(data) > max_file_bytes:
                    raise VOError(413, f"the uploaded file {key!r} is over {max_file_bytes} "
                                  "bytes; upload fewer rows or run the match as a job")
                params.files[key] = data
            else:
                pairs.append((key, value))
    for key, value in pairs:
        if len(value) > MAX_VALUE_CHARS:
            raise VOError(400, f"parameter {key} is over {MAX_VALUE_CHARS} characters")
        params.values.setdefault(key.upper(), []).append(value)
    return params


async def caller(request: Request, *, anonymous_ok: bool) -> User | None:
    """The token's user; None for a request without one where the operator lets anonymous
    reads in (``tap_anonymous``); otherwise a 401 VOError."""
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    if not header:
        if anonymous_ok and settings.tap_anonymous:
            return None
        raise VOError(401, "this service needs a token: send 'Authorization: Bearer <token>' "
                      "(get one with `avip login`; in pyvo pass a requests session with that "
                      "header, in TOPCAT use its authentication dialog)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise VOError(401, "send the token as 'Authorization: Bearer <token>'")
    from fastapi.security import HTTPAuthorizationCredentials

    try:
        return await get_current_user(request, HTTPAuthorizationCredentials(
            scheme="Bearer", credentials=token.strip()))
    except Exception as err:  # noqa: BLE001 — an HTTPException 401 from the token check
        raise VOError(401, getattr(err, "detail", "token refused")) from None


def row_limit(settings: Settings, user: User | None) -> int:
    """The most rows a sync request of this caller returns."""
    return settings.tap_sync_max_rows if user is not None else settings.tap_anonymous_max_rows


def uploads_of(params: Params) -> dict[str, bytes]:
    """``UPLOAD=name,param:part`` pairs (DALI) → table name → the VOTable bytes sent."""
    found: dict[str, bytes] = {}
    for spec in params.all("UPLOAD"):
        for item in filter(None, (s.strip() for s in spec.split(";"))):
            name, _, where = item.partition(",")
            name = name.strip()
            if not name.isidentifier() or len(name) > 64:
                raise VOError(400, f"UPLOAD table name {name[:40]!r} must be a plain name "
                              "such as t1")
            if not where.startswith("param:"):
                raise VOError(400, f"UPLOAD {name}: only inline tables (name,param:PART) are "
                              "read here, not URLs: send the table in the request")
            part = where.removeprefix("param:")
            if part not in params.files:
                raise VOError(400, f"UPLOAD {name} names the request part {part!r}, which "
                              "the request does not carry")
            found[name] = params.files[part]
    if len(found) > 1:
        raise VOError(400, "send one UPLOAD table per query")
    return found


def first(mapping: Mapping[str, bytes]) -> tuple[str, bytes] | None:
    return next(iter(mapping.items()), None)


def settings_of(request: Request) -> Settings:
    """The app's settings (only the faces read settings; the app holds them)."""
    return request.app.state.settings


def absolute_url(request: Request, path: str) -> str:
    """``path`` on the address the request came to (what clients follow: UWS links)."""
    return str(request.base_url).rstrip("/") + path


def query_of(params: Params) -> tuple[str, str]:
    """(QUERY, our format name) of a TAP request, checked for REQUEST and LANG."""
    request = params.get("REQUEST")
    if request is not None and request.lower() != "doquery":
        raise VOError(400, f"REQUEST={request[:40]!r} is not served: use REQUEST=doQuery")
    lang = params.get("LANG")
    if lang is not None and lang.upper() not in LANGS:
        raise VOError(400, f"LANG={lang[:40]!r} is not served: use LANG=ADQL")
    query = params.get("QUERY")
    if not query or not query.strip():
        raise VOError(400, "QUERY is missing: send QUERY=<an ADQL SELECT>")
    try:
        return query, result_format(params.get("RESPONSEFORMAT") or params.get("FORMAT"))
    except AdqlError as err:
        raise VOError(400, str(err)) from None


class InFlight:
    """The sync requests each caller has running, at most ``per_caller`` at once: one user's
    burst of heavy queries cannot take every worker thread and core from the others (a
    caller without a token is told apart by address)."""

    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, request: Request, user: User | None) -> Iterator[None]:
        key = user.name if user is not None else f"anonymous@{getattr(request.client, 'host', '')}"
        with self._lock:
            if self._running[key] >= self.per_caller:
                raise VOError(429, f"you have {self.per_caller} sync requests running, the most "
                              "one caller may: wait for them, or submit long queries to "
                              "/tap/async")
            self._running[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[key] -= 1
                if not self._running[key]:
                    del self._running[key]


def in_flight(request: Request) -> InFlight:
    """The app's one :class:`InFlight` (made on first use)."""
    state = request.app.state
    found = getattr(state, "vo_in_flight", None)
    if found is None:
        found = state.vo_in_flight = InFlight(settings_of(request).tap_sync_per_caller)
    return found
