"""S3-compatible object storage: one set of credentials for Spark (s3a) and delta-rs.

The settings object holds the endpoint, keys, region and bucket; this module
turns them into Hadoop ``fs.s3a.*`` options (Spark), ``storage_options``
(delta-rs), one pyarrow ``S3FileSystem`` per process (the interactive
reader's Parquet reads and the S3 user spaces share its connection pool), and
checks them once at start-up with a real request (a listing of the bucket), so
a wrong key, a missing bucket or an unreachable endpoint fails at once with
the name of the setting to fix — not minutes later inside a Spark task.
"""

from __future__ import annotations

import urllib.parse
from functools import lru_cache

from pyarrow import fs as pafs

from config.settings import Settings


class S3ConfigError(RuntimeError):
    """The S3 settings do not work; the message names the AVIP_S3_* setting to fix."""


def is_s3(path: str) -> bool:
    return path.startswith(("s3a://", "s3://"))


def _secret(settings: Settings) -> str:
    return settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else ""


def hadoop_conf(settings: Settings) -> dict[str, str]:
    """``fs.s3a.*`` options for Spark (prefix each key with ``spark.hadoop.``)."""
    conf = {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": settings.s3_access_key or "",
        "fs.s3a.secret.key": _secret(settings),
        "fs.s3a.endpoint.region": settings.s3_region,
        "fs.s3a.fast.upload": "true",
    }
    if settings.s3_endpoint:
        conf["fs.s3a.endpoint"] = settings.s3_endpoint
        # MinIO and most on-premise stores serve buckets as paths, not subdomains.
        conf["fs.s3a.path.style.access"] = "true"
        conf["fs.s3a.connection.ssl.enabled"] = str(settings.s3_endpoint.startswith("https"))
    return conf


def storage_options(settings: Settings) -> dict[str, str]:
    """delta-rs ``storage_options`` with the same credentials as :func:`hadoop_conf`."""
    options = {
        "AWS_ACCESS_KEY_ID": settings.s3_access_key or "",
        "AWS_SECRET_ACCESS_KEY": _secret(settings),
        "AWS_REGION": settings.s3_region,
    }
    if settings.s3_endpoint:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint
        options["AWS_ALLOW_HTTP"] = str(settings.s3_endpoint.startswith("http://")).lower()
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


def _arrow_options(settings: Settings) -> dict[str, object]:
    """``S3FileSystem`` keyword arguments of the settings."""
    options: dict[str, object] = {
        "access_key": settings.s3_access_key or "",
        "secret_key": _secret(settings),
        "region": settings.s3_region,
        "allow_bucket_creation": False,
    }
    if settings.s3_endpoint:
        url = urllib.parse.urlsplit(settings.s3_endpoint)
        options |= {"endpoint_override": url.netloc, "scheme": url.scheme or "https"}
    return options


@lru_cache(maxsize=4)
def _arrow_s3(options: tuple[tuple[str, object], ...]) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(**dict(options), connect_timeout=10, request_timeout=60)


def arrow_filesystem(settings: Settings) -> pafs.S3FileSystem:
    """The pyarrow S3 filesystem of the settings (one per process, so one connection pool).

    Paths on it are ``bucket/key`` (no scheme): see :func:`arrow_path`.
    """
    return _arrow_s3(tuple(_arrow_options(settings).items()))


def arrow_path(url: str) -> str:
    """``s3a://bucket/key`` (or ``s3://``) as a path on :func:`arrow_filesystem`.

    >>> arrow_path("s3a://lake/gaia/gaia_source/")
    'lake/gaia/gaia_source'
    """
    return url.split("://", 1)[1].strip("/")


#: S3 error codes → the setting that is wrong. pyarrow's messages name them as the AWS SDK
#: spells them (``INVALID_ACCESS_KEY_ID``) or, for codes the SDK has no name for, as S3 sent
#: them; :func:`_setting_to_fix` compares both without case or underscores.
_ERROR_SETTING = {
    "InvalidAccessKeyId": "AVIP_S3_ACCESS_KEY",
    "SignatureDoesNotMatch": "AVIP_S3_SECRET_KEY",
    "NoSuchBucket": "AVIP_S3_BUCKET",
    "AccessDenied": "AVIP_S3_ACCESS_KEY",
    "AuthorizationHeaderMalformed": "AVIP_S3_REGION",
    "InvalidRegion": "AVIP_S3_REGION",
}


#: The prefix :func:`check_s3` lists (nothing is ever written under it).
_PROBE_PREFIX = ".avip-settings-check"


def _setting_to_fix(message: str) -> tuple[str, str] | None:
    """(S3 error code, setting) named in a pyarrow error message, or None."""
    flat = message.replace("_", "").lower()
    for code, setting in _ERROR_SETTING.items():
        if code.lower() in flat:
            return code, setting
    return None


def check_s3(settings: Settings, timeout_s: float = 10.0) -> None:
    """Fail fast with the name of the setting to fix if the S3 settings do not work.

    Lists an empty prefix of the bucket through a filesystem made for the
    check alone — not the process's cached one from :func:`arrow_filesystem` —
    with one attempt and ``timeout_s`` to connect and to answer, so a wrong
    endpoint fails in seconds and bad credentials leave nothing behind.
    """
    for name, value in (
        ("AVIP_S3_ACCESS_KEY", settings.s3_access_key),
        ("AVIP_S3_SECRET_KEY", settings.s3_secret_key),
        ("AVIP_S3_BUCKET", settings.s3_bucket),
    ):
        if not value:
            raise S3ConfigError(f"{name} is not set; the lakehouse or user space is on S3")
    filesystem = pafs.S3FileSystem(
        **_arrow_options(settings),  # type: ignore[arg-type]
        connect_timeout=timeout_s,
        request_timeout=timeout_s,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
    )
    where = settings.s3_endpoint or "AWS"
    # A listing (a HEAD response has no body, so no error code) of a prefix that does not
    # exist: one short request however big the bucket, answered "not found" when all is well.
    probe = pafs.FileSelector(f"{settings.s3_bucket}/{_PROBE_PREFIX}/", recursive=False)
    try:
        filesystem.get_file_info(probe)
    except FileNotFoundError:
        return
    except OSError as err:
        known = _setting_to_fix(str(err))
        if known is not None:
            code, setting = known
            raise S3ConfigError(
                f"S3 refused the credentials or bucket ({code}) at {where}: check {setting}"
            ) from None
        raise S3ConfigError(
            f"cannot use the S3 endpoint {settings.s3_endpoint!r} ({err}): check AVIP_S3_ENDPOINT"
        ) from None
