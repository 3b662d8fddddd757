"""Signed result links: a URL a desktop tool (TOPCAT, Aladin) fetches without a token.

SAMP hands applications a URL, never headers, so the URL itself carries the right to
read: ``<payload>.<mac>``, where the payload names the user, the token they asked with,
the job, the result path, the format and the expiry, and the MAC is HMAC-SHA256 of it
under a server key. Anyone holding the URL reads that one file until it expires; the
route serving it re-checks the user, the token and the job's access on every fetch, so
a revoked token, a disabled user or a withdrawn share ends it before then.

The key is ``settings.link_secret``, else one generated once into the data folder
(mode 0600, created atomically so two processes starting together agree on it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from config.settings import Settings

SECRET_FILE = "link.secret"
CONTEXT = b"avip-result-link-v1."  # a MAC for this purpose only, never reusable elsewhere


class LinkInvalid(ValueError):
    """Malformed, altered, or signed with another key."""


class LinkExpired(ValueError):
    """Well signed but past its expiry."""


@dataclass(frozen=True)
class Link:
    user_id: int
    token_id: int
    job_id: int
    path: str
    fmt: str
    expires: int  # unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, CONTEXT + payload.encode(), hashlib.sha256).digest())


def sign(key: bytes, link: Link) -> str:
    payload = _b64(json.dumps([link.user_id, link.token_id, link.job_id, link.path, link.fmt,
                               link.expires], separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, signed: str, now: float | None = None) -> Link:
    """The link ``signed`` names; LinkInvalid / LinkExpired otherwise. The MAC is checked
    (in constant time) before anything in the payload is read."""
    payload, _, mac = signed.partition(".")
    if not hmac.compare_digest(_mac(key, payload).encode(), mac.encode()):
        raise LinkInvalid("this link is not valid (altered, cut short, or made by another "
                          "server): ask for a new one")
    try:
        uid, tid, job, path, fmt, expires = json.loads(_unb64(payload))
        link = Link(int(uid), int(tid), int(job), str(path), str(fmt), int(expires))
    except (ValueError, TypeError) as error:  # only a leaked key could get here
        raise LinkInvalid("this link is not valid: ask for a new one") from error
    if (now if now is not None else time.time()) >= link.expires:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(link.expires))
        raise LinkExpired(f"this link expired at {stamp}: ask for a new one (send the table "
                          "again from the result page, or `avip samp send --job N`)")
    return link


def link_key(settings: Settings) -> bytes:
    """The signing key: the configured secret, else this data folder's generated one."""
    if settings.link_secret is not None:
        return settings.link_secret.get_secret_value().encode()
    return _generated_key(settings.data_dir / SECRET_FILE)


@lru_cache(maxsize=16)
def _generated_key(path: Path) -> bytes:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(draft, path)  # atomic, never replaces: the first process's key wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: delete it (links made so far stop "
                           "working) or set AVIP_LINK_SECRET")
    return key
