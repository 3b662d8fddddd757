"""What a user's Spark jobs may do on S3: read the catalogue, read and write their own space.

Each user namespace's drivers and executors authenticate with keys of their own (Secret
``avip-s3``, docs/deploy.md), never the platform's: this module writes the IAM policy
those keys carry, in the AWS policy language that MinIO, Ceph RGW and AWS S3 all take.
Another user's space, the platform's checkpoints and anything else in the bucket stay
out of reach: listing is allowed only under the two prefixes, objects only under them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from config.names import USER_NAME

#: Object operations on the user's own space (multipart parts: Spark's s3a uploads).
SPACE_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                 "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


def bucket_and_prefix(uri: str) -> tuple[str, str]:
    """``s3a://bucket/some/prefix`` (or ``s3://``) → ``("bucket", "some/prefix")``."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3a://bucket/prefix URI; give the lakehouse's "
                         "AVIP_LAKEHOUSE_URI")
    return parsed.netloc, parsed.path.strip("/")


def user_policy(lakehouse_uri: str, space_prefix: str, user: str | None) -> dict[str, Any]:
    """The policy of ``user``'s job keys: read ``lakehouse_uri``, read and write
    ``<bucket>/<space_prefix>/<user>/``; nothing else. ``user=None``: the catalogue only
    (Zeppelin's interpreters, shared by every user of the notes)."""
    bucket, catalogue = bucket_and_prefix(lakehouse_uri)
    if not catalogue:
        raise ValueError(f"{lakehouse_uri!r} is the bucket's root: keep the catalogue under a "
                         "prefix (s3a://bucket/catalogue), or its readers could list everything")
    if user is not None and not USER_NAME.match(user):
        raise ValueError(f"{user!r} is not a user name (a-z, 0-9, _ and -)")
    space = f"{space_prefix.strip('/')}/{user}" if user is not None else None
    arn = f"arn:aws:s3:::{bucket}"
    # Folders end with "/": a bare "space/al" would also list "space/alice/...".
    listable = [f"{catalogue}/", f"{catalogue}/*",
                *([f"{space}/", f"{space}/*"] if space else [])]
    statements: list[dict[str, Any]] = [
        {"Sid": "ListCatalogueAndOwnSpace", "Effect": "Allow",
         "Action": ["s3:ListBucket"], "Resource": [arn],
         "Condition": {"StringLike": {"s3:prefix": listable}}},
        {"Sid": "BucketLocation", "Effect": "Allow",
         "Action": ["s3:GetBucketLocation"], "Resource": [arn]},
        {"Sid": "ReadCatalogue", "Effect": "Allow",
         "Action": ["s3:GetObject"], "Resource": [f"{arn}/{catalogue}/*"]},
    ]
    if space:
        statements.append({"Sid": "OwnSpace", "Effect": "Allow",
                           "Action": SPACE_ACTIONS, "Resource": [f"{arn}/{space}/*"]})
    return {"Version": "2012-10-17", "Statement": statements}
