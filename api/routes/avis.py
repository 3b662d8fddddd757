"""The AVI gallery: installed AVIs and their parameter schemas."""

from __future__ import annotations

from fastapi import APIRouter

from api.avis import describe
from api.deps import CatalogueDep, CurrentUser, SessionRoute
from api.routes.http_errors import http_errors
from api.schemas import AviDetail, AviPublic, AvisPublic

router = APIRouter(prefix="/avis", tags=["avis"], route_class=SessionRoute)


@router.get("", response_model=AvisPublic)
def list_avis(catalogue: CatalogueDep, user: CurrentUser) -> AvisPublic:
    """The installed AVIs. Plugins that failed to load are listed to operators only, with
    their error (an exception's text can tell the host's paths and configuration)."""
    good, broken = catalogue.list()
    return AvisPublic(data=[AviPublic(**describe(a)) for a in good], count=len(good),
                      broken=broken if "operator" in user.roles else [])


@router.get("/{name}", response_model=AviDetail)
def read_avi(catalogue: CatalogueDep, _user: CurrentUser, name: str,
             version: str | None = None) -> AviDetail:
    """One AVI with the JSON schema of its parameters (forms and CLI options come from it)."""
    with http_errors():
        avi = catalogue.get(name, version)
    return AviDetail(**describe(avi), params_schema=avi.params_schema())
