"""A typed client for the avip REST API (httpx), shared by the CLI and dashboards.

    from api.client import AvipClient
    with AvipClient("http://127.0.0.1:8765", token) as avip:
        job = avip.submit("cluster_finder", {"ra_deg": 56.75, "dec_deg": 24.12})
        print(avip.job(job.id).progress.fraction)

Responses come back as the same pydantic models the server declares
(:mod:`api.schemas`); an error response raises :class:`ApiError` carrying the
status and the server's explanation.
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from api.schemas import (
    AlertFilterPublic,
    AlertFiltersPublic,
    AviDetail,
    AvisPublic,
    EventsPublic,
    JobPublic,
    JobsPublic,
    MePublic,
    PoolPublic,
    PoolsPublic,
    PresetLayout,
    PresetPublic,
    PresetsPublic,
    QuotaPublic,
    ResultLink,
    ResultsPublic,
    SharePublic,
    SharesPublic,
    SpaceEntry,
    SpaceListing,
    TokenIssued,
    TokenPublic,
    TokensPublic,
    UsagePublic,
    UserPublic,
    UsersPublic,
)

M = TypeVar("M", bound=BaseModel)


class ApiError(RuntimeError):
    """An error response; ``detail`` is the server's message (or field errors)."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status, self.detail = status, detail
        super().__init__(f"HTTP {status}: {format_detail(detail)}")


def format_detail(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
            if isinstance(d, dict) else str(d) for d in detail
        )
    return str(detail)


class AvipClient:
    """One API session; use as a context manager or call :meth:`close`."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                  timeout=timeout, transport=transport)

    def __enter__(self) -> AvipClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response

    def _get(self, model: type[M], url: str, **params: Any) -> M:
        clean = {k: v for k, v in params.items() if v is not None}
        return model.model_validate(self._request("GET", url, params=clean).json())

    def _send(self, model: type[M], method: str, url: str, body: Any = None) -> M:
        return model.model_validate(self._request(method, url, json=body).json())

    def _download(self, url: str, dest: Path, params: dict[str, Any] | None = None) -> Path:
        with self._http.stream("GET", url, params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.json().get("detail"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            with tmp.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
            shutil.move(tmp, dest)
        return dest

    # --- identity and AVIs ----------------------------------------------------------

    def me(self) -> MePublic:
        return self._get(MePublic, "/users/me")

    def avis(self) -> AvisPublic:
        return self._get(AvisPublic, "/avis")

    def avi(self, name: str, version: str | None = None) -> AviDetail:
        return self._get(AviDetail, f"/avis/{name}", version=version)

    # --- jobs -----------------------------------------------------------------------

    def submit(self, avi: str, params: dict[str, Any], *, version: str | None = None,
               priority: int = 0) -> JobPublic:
        body = {"avi": avi, "params": params, "priority": priority, "version": version}
        return self._send(JobPublic, "POST", "/jobs", body)

    def jobs(self, *, state: str | None = None, avi: str | None = None, limit: int = 50,
             offset: int = 0, everyone: bool = False) -> JobsPublic:
        """Your jobs; ``everyone``: every user's (operators)."""
        return self._get(JobsPublic, "/jobs", state=state, avi=avi, limit=limit, offset=offset,
                         everyone=everyone or None)

    def usage(self) -> UsagePublic:
        """What every user holds now (operators)."""
        return self._get(UsagePublic, "/users/usage")

    def job(self, job_id: int) -> JobPublic:
        return self._get(JobPublic, f"/jobs/{job_id}")

    def cancel(self, job_id: int) -> JobPublic:
        return self._send(JobPublic, "POST", f"/jobs/{job_id}/cancel")

    def rerun(self, job_id: int) -> JobPublic:
        return self._send(JobPublic, "POST", f"/jobs/{job_id}/rerun")

    def logs(self, job_id: int, offset: int = 0) -> str:
        return self._request("GET", f"/jobs/{job_id}/logs", params={"offset": offset}).text

    def results(self, job_id: int) -> ResultsPublic:
        return self._get(ResultsPublic, f"/jobs/{job_id}/results")

    def download_result(self, job_id: int, path: str, dest: Path,
                        fmt: str | None = None) -> Path:
        params = {"format": fmt} if fmt else None
        return self._download(f"/jobs/{job_id}/results/{path}", dest, params)

    def result_link(self, job_id: int, path: str, fmt: str = "votable") -> ResultLink:
        """A token-free URL of one result (yours or shared with you), for TOPCAT/Aladin."""
        response = self._request("POST", f"/jobs/{job_id}/results/{path}/link",
                                 params={"format": fmt})
        return ResultLink.model_validate(response.json())

    def events(self, after: int = 0, limit: int = 100) -> EventsPublic:
        return self._get(EventsPublic, "/events", after=after, limit=limit)

    # --- user space and sharing -----------------------------------------------------

    def space_ls(self, path: str = "") -> SpaceListing:
        return self._get(SpaceListing, "/space", path=path)

    def space_put(self, local: Path, path: str) -> SpaceEntry:
        def chunks() -> Iterator[bytes]:
            with local.open("rb") as handle:
                while block := handle.read(1 << 20):
                    yield block

        response = self._request("PUT", f"/space/files/{path}", content=chunks(),
                                 headers={"Content-Length": str(local.stat().st_size)})
        return SpaceEntry.model_validate(response.json())

    def space_get(self, path: str, dest: Path) -> Path:
        return self._download(f"/space/files/{path}", dest)

    def space_rm(self, path: str) -> None:
        self._request("DELETE", f"/space/files/{path}")

    def share(self, *, path: str | None = None, job_id: int | None = None,
              user: str | None = None, group: str | None = None) -> SharePublic:
        body = {"path": path, "job_id": job_id, "user": user, "group": group}
        return self._send(SharePublic, "POST", "/shares", body)

    def shares(self) -> SharesPublic:
        return self._get(SharesPublic, "/shares")

    def shared_with_me(self) -> SharesPublic:
        return self._get(SharesPublic, "/shares/received")

    def shared_ls(self, share_id: int, path: str = "") -> SpaceListing:
        return self._get(SpaceListing, f"/shares/received/{share_id}/files", path=path)

    def shared_get(self, share_id: int, path: str, dest: Path) -> Path:
        return self._download(f"/shares/received/{share_id}/files/{path}", dest)

    def unshare(self, share_id: int) -> None:
        self._request("DELETE", f"/shares/{share_id}")

    # --- operator -------------------------------------------------------------------

    def users(self) -> UsersPublic:
        return self._get(UsersPublic, "/users")

    def create_user(self, name: str, roles: list[str], groups: list[str] | None = None,
                    ) -> UserPublic:
        body = {"name": name, "roles": roles, "groups": groups or []}
        return self._send(UserPublic, "POST", "/users", body)

    def update_user(self, name: str, **changes: Any) -> UserPublic:
        return self._send(UserPublic, "PATCH", f"/users/{name}", changes)

    def issue_token(self, user: str, label: str = "", ttl_days: int | None = None) -> TokenIssued:
        return self._send(TokenIssued, "POST", f"/users/{user}/tokens",
                          {"label": label, "ttl_days": ttl_days})

    def tokens(self, user: str) -> TokensPublic:
        return self._get(TokensPublic, f"/users/{user}/tokens")

    def revoke_token(self, user: str, token_id: int) -> TokenPublic:
        return self._send(TokenPublic, "DELETE", f"/users/{user}/tokens/{token_id}")

    def pools(self) -> PoolsPublic:
        return self._get(PoolsPublic, "/pools")

    def set_pool(self, user: str, quota: QuotaPublic) -> PoolPublic:
        return self._send(PoolPublic, "PUT", f"/users/{user}/pool", quota.model_dump())

    def clear_pool(self, user: str) -> PoolPublic:
        return self._send(PoolPublic, "DELETE", f"/users/{user}/pool")

    # --- dashboard presets ----------------------------------------------------------

    def presets(self) -> PresetsPublic:
        return self._get(PresetsPublic, "/presets")

    def preset(self, preset_id: int) -> PresetPublic:
        return self._get(PresetPublic, f"/presets/{preset_id}")

    def create_preset(self, name: str, layout: PresetLayout, published: bool = False,
                      ) -> PresetPublic:
        body = {"name": name, "layout": layout.model_dump(), "published": published}
        return self._send(PresetPublic, "POST", "/presets", body)

    def update_preset(self, preset_id: int, layout: PresetLayout | None = None,
                      published: bool | None = None) -> PresetPublic:
        body = {"layout": layout.model_dump() if layout else None, "published": published}
        return self._send(PresetPublic, "PUT", f"/presets/{preset_id}", body)

    def delete_preset(self, preset_id: int) -> None:
        self._request("DELETE", f"/presets/{preset_id}")

    # --- alert filters --------------------------------------------------------------

    @staticmethod
    def _alert_filter_url(ref: str | int) -> str:
        return f"/alert-filters/{urllib.parse.quote(str(ref), safe='')}"

    def alert_filters(self) -> AlertFiltersPublic:
        """Your alert filters."""
        return self._get(AlertFiltersPublic, "/alert-filters")

    def alert_filter(self, ref: str | int) -> AlertFilterPublic:
        """One of your filters, by name or id."""
        return self._get(AlertFilterPublic, self._alert_filter_url(ref))

    def create_alert_filter(self, name: str, where: str, *, output_format: str = "json",
                            enabled: bool = True) -> AlertFilterPublic:
        body = {"name": name, "where": where, "output_format": output_format,
                "enabled": enabled}
        return self._send(AlertFilterPublic, "POST", "/alert-filters", body)

    def update_alert_filter(self, ref: str | int, *, where: str | None = None,
                            enabled: bool | None = None) -> AlertFilterPublic:
        """Change a filter's condition and/or switch it on or off (None: unchanged)."""
        body = {k: v for k, v in {"where": where, "enabled": enabled}.items() if v is not None}
        return self._send(AlertFilterPublic, "PATCH", self._alert_filter_url(ref), body)

    def enable_alert_filter(self, ref: str | int) -> AlertFilterPublic:
        return self.update_alert_filter(ref, enabled=True)

    def disable_alert_filter(self, ref: str | int) -> AlertFilterPublic:
        return self.update_alert_filter(ref, enabled=False)

    def delete_alert_filter(self, ref: str | int) -> None:
        self._request("DELETE", self._alert_filter_url(ref))

    def alert_filter_columns(self) -> dict[str, str]:
        """The columns a filter may name, with their Spark types."""
        return dict(self._request("GET", "/alert-filters/columns").json())
