"""Translate library errors into HTTP errors (the only place besides deps that raises them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, status

from api.errors import Conflict, Invalid, NotFound, OverCap, Refused, TooLarge
from api.space.user_space import (
    PathRefused,
    QuotaExceeded,
    ReadOnlyPath,
    SpaceNotFound,
    StorageFull,
    StorageUnavailable,
)


@contextmanager
def http_errors() -> Iterator[None]:
    try:
        yield
    except (NotFound, SpaceNotFound) as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except Conflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    except StorageFull as error:
        raise HTTPException(status.HTTP_507_INSUFFICIENT_STORAGE, str(error)) from None
    except StorageUnavailable as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error),
                            headers={"Retry-After": "30"}) from None
    except OverCap as error:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(error)) from None
    except (QuotaExceeded, TooLarge) as error:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(error)) from None
    except Invalid as error:
        detail = [{"loc": ["body", *(error.field or "").split(".")], "msg": str(error),
                   "type": "value_error"}] if error.field else str(error)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    except (Refused, PathRefused, ReadOnlyPath) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
