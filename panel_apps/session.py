"""The signed-in session: one API client per browser session, and who is signed in.

Every dashboard component receives this store and calls the API through
:meth:`PlatformSession.call`, so a token that expires or is revoked mid-session
sends the whole app back to the sign-in page with a message, wherever the call
came from. Nothing here reads the database: only the REST API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import param

from api.client import ApiError, AvipClient, format_detail

T = TypeVar("T")
SIMPLIFIED_ROLES = frozenset({"outreach", "anonymous"})
EXPIRED_MESSAGE = "Your token expired or was revoked: sign in again with a valid token."


class SignedOut(RuntimeError):
    """The API refused the token; the session has been signed out."""


class PlatformSession(param.Parameterized):
    """Who is signed in, against which API, and the last message to show them."""

    api_url = param.String(default="http://127.0.0.1:8765", doc="Where the REST API is.")
    token = param.String(default="", doc="The API token the user signed in with.")
    user = param.String(default="", doc="Signed-in user name ('' when signed out).")
    roles = param.List(default=[], item_type=str, doc="Roles of the signed-in user.")
    signed_in = param.Boolean(default=False, doc="True once the API accepted the token.")
    message = param.String(default="", doc="Why the user is on the sign-in page, if not fresh.")
    revision = param.Integer(default=0, doc="Bumped after every change views should re-read.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._client: AvipClient | None = None

    # --- sign-in --------------------------------------------------------------------

    def sign_in(self, token: str) -> bool:
        """Check ``token`` against ``/users/me``; on success remember it, else say why."""
        token = token.strip()
        if not token:
            self.message = "Enter your API token (ask an operator, or run `avip login`)."
            return False
        client = AvipClient(self.api_url, token)
        try:
            me = client.me()
        except ApiError as error:
            client.close()
            self.message = f"Sign-in refused: {format_detail(error.detail)}"
            return False
        except httpx.TransportError as error:
            client.close()
            self.message = f"Cannot reach the API at {self.api_url}: {error}"
            return False
        self._replace_client(client)
        self.param.update(token=token, user=me.name, roles=list(me.roles), message="",
                          signed_in=True)
        return True

    def sign_out(self, message: str = "") -> None:
        self._replace_client(None)
        self.param.update(token="", user="", roles=[], signed_in=False, message=message)

    def _replace_client(self, client: AvipClient | None) -> None:
        if self._client is not None:
            self._client.close()
        self._client = client

    @property
    def simplified(self) -> bool:
        """Outreach and anonymous users get the simplified pages."""
        return bool(self.roles) and set(self.roles) <= SIMPLIFIED_ROLES

    @property
    def is_operator(self) -> bool:
        return "operator" in self.roles

    # --- calling the API --------------------------------------------------------------

    def call(self, method: Callable[[AvipClient], T]) -> T:
        """Run ``method(client)``; a 401 signs the session out and raises :class:`SignedOut`."""
        if self._client is None:
            raise SignedOut("not signed in")
        try:
            return method(self._client)
        except ApiError as error:
            if error.status == 401:
                self.sign_out(EXPIRED_MESSAGE)
                raise SignedOut(EXPIRED_MESSAGE) from None
            raise

    def changed(self) -> None:
        """Tell views that something they show changed (a job submitted, a file uploaded)."""
        self.revision += 1
