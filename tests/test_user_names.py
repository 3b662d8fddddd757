"""The API's copy of the user-name pattern (api.client may not import config) is the one."""

from api.schemas import NAME_PATTERN
from config.names import USER_NAME_PATTERN


def test_the_api_schema_uses_the_one_user_name_pattern() -> None:
    assert NAME_PATTERN == USER_NAME_PATTERN
