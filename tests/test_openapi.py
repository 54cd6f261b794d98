"""The local server's OpenAPI document is valid, and the server survives a property-based fuzzer.

schemathesis generates requests from ``radient_async/server/openapi.json`` and checks every
response: no 5xx, a documented status code, a documented content type, and a body matching its
schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import radient_async.server
from radient_async.server import ServerConfig, ThreadedServer

OPENAPI = Path(radient_async.server.__file__).parent / "openapi.json"
KEY = "fuzz-key-123456"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_openapi_document_is_structurally_valid() -> None:
    document = json.loads(OPENAPI.read_text())
    assert document["openapi"].startswith("3.1")
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert operations == {"generate", "status", "providers", "file"}
    schema = schemathesis.openapi.from_path(OPENAPI)
    assert len(list(schema.get_all_operations())) == 4


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ThreadedServer]:
    config = ServerConfig(api_key=KEY, job_ttl=60, max_live_jobs=10_000)
    with ThreadedServer(config) as server:
        yield server


@pytest.mark.parametrize("operation_id", ["generate", "status", "providers", "file"])
def test_fuzzing_the_local_server(fuzz_server: ThreadedServer, operation_id: str) -> None:
    schema = schemathesis.openapi.from_path(OPENAPI)
    operation = schema.find_operation_by_id(operation_id)
    headers = {"Authorization": f"Bearer {KEY}"}

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=fuzz_server.base_url, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)

    check()
