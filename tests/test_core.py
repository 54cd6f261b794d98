"""The sans-I/O core, without a network: protocol, status machine, schedules, models, paths."""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import radient_async as ra
from radient_async import _endpoint as endpoint
from radient_async import _protocol as protocol
from radient_async._convert import request_to_wire
from radient_async._models import GenerationRequest
from radient_async._paths import safe_filename
from radient_async._polling import PollPolicy, poll_delay
from radient_async._ratelimit import AimdState
from radient_async._retry import RetryPolicy, backoff_delay, parse_retry_after
from radient_async._status import StatusMachine, Step, parse_status

KEY = "sk-core-test-123456"
API = endpoint.ApiEndpoint.create("https://api.example.com/v1/", KEY, allow_insecure_http=False)


def response(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> endpoint.HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return endpoint.HttpResponse(status, headers or {"Content-Type": "application/json"}, raw)


# -- requests ---------------------------------------------------------------------------------


def test_generate_request_body_headers_and_key_hygiene() -> None:
    request = GenerationRequest(prompt="p", image_size=(64, 32), seed=3, extra={"style": "x"})
    http = protocol.build_generate(API, request, "idem-1")
    assert (http.method, http.url) == ("POST", "https://api.example.com/v1/images/generate")
    assert json.loads(http.body or b"") == {
        "prompt": "p",
        "num_images": 1,
        "image_size": {"width": 64, "height": 32},
        "sync_mode": False,
        "seed": 3,
        "style": "x",
    }
    assert http.headers["Authorization"] == f"Bearer {KEY}"
    assert http.headers["Idempotency-Key"] == "idem-1"
    assert KEY not in repr(http)
    assert KEY not in repr(API)


def test_status_request_encodes_its_query() -> None:
    http = protocol.build_status(API, "id with&amp", "prov/1")
    assert http.url == (
        "https://api.example.com/v1/images/status?request_id=id+with%26amp&provider=prov%2F1"
    )


@pytest.mark.parametrize(
    ("url", "insecure", "ok"),
    [
        ("https://api.example.com/v1", False, True),
        ("http://127.0.0.1:8000/v1", False, True),
        ("http://[::1]:8000/v1", False, True),
        ("http://localhost/v1", False, True),
        ("http://api.example.com/v1", False, False),
        ("http://api.example.com/v1", True, True),
        ("ftp://api.example.com/v1", True, False),
        ("https://user:pw@api.example.com/v1", False, False),
        ("https:///v1", False, False),
        ("https://api.example.com/v1?x=1", False, False),
    ],
)
def test_base_url_rules(url: str, insecure: bool, ok: bool) -> None:
    if ok:
        assert endpoint.ApiEndpoint.create(url, KEY, allow_insecure_http=insecure)
    else:
        with pytest.raises(ra.ConfigurationError):
            endpoint.ApiEndpoint.create(url, KEY, allow_insecure_http=insecure)


@pytest.mark.parametrize("key", ["", "   ", "a\nb"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(ra.ConfigurationError):
        endpoint.ApiEndpoint.create("https://a.example/v1", key, allow_insecure_http=False)


# -- responses ---------------------------------------------------------------------------------


def test_guide_job_json_deciphers_and_ignores_unknown_fields() -> None:
    body = {
        "request_id": "imgreq_x",
        "status": "COMPLETED",
        "provider": "default",
        "error": None,
        "images": [
            {
                "url": "https://cdn/x.png",
                "width": 1024,
                "height": 1024,
                "content_type": "image/png",
                "nsfw": False,
            }
        ],
        "new_field": {"nested": True},
    }
    job = protocol.decipher_job(response(200, body), API)
    assert job.status == "COMPLETED"
    assert job.images is not None
    assert job.images[0].width == 1024


@pytest.mark.parametrize(
    "body",
    [
        {"status": "PROCESSING"},
        {"request_id": 5, "status": "PROCESSING"},
        {"request_id": "x", "status": None},
        {"request_id": "x", "status": "COMPLETED", "images": [{"url": 3}]},
        {"request_id": "x", "status": "COMPLETED", "images": [{"url": "u", "width": "big"}]},
        {"request_id": "x", "status": "COMPLETED", "images": {"url": "u"}},
        {"request_id": "", "status": "COMPLETED"},
        [1, 2, 3],
        b"",
        b"<html>oops</html>",
    ],
)
def test_wrong_shapes_are_malformed_response_errors(body: Any) -> None:
    with pytest.raises(ra.MalformedResponseError):
        protocol.decipher_job(response(200, body), API)


def test_error_object_is_tolerated_and_mismatched_id_refused() -> None:
    body = {"request_id": "x", "status": "FAILED", "error": {"message": "nsfw"}}
    assert protocol.decipher_job(response(200, body), API).error == "nsfw"
    with pytest.raises(ra.MalformedResponseError, match="asked for job y"):
        protocol.decipher_job(response(200, body), API, request_id="y")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ra.BadRequestError),
        (401, ra.AuthenticationError),
        (403, ra.PermissionDeniedError),
        (404, ra.NotFoundError),
        (409, ra.ConflictError),
        (413, ra.BadRequestError),
        (422, ra.BadRequestError),
        (429, ra.RateLimitError),
        (500, ra.ServerError),
        (503, ra.ServerError),
        (418, ra.BadRequestError),
    ],
)
def test_error_statuses_map_to_typed_errors(status: int, cls: type[ra.APIError]) -> None:
    body = {"error": "nope", "code": "c", "field": "num_images"}
    error = protocol.error_for_response(response(status, body, {"Retry-After": "3"}), API)
    assert type(error) is cls
    assert (error.status, error.code, error.field) == (status, "c", "num_images")
    assert "nope" in str(error)
    if cls is ra.RateLimitError:
        assert error.retry_after == 3


def test_html_error_body_is_described_and_echoed_key_redacted() -> None:
    html = f"<html><body>bad gateway for Bearer {KEY}</body></html>".encode()
    error = protocol.error_for_response(response(502, html, {"Content-Type": "text/html"}), API)
    assert isinstance(error, ra.ServerError)
    assert "text/html" in str(error)
    assert KEY not in str(error)
    assert KEY not in error.body


@pytest.mark.parametrize(
    ("status", "location", "method", "keeps_auth"),
    [
        (302, "/v1/elsewhere", "GET", True),
        (307, "https://evil.example/x", "POST", False),
        (303, "https://api.example.com/v1/x", "GET", True),
    ],
)
def test_redirects_strip_the_key_off_origin(
    status: int, location: str, method: str, keeps_auth: bool
) -> None:
    request = protocol.build_generate(API, GenerationRequest(prompt="p"), "k")
    follow = protocol.redirect_for(request, response(status, b"", {"Location": location}), API)
    assert follow is not None
    assert ("Authorization" in follow.headers) is keeps_auth
    assert follow.method == method
    assert (follow.body is None) is (method == "GET")


def test_redirects_to_other_schemes_are_refused_and_non_redirects_ignored() -> None:
    request = protocol.build_providers(API)
    with pytest.raises(ra.MalformedResponseError):
        protocol.redirect_for(request, response(302, b"", {"Location": "file:///etc/passwd"}), API)
    assert protocol.redirect_for(request, response(200, b"{}"), API) is None


# -- status machine ----------------------------------------------------------------------------


def test_status_machine_table() -> None:
    machine = StatusMachine(max_unknown=3)
    assert machine.observe("PROCESSING") is Step.WAIT
    assert machine.observe("completed") is Step.COMPLETE
    assert machine.observe("PROCESSING") is Step.COMPLETE  # terminal states are sticky
    failed = StatusMachine()
    assert failed.observe("FAILED") is Step.FAIL
    assert parse_status(" Failed ") is ra.JobStatus.FAILED


def test_unknown_statuses_are_tolerated_then_given_up() -> None:
    machine = StatusMachine(max_unknown=3)
    assert [machine.observe("QUEUED") for _ in range(2)] == [Step.WAIT, Step.WAIT]
    assert machine.observe("PROCESSING") is Step.WAIT  # a known status resets the streak
    assert [machine.observe("WEIRD") for _ in range(3)] == [Step.WAIT, Step.WAIT, Step.GIVE_UP]
    assert machine.state is ra.JobStatus.UNKNOWN


# -- retry, polling, rate limiting ------------------------------------------------------------


def test_backoff_grows_caps_and_jitters_down() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=4, jitter=0.25)
    rng = random.Random(1)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delay = backoff_delay(policy, attempt, rng)
        assert base * 0.75 <= delay <= base


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"poll-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    now = time.time()
    future = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": future}, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0


def test_poll_schedule_quick_first_then_growing_and_clamped() -> None:
    policy = PollPolicy(first_delay=0.1, min_interval=0.1, max_interval=2, growth=0.25, jitter=0)
    assert poll_delay(policy, 0) == 0.1
    assert poll_delay(policy, 0.2) == 0.1
    assert poll_delay(policy, 4) == 1.0
    assert poll_delay(policy, 100) == 2
    assert poll_delay(policy, 3, hint=0.001) == 0.05
    assert poll_delay(policy, 3, hint=60) == 2


def test_poll_jitter_spreads_within_bounds() -> None:
    policy = PollPolicy(jitter=0.2)
    delays = {poll_delay(policy, 10, rng=random.Random(seed)) for seed in range(50)}
    assert len(delays) > 40
    assert all(2.0 <= d <= 3.0 for d in delays)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_delay": 0},
        {"growth": 1.5},
        {"jitter": -0.1},
        {"min_interval": 5, "max_interval": 1},
        {"timeout": -1},
        {"max_unknown": 0},
    ],
)
def test_poll_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollPolicy(**kwargs)


def test_aimd_cuts_on_429_blocks_then_recovers() -> None:
    state = AimdState(decrease=0.5, recovery_per_second=0.1, cooldown=1.0)
    for i in range(100):
        assert state.reserve(i / 100) == 0  # unlimited: 100 requests in the first second
    state.on_throttled(1.0, retry_after=2.0)
    assert state.rate == pytest.approx(50)
    assert state.reserve(1.0) == pytest.approx(2.0)  # blocked until Retry-After has passed
    state.on_throttled(1.5, retry_after=None)
    assert state.rate == pytest.approx(50)  # within the cooldown: no second cut
    first, second = state.reserve(3.0), state.reserve(3.0)
    assert second - first == pytest.approx(1 / 50)
    state.on_success(3.0)  # 1.5 s after the last 429: linear, 10% of the ceiling per second
    assert state.rate == pytest.approx(50 + 0.1 * 100 * 2)
    state.on_success(6.0)  # quiet for over 2 s: probing up by half the rate per second
    assert state.rate == pytest.approx(70 + 0.5 * 70 * 3)
    state.on_success(60.0)
    assert state.rate is None  # far above demand: pacing off again


def test_aimd_scattered_429s_cut_once_and_never_compound() -> None:
    state = AimdState()
    for i in range(3000):
        now = i / 1000
        state.reserve(now)
        if i % 50 == 49:  # 2% of answers: a flaky proxy, not a rate limit
            state.on_throttled(now, retry_after=0.01)
        else:
            state.on_success(now)
    assert state.last_decrease == pytest.approx(0.049)  # only the first 429 cut the rate
    assert state.rate is not None
    assert state.rate > 0.7 * 50  # and it has been recovering since
    assert state.reserve(2.999) > 0  # the last Retry-After still holds new requests back


# -- models and file names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"num_images": 0}, "num_images"),
        ({"num_images": True}, "num_images"),
        ({"image_size": "huge"}, "image_size"),
        ({"image_size": (8, 8)}, "image_size.width"),
        ({"strength": 0.5}, "strength"),
        ({"guidance_scale": 0}, "guidance_scale"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"seed": -1}, "seed"),
        ({"provider": ""}, "provider"),
        ({"sync_mode": "yes"}, "sync_mode"),
        ({"extra": {"prompt": "x"}}, "extra"),
        ({"source_url": "file:///etc/passwd"}, "source"),
    ],
)
def test_request_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ra.ValidationError) as caught:
        GenerationRequest(**{"prompt": "ok", **kwargs})
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_requests_are_frozen_and_wire_is_strict() -> None:
    request = GenerationRequest(prompt="p", image_size={"width": 20, "height": 30})
    with pytest.raises(AttributeError):
        request.prompt = "q"  # type: ignore[misc]
    assert request_to_wire(request)["image_size"] == {"width": 20, "height": 30}
    assert "strength" not in request_to_wire(request)


@pytest.mark.parametrize(
    ("request_id", "expected"),
    [
        ("imgreq_abc", "imgreq_abc_0.png"),
        ("../../etc/passwd", "etc_passwd_0.png"),
        ("/abs/path", "abs_path_0.png"),
        ("", "image_0.png"),
        ("..", "image_0.png"),
    ],
)
def test_safe_filenames(request_id: str, expected: str) -> None:
    assert safe_filename(request_id, 0, ".png") == expected


def test_public_api_is_sorted_and_complete() -> None:
    def isort_key(name: str) -> tuple[int, str]:  # constants, then classes, then the rest
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert ra.__all__ == sorted(ra.__all__, key=isort_key)
    assert len(set(ra.__all__)) == len(ra.__all__)
    import types

    public = {
        name
        for name in dir(ra)
        if not name.startswith(("_", "@"))
        and name != "annotations"  # from __future__
        and not isinstance(getattr(ra, name), types.ModuleType)
    }
    assert set(ra.__all__) - {"__version__"} == public


def test_every_error_is_a_radient_error() -> None:
    for name in ra.__all__:
        value = getattr(ra, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, ra.RadientError)
    assert issubclass(ra.JobTimeout, TimeoutError)
    assert issubclass(ra.APITimeoutError, TimeoutError)


# -- properties: only the library's own errors come out ----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
job_like = st.fixed_dictionaries(
    {},
    optional={
        "request_id": json_values | st.text(max_size=8),
        "status": json_values,
        "images": json_values,
        "error": json_values,
        "provider": json_values,
        "seed": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(status=st.integers(100, 599), body=json_values | job_like)
def test_decipher_job_only_raises_radient_errors(status: int, body: Any) -> None:
    with contextlib.suppress(ra.RadientError):
        protocol.decipher_job(response(status, json.dumps(body).encode()), API)


@settings(max_examples=200, deadline=None)
@given(status=st.integers(100, 599), raw=st.binary(max_size=64))
def test_raw_bytes_only_raise_radient_errors(status: int, raw: bytes) -> None:
    for decipher in (protocol.decipher_job, protocol.decipher_providers):
        with contextlib.suppress(ra.RadientError):
            decipher(response(status, raw), API)
    assert isinstance(
        protocol.error_for_response(response(max(status, 400), raw), API), ra.APIError
    )


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    for name in ("Retry-After", "retry-after-ms", "poll-after-ms"):
        result = parse_retry_after({name: value})
        assert result is None or result >= 0


@settings(max_examples=200, deadline=None)
@given(statuses=st.lists(st.text(max_size=12), max_size=30))
def test_status_machine_never_raises(statuses: list[str]) -> None:
    machine = StatusMachine(max_unknown=5)
    for raw in statuses:
        assert isinstance(machine.observe(raw), Step)


@settings(max_examples=300, deadline=None)
@given(request_id=st.text(max_size=60), index=st.integers(0, 100))
def test_safe_filename_never_escapes(request_id: str, index: int) -> None:
    name = safe_filename(request_id, index, ".png")
    assert "/" not in name
    assert "\\" not in name
    assert not name.startswith(".")
    assert name not in (".", "..")


@settings(max_examples=200, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "prompt": json_values,
            "num_images": json_values,
            "image_size": json_values,
            "strength": json_values,
            "seed": json_values,
            "provider": json_values,
            "guidance_scale": json_values,
            "sync_mode": json_values,
        },
    )
)
def test_request_construction_only_raises_validation_errors(fields: dict[str, Any]) -> None:
    with contextlib.suppress(ra.ValidationError):
        GenerationRequest(**{"prompt": "ok", **fields})
