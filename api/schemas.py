"""Request and response bodies (pydantic), one family per resource.

Following the Create / Update / Public / list ``{data, count}`` pattern, so
the OpenAPI document is the contract the typed client and dashboards use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

Role = Literal["operator", "developer", "scientist", "outreach", "anonymous"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
# config.names.USER_NAME_PATTERN, repeated: api.client (which imports this) may not import config
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"


class Message(BaseModel):
    detail: str


# --- users, tokens, pools ---------------------------------------------------


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="Login name (a-z, 0-9, _ and -).")
    roles: list[Role] = Field(min_length=1, description="Roles; the pool follows the largest.")
    groups: list[str] = Field(default_factory=list, description="Groups for sharing.")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: list[Role] | None = Field(default=None, min_length=1)
    groups: list[str] | None = None
    disabled: bool | None = None


class QuotaPublic(BaseModel):
    cores: int = Field(ge=0, le=100_000)
    memory_mb: int = Field(ge=0, le=100_000_000)
    max_jobs: int = Field(ge=0, le=100_000)
    space_bytes: int = Field(ge=0, le=2**53)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    roles: list[str]
    groups: list[str]
    disabled: bool
    created_at: datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserUsage(BaseModel):
    user: str
    queued_jobs: int
    running_jobs: int
    running_cores: int
    running_memory_mb: int


class UsagePublic(BaseModel):
    """What every user holds now (operators): jobs waiting and running, and their grant."""

    data: list[UserUsage]
    count: int


class MePublic(UserPublic):
    quota: QuotaPublic
    pool_overridden: bool
    running_cores: int
    running_memory_mb: int
    running_jobs: int
    space_used_bytes: int


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(default="", max_length=100)
    ttl_days: int | None = Field(default=None, ge=1, le=3650,
                                 description="Lifetime; default from settings.")


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenPublic):
    token: str = Field(description="The secret; shown only once, store it now.")
    user: str


class TokensPublic(BaseModel):
    data: list[TokenPublic]
    count: int


class PoolPublic(BaseModel):
    user: str
    roles: list[str]
    quota: QuotaPublic
    overridden: bool


class PoolsPublic(BaseModel):
    data: list[PoolPublic]
    count: int
    role_defaults: dict[str, QuotaPublic]
    cluster_cores: int
    cluster_memory_mb: int


# --- AVIs -------------------------------------------------------------------


class AviPublic(BaseModel):
    name: str
    version: str
    title: str
    summary: str
    author: str
    tags: list[str]


class AviDetail(AviPublic):
    params_schema: dict[str, Any]


class AvisPublic(BaseModel):
    data: list[AviPublic]
    count: int
    broken: list[dict[str, str]] = Field(default_factory=list)


# --- jobs -------------------------------------------------------------------


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    avi: str = Field(min_length=1, max_length=100, description="AVI name.")
    version: str | None = Field(default=None, max_length=50,
                                description="Refuse to run another version.")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Validated against the AVI's Params schema.")
    priority: int = Field(default=0, ge=-10, le=10,
                          description="Orders your own jobs (higher first); not others'.")


class ProgressPublic(BaseModel):
    fraction: float
    tasks_done: int
    tasks_total: int
    message: str


class JobPublic(BaseModel):
    id: int
    owner: str
    avi: str
    avi_version: str
    params: dict[str, Any]
    priority: int
    state: JobState
    reason: str | None
    cores: int
    memory_mb: int
    lane: str = Field(description="warm: a warm worker's open Spark session (small jobs); "
                                  "spark: the job's own Spark application.")
    backend: str | None = Field(description="What ran it: warm, local, standalone or "
                                            "kubernetes; null until it starts.")
    progress: ProgressPublic
    queue_position: int | None = Field(description="1 = next to start; null unless queued.")
    cancel_requested: bool
    rerun_of: int | None
    pins: dict[str, Any]
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    wait_seconds: float | None
    run_seconds: float | None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class ResultFile(BaseModel):
    path: str
    size: int
    formats: list[str] = Field(description="Formats it can be downloaded as (?format=).")


class ResultsPublic(BaseModel):
    data: list[ResultFile]
    count: int


class ResultLink(BaseModel):
    url: str = Field(description="Fetch it without a token (TOPCAT, Aladin) until it expires.")
    expires_at: datetime



# --- events -----------------------------------------------------------------


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    job_id: int | None
    user: str
    type: str
    payload: dict[str, Any]
    created_at: datetime
    published_at: datetime | None


class EventsPublic(BaseModel):
    data: list[EventPublic]
    count: int
    last_id: int


# --- user space and sharing -------------------------------------------------


class SpaceEntry(BaseModel):
    path: str
    is_dir: bool
    size: int
    modified: float


class SpaceListing(BaseModel):
    data: list[SpaceEntry]
    count: int
    used_bytes: int
    quota_bytes: int


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(default=None, max_length=1000,
                             description="A file or folder of your space to share...")
    job_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                               description="...or a job whose results to share.")
    user: str | None = Field(default=None, pattern=NAME_PATTERN, description="Recipient user...")
    group: str | None = Field(default=None, pattern=NAME_PATTERN, description="...or group.")


class SharePublic(BaseModel):
    id: int
    owner: str
    kind: Literal["file", "job"]
    target: str
    user: str | None
    group: str | None
    created_at: datetime


class SharesPublic(BaseModel):
    data: list[SharePublic]
    count: int


# --- dashboard presets ------------------------------------------------------

PRESET_GRID_COLUMNS = 12


class PresetItem(BaseModel):
    """One AVI view on the dashboard: a job's result at a place in a 12-column grid."""

    model_config = ConfigDict(extra="forbid")
    job_id: int = Field(ge=1, le=2**31 - 1, description="The job whose result view to show.")
    avi: str = Field(default="", max_length=100, description="The AVI whose view renders it.")
    title: str = Field(default="", max_length=200)
    row: int = Field(default=0, ge=0, le=1000, description="Top row (grid units).")
    col: int = Field(default=0, ge=0, lt=PRESET_GRID_COLUMNS, description="Left column (0-11).")
    height: int = Field(default=4, ge=1, le=100, description="Rows spanned.")
    width: int = Field(default=6, ge=1, le=PRESET_GRID_COLUMNS, description="Columns spanned.")


class PresetLayout(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[PresetItem] = Field(default_factory=list, max_length=24)


class PresetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="a-z, 0-9, '_' and '-'; unique per user.")
    layout: PresetLayout = Field(default_factory=PresetLayout)
    published: bool = Field(default=False, description="Visible to everyone (operators only).")


class PresetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    layout: PresetLayout | None = None
    published: bool | None = None


class PresetPublic(BaseModel):
    id: int
    name: str
    owner: str
    mine: bool
    published: bool
    layout: PresetLayout
    created_at: datetime
    updated_at: datetime


class PresetsPublic(BaseModel):
    data: list[PresetPublic]
    count: int


# --- alert filters ----------------------------------------------------------


class AlertFilterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="a-z, 0-9, '_' and '-'; unique among your filters.")
    where: str = Field(description="SQL condition over alert fields and gaia_* annotations.")
    output_format: Literal["json", "avro"] = "json"
    enabled: bool = True


class AlertFilterUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    where: str | None = None
    enabled: bool | None = None


class AlertFilterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    where: str = Field(description="The condition as you wrote it.",
                       validation_alias=AliasChoices("where", "where_sql"))
    topic: str = Field(description="The Kafka topic its matches are written to.")
    output_format: str
    enabled: bool
    disabled_reason: str | None = Field(
        default=None, description="Why the alert stream switched it off, if it did: fix the "
        "condition (or re-enable it as it is) to have it run again.")
    created_at: datetime
    updated_at: datetime


class AlertFiltersPublic(BaseModel):
    data: list[AlertFilterPublic]
    count: int
