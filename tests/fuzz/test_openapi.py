"""Schemathesis against the app's own OpenAPI schema, in-process over ASGI (real Redis, the demo model).

Every operation of /openapi.json gets schema-valid and schema-invalid requests; the checks are
"not a server error" (no 5xx, ever) and "the response body matches the schema documented for its
status" (errors included: every documented error is `{"error", "detail", ...}`). Bounded: a few
examples per operation, derandomized, no example database (`FUZZ_EXAMPLES=200` searches longer).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.python import asgi

from bot.config import Settings
from bot.web.app import create_app

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))


# The schema is read at collection time from an app that is never started (the routes, and so the
# schema, do not depend on the settings); the requests go to `served_app`, a started one. (Schemathesis'
# lazy `from_fixture` loader does not work with pytest 9.)
_UNSTARTED = create_app(
    Settings(data_dir=Path(tempfile.mkdtemp(prefix="sb-schema-")), console={"secret_key": "schema"})
)
schema = schemathesis.openapi.from_dict(_UNSTARTED.openapi())
schema.app = _UNSTARTED  # calls go in-process over ASGI (each test passes the started app)


@pytest.fixture(scope="module")
def served_app(demo_assets, demo_models, redis_url, tmp_path_factory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    from tests.conftest import demo_settings

    data_dir = tmp_path_factory.mktemp("schemathesis")
    for part in ("models", "index"):
        (data_dir / part).symlink_to(demo_assets / part)
    prefix = f"sbfuzz-{os.getpid()}"
    app = create_app(
        demo_settings(
            data_dir,
            redis__url=redis_url,
            sessions__key_prefix=prefix,
            console__admin_api_key="fuzz-admin-key",
        ),
        demo_models,
    )
    yield app
    asgi.shutdown_lifespans()  # schemathesis started the app's lifespan on its first request
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*", count=500):
        client.delete(key)


@schema.parametrize()
@settings(max_examples=EXAMPLES or 20, deadline=None, derandomize=not EXAMPLES, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_documented_bodies(case: schemathesis.Case, served_app: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance], app=served_app)
