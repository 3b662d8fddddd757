"""S3-compatible object storage: one set of credentials for Spark (s3a) and delta-rs.

The settings object holds the endpoint, keys, region and bucket; this module
turns them into Hadoop ``fs.s3a.*`` options (Spark), ``storage_options``
(delta-rs), one pyarrow ``S3FileSystem`` per process (the interactive
reader's Parquet reads and the S3 user spaces share its connection pool), and
checks them once at start-up with a real signed request, so a wrong key, a
missing bucket or an unreachable endpoint fails at once with the name of the
setting to fix — not minutes later inside a Spark task.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request
from functools import lru_cache
from typing import TYPE_CHECKING

from pyarrow import fs as pafs

if TYPE_CHECKING:
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


@lru_cache(maxsize=4)
def _arrow_s3(endpoint: str | None, access: str, secret: str, region: str) -> pafs.S3FileSystem:
    options: dict[str, object] = {
        "access_key": access,
        "secret_key": secret,
        "region": region,
        "connect_timeout": 10,
        "request_timeout": 60,
        "allow_bucket_creation": False,
    }
    if endpoint:
        url = urllib.parse.urlsplit(endpoint)
        options |= {"endpoint_override": url.netloc, "scheme": url.scheme or "https"}
    return pafs.S3FileSystem(**options)  # type: ignore[arg-type]


def arrow_filesystem(settings: Settings) -> pafs.S3FileSystem:
    """The pyarrow S3 filesystem of the settings (one per process, so one connection pool).

    Paths on it are ``bucket/key`` (no scheme): see :func:`arrow_path`.
    """
    return _arrow_s3(
        settings.s3_endpoint, settings.s3_access_key or "", _secret(settings), settings.s3_region
    )


def arrow_path(url: str) -> str:
    """``s3a://bucket/key`` (or ``s3://``) as a path on :func:`arrow_filesystem`.

    >>> arrow_path("s3a://lake/gaia/gaia_source/")
    'lake/gaia/gaia_source'
    """
    return url.split("://", 1)[1].strip("/")


def _signed_list_request(settings: Settings) -> urllib.request.Request:
    """ListObjectsV2 (one key) on the bucket, signed with AWS Signature V4."""
    endpoint = settings.s3_endpoint or f"https://s3.{settings.s3_region}.amazonaws.com"
    url = urllib.parse.urlsplit(endpoint)
    host = url.netloc
    bucket = settings.s3_bucket or ""
    query = "list-type=2&max-keys=1"  # MinIO skips the bucket check for max-keys=0
    now = datetime.datetime.now(datetime.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(
        [
            "GET", f"/{urllib.parse.quote(bucket)}", query,
            f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n",
            signed, payload,
        ]
    )  # fmt: skip
    scope = f"{day}/{settings.s3_region}/s3/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
    key = ("AWS4" + _secret(settings)).encode()
    for part in (day, settings.s3_region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (
        f"AWS4-HMAC-SHA256 Credential={settings.s3_access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    headers = {"x-amz-date": amz_date, "x-amz-content-sha256": payload, "Authorization": auth}
    return urllib.request.Request(f"{url.scheme}://{host}/{bucket}?{query}", headers=headers)


#: S3 error codes → the setting that is wrong.
_ERROR_SETTING = {
    "InvalidAccessKeyId": "AVIP_S3_ACCESS_KEY",
    "SignatureDoesNotMatch": "AVIP_S3_SECRET_KEY",
    "NoSuchBucket": "AVIP_S3_BUCKET",
    "AccessDenied": "AVIP_S3_ACCESS_KEY",
    "AuthorizationHeaderMalformed": "AVIP_S3_REGION",
}


def check_s3(settings: Settings, timeout_s: float = 10.0) -> None:
    """Fail fast with the name of the setting to fix if the S3 settings do not work."""
    for name, value in (
        ("AVIP_S3_ACCESS_KEY", settings.s3_access_key),
        ("AVIP_S3_SECRET_KEY", settings.s3_secret_key),
        ("AVIP_S3_BUCKET", settings.s3_bucket),
    ):
        if not value:
            raise S3ConfigError(f"{name} is not set; the lakehouse or user space is on S3")
    request = _signed_list_request(settings)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as err:
        body = err.read().decode(errors="replace")
        code = body.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in body else ""
        setting = _ERROR_SETTING.get(code, "AVIP_S3_ENDPOINT")
        raise S3ConfigError(
            f"S3 refused the credentials or bucket ({err.code} {code or err.reason}) at "
            f"{settings.s3_endpoint or 'AWS'}: check {setting}"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise S3ConfigError(
            f"cannot reach the S3 endpoint {settings.s3_endpoint!r} ({reason}): "
            "check AVIP_S3_ENDPOINT"
        ) from None
