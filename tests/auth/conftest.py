"""tests/auth runs every test against both key-value back ends: in-process always, and Redis when
``GATEWAY_TEST_REDIS_URL`` names a database (flushed before each test). Same tests, same
expectations: docs/architecture.md section 2 promises the same behaviour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.auth import REDIS_URL, flush_redis

BACK_ENDS = ["memory", "redis"] if REDIS_URL else ["memory"]


@pytest.fixture(params=BACK_ENDS)
def redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "redis":
        assert REDIS_URL is not None
        flush_redis(REDIS_URL)
        yield REDIS_URL
    else:
        yield None
