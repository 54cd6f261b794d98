"""The local server under fuzzing, against its OpenAPI document.

``radient_async/server/openapi.json`` describes the API the local server implements. Here it is
validated against the OpenAPI 3.1 meta-schema (the one schemathesis ships), checked against the
server's real routes and error shape, and then schemathesis throws generated requests at a running
``ThreadedServer``: valid ones (positive) and schema-violating ones (negative). No input may get a
5xx, and every response must match the document: status code, content type, headers and body.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR, OPENAPI_31_VALIDATOR

import radient_async.server
from radient_async.server import ServerConfig, ThreadedServer, create_app

DOCUMENT = Path(radient_async.server.__file__).parent / "openapi.json"
KEY = "sk-fuzz-7d3b95e0a2c4f816"
OPERATIONS = ("generate", "status", "providers", "file")
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


@pytest.fixture(scope="module")
def schema() -> Any:
    return schemathesis.openapi.from_path(DOCUMENT)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ThreadedServer]:
    config = ServerConfig(api_key=KEY, job_ttl=60, max_live_jobs=100_000, seed=3)
    with ThreadedServer(config) as server:
        yield server


def operations_of(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def test_the_document_is_a_valid_openapi_3_document(document: dict[str, Any], schema: Any) -> None:
    version = document["openapi"]
    validator = OPENAPI_31_VALIDATOR if version.startswith("3.1") else OPENAPI_30_VALIDATOR
    errors = [str(error) for error in validator.iter_errors(document)]
    assert errors == []
    schema.validate()  # schemathesis' own checks (and $ref resolution) agree
    assert set(operations_of(document)) == set(OPERATIONS)
    assert len(list(schema.get_all_operations())) == len(OPERATIONS)


def test_the_document_matches_the_servers_routes(document: dict[str, Any]) -> None:
    app = create_app(ServerConfig())
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    prefix = document["servers"][0]["url"].rstrip("/")
    documented = {(method, prefix + path) for method, path, _ in operations_of(document).values()}
    assert routes - {("GET", "/_local/stats")} == documented


def test_every_error_answer_is_documented_with_the_error_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert {"error", "code", "field"} <= set(error["properties"])
    assert "error" in error["required"]
    expected = {
        "generate": {"200", "400", "401", "413", "422", "429"},
        "status": {"200", "401", "404", "422", "429"},
        "providers": {"200", "401", "429"},
        "file": {"200", "404"},
    }
    for name, (_, _, operation) in operations_of(document).items():
        responses = operation["responses"]
        assert expected[name] <= set(responses), name
        for code, answer in responses.items():
            body = answer["content"][
                "application/json" if code != "200" or name != "file" else "image/png"
            ]
            if code != "200":
                assert body["schema"] == {"$ref": "#/components/schemas/Error"}, (name, code)
        if "429" in responses:
            assert {"Retry-After", "retry-after-ms"} <= set(responses["429"].get("headers", {})), (
                name
            )


FUZZ_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_fuzzing_the_server_never_breaks_it_or_the_document(
    schema: Any, fuzz_server: ThreadedServer, operation_id: str, mode: GenerationMode
) -> None:
    operation = schema.find_operation_by_id(operation_id)
    checks = [*CONFORMANCE, negative_data_rejection] if mode.is_negative else CONFORMANCE
    seen: set[int] = set()

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        if operation_id == "generate":
            # fresh and well-formed, so a generated key never replays another case's job (the
            # key's documented length limit has its own test below)
            headers["Idempotency-Key"] = secrets.token_hex(16)
            case.headers = {**(case.headers or {}), **headers}
        response = case.call(base_url=fuzz_server.base_url, headers=headers, timeout=30)
        seen.add(response.status_code)
        case.validate_response(response, checks=checks, headers=headers)

    check()
    assert all(code < 500 for code in seen), seen
    if mode.is_negative and operation_id != "providers":
        assert any(400 <= code < 500 for code in seen), seen  # invalid input really was sent


def test_a_real_flow_conforms_end_to_end(schema: Any, fuzz_server: ThreadedServer) -> None:
    """generate → status → file, with the server's own answers fed forward."""
    base = fuzz_server.base_url
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {"prompt": "conformance", "image_size": {"width": 32, "height": 32}, "num_images": 2}
    generate = schema.find_operation_by_id("generate")
    case = generate.Case(body=body, headers={**auth, "Idempotency-Key": "flow-1"})
    created = case.call(base_url=base)
    case.validate_response(created, checks=CONFORMANCE)
    job = created.json()
    status = schema.find_operation_by_id("status")
    case = status.Case(query={"request_id": job["request_id"]}, headers=auth)
    for _ in range(100):
        answer = case.call(base_url=base)
        case.validate_response(answer, checks=CONFORMANCE)
        if answer.json()["status"] == "COMPLETED":
            break
    images = answer.json()["images"]
    assert len(images) == 2
    file = schema.find_operation_by_id("file")
    for index, image in enumerate(images):
        case = file.Case(path_parameters={"request_id": job["request_id"], "index": index})
        fetched = case.call(base_url=base)
        case.validate_response(fetched, checks=CONFORMANCE)
        assert fetched.content == requests.get(image["url"], timeout=10).content
        assert fetched.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("extra", [0, 1], ids=["at the limit", "one over"])
def test_the_idempotency_key_limit_is_the_documented_one(
    document: dict[str, Any], fuzz_server: ThreadedServer, extra: int
) -> None:
    [header] = document["paths"]["/images/generate"]["post"]["parameters"]
    limit = header["schema"]["maxLength"]
    answer = requests.post(
        f"{fuzz_server.base_url}/images/generate",
        json={"prompt": "x", "image_size": {"width": 16, "height": 16}},
        headers={"Authorization": f"Bearer {KEY}", "Idempotency-Key": "k" * (limit + extra)},
        timeout=10,
    )
    if extra:
        assert answer.status_code == 400, answer.status_code
        assert answer.json()["field"] == "Idempotency-Key"
    else:
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "field",
    [
        "num_images",
        "image_size",
        "sync_mode",
        "provider",
        "source_url",
        "strength",
        "guidance_scale",
        "num_inference_steps",
        "seed",
    ],
)
def test_null_for_an_optional_field_means_not_given(
    fuzz_server: ThreadedServer, field: str
) -> None:
    answer = requests.post(
        f"{fuzz_server.base_url}/images/generate",
        json={"prompt": "x", "image_size": {"width": 16, "height": 16}, field: None},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
