"""The shape of a platform user name: one pattern for the API, the store, Kafka
principals and S3 policies (a-z, 0-9, _ and -, starting with a letter; no dot, so no
user's topic or key prefix starts another's)."""

import re

USER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
USER_NAME = re.compile(USER_NAME_PATTERN)
