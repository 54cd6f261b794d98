"""The private converter: tolerant of new fields, strict on types, requests to wire JSON."""

from __future__ import annotations

import json
from typing import Any

import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import radient_async as ra
from radient_async._convert import (
    WireImage,
    WireJob,
    WireProviders,
    request_to_wire,
    structure,
    structure_job,
)
from radient_async._models import GenerationRequest, ImageSize

SOURCE = "https://img.example.com/in.png"


# -- structuring responses -----------------------------------------------------------------------


def test_a_full_job_structures_to_typed_values() -> None:
    data = {
        "request_id": "imgreq_1",
        "status": "COMPLETED",
        "images": [
            {"url": "https://cdn/0.png", "width": 512, "height": 512, "content_type": "image/png"},
            {"url": "https://cdn/1.png"},
        ],
        "provider": "sketch",
        "error": None,
        "seed": 7,
    }
    assert structure(data, WireJob, what="job") == WireJob(
        request_id="imgreq_1",
        status="COMPLETED",
        images=[
            WireImage("https://cdn/0.png", 512, 512, "image/png"),
            WireImage("https://cdn/1.png"),
        ],
        provider="sketch",
        error=None,
        seed=7,
    )


def test_a_minimal_job_gets_defaults() -> None:
    job = structure({"request_id": "r", "status": "PROCESSING"}, WireJob, what="job")
    assert job == WireJob("r", "PROCESSING")
    assert (job.images, job.provider, job.error, job.seed) == (None, None, None, None)


def test_unknown_fields_are_ignored() -> None:
    data = {
        "request_id": "r",
        "status": "COMPLETED",
        "images": [{"url": "u", "nsfw": True, "meta": {"x": [1]}}],
        "timings": {"inference": 0.5},
        "queue_position": None,
    }
    job = structure(data, WireJob, what="job")
    assert job == WireJob("r", "COMPLETED", images=[WireImage("u")])
    providers = structure({"providers": ["a"], "next_page": None}, WireProviders, what="providers")
    assert providers == WireProviders(["a"])


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (None, None),
        ("", ""),
        ("content policy violation", "content policy violation"),
        ({"message": "nsfw", "code": "policy"}, "nsfw"),
    ],
)
def test_error_is_a_string_or_an_object_with_a_message(error: Any, text: str | None) -> None:
    data = {"request_id": "r", "status": "FAILED", "error": error}
    assert structure(data, WireJob, what="job").error == text


@pytest.mark.parametrize("error", [{"code": "x"}, {"message": 3}, ["a", "b"], 42])
def test_an_odd_error_value_still_becomes_some_text(error: Any) -> None:
    data = {"request_id": "r", "status": "FAILED", "error": error}
    text = structure(data, WireJob, what="job").error
    assert isinstance(text, str)
    assert text  # never lose the fact that there was an error


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"status": "x"}, "job.request_id"),
        ({"request_id": "r"}, "job.status"),
        ({"request_id": 1, "status": "x"}, "job.request_id"),
        ({"request_id": "r", "status": 1.5}, "job.status"),
        ({"request_id": "r", "status": True}, "job.status"),
        ({"request_id": "r", "status": "x", "provider": ["p"]}, "job.provider"),
        ({"request_id": "r", "status": "x", "seed": "1"}, "job.seed"),
        ({"request_id": "r", "status": "x", "seed": 1.0}, "job.seed"),
        ({"request_id": "r", "status": "x", "seed": True}, "job.seed"),
        ({"request_id": "r", "status": "x", "images": [{"url": 1}]}, "job.images[0].url"),
        ({"request_id": "r", "status": "x", "images": [{}]}, "job.images[0].url"),
        (
            {
                "request_id": "r",
                "status": "x",
                "images": [{"url": "u"}, {"url": "u", "width": 1.5}],
            },
            "job.images[1].width",
        ),
        (
            {"request_id": "r", "status": "x", "images": [{"url": "u", "height": False}]},
            "job.images[0].height",
        ),
        (
            {"request_id": "r", "status": "x", "images": [{"url": "u", "content_type": 1}]},
            "job.images[0].content_type",
        ),
    ],
)
def test_wrong_types_name_their_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ra.MalformedResponseError, match=r"unexpected job shape") as caught:
        structure(data, WireJob, what="job")
    assert path in str(caught.value)
    assert caught.value.__cause__ is None  # no cattrs internals chained onto the user's error
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({}, "providers.providers"),
        ({"providers": None}, "providers.providers"),
        ({"providers": [1]}, "providers.providers[0]"),
        ({"providers": ["ok", None]}, "providers.providers[1]"),
    ],
)
def test_wrong_providers_name_their_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ra.MalformedResponseError, match="unexpected providers shape") as caught:
        structure(data, WireProviders, what="providers")
    assert path in str(caught.value)


@pytest.mark.parametrize(
    ("data", "kind"), [([], "list"), ("x", "str"), (None, "NoneType"), (3, "int"), (1.5, "float")]
)
def test_non_objects_are_refused_up_front(data: Any, kind: str) -> None:
    with pytest.raises(ra.MalformedResponseError, match=f"job: expected a JSON object, got {kind}"):
        structure(data, WireJob, what="job")


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        ({"providers": "default"}, WireProviders),
        ({"providers": {"default": True}}, WireProviders),
        ({"request_id": "r", "status": "x", "images": ""}, WireJob),
        ({"request_id": "r", "status": "x", "images": {}}, WireJob),
    ],
)
def test_a_list_field_must_be_a_json_array(data: dict[str, Any], cls: type[Any]) -> None:
    with pytest.raises(ra.MalformedResponseError):
        structure(data, cls, what="x")


def test_the_global_converter_is_left_alone() -> None:
    # Our strictness lives in a private converter; cattrs' global one still coerces.
    assert cattrs.structure(5, str) == "5"


# -- requests to the wire ------------------------------------------------------------------------


def test_a_minimal_request_on_the_wire() -> None:
    assert request_to_wire(GenerationRequest(prompt="p")) == {
        "prompt": "p",
        "num_images": 1,
        "sync_mode": False,
    }


def test_every_field_on_the_wire() -> None:
    request = GenerationRequest(
        prompt="p",
        num_images=4,
        image_size=ImageSize(640, 480),
        sync_mode=True,
        provider="sketch",
        source_url=SOURCE,
        strength=0.5,
        guidance_scale=3.5,
        num_inference_steps=30,
        seed=123,
        extra={"style": "noir", "loras": [{"path": "a", "scale": 1}]},
    )
    wire = request_to_wire(request)
    assert wire == {
        "prompt": "p",
        "num_images": 4,
        "image_size": {"width": 640, "height": 480},
        "sync_mode": True,
        "provider": "sketch",
        "source_url": SOURCE,
        "strength": 0.5,
        "guidance_scale": 3.5,
        "num_inference_steps": 30,
        "seed": 123,
        "style": "noir",
        "loras": [{"path": "a", "scale": 1}],
    }
    assert json.loads(json.dumps(wire)) == wire  # plain JSON types only


@pytest.mark.parametrize(
    ("fields", "present", "absent"),
    [
        ({"seed": 0}, {"seed": 0}, ["strength", "guidance_scale", "provider"]),
        ({"source_url": SOURCE, "strength": 0}, {"strength": 0}, ["seed"]),
        ({"image_size": "square"}, {"image_size": "square"}, ["seed", "source_url"]),
        ({"image_size": None}, {}, ["image_size"]),
    ],
)
def test_none_fields_are_omitted_but_falsy_values_are_kept(
    fields: dict[str, Any], present: dict[str, Any], absent: list[str]
) -> None:
    wire = request_to_wire(GenerationRequest(prompt="p", **fields))
    for name, value in present.items():
        assert wire[name] == value
    for name in absent:
        assert name not in wire


def test_extra_is_passed_through_without_touching_the_request() -> None:
    request = GenerationRequest(prompt="p", extra={"enable_safety_checker": False})
    wire = request_to_wire(request)
    assert wire["enable_safety_checker"] is False
    wire["prompt"] = "mutated"
    wire["enable_safety_checker"] = True
    assert request.prompt == "p"
    assert request.extra["enable_safety_checker"] is False


# -- property: a job survives the round trip -----------------------------------------------------

texts = st.text(min_size=1, max_size=12)
wire_jobs = st.builds(
    WireJob,
    request_id=texts,
    status=st.sampled_from(["PROCESSING", "COMPLETED", "FAILED"]) | texts,
    images=st.none()
    | st.lists(
        st.builds(
            WireImage,
            url=texts,
            width=st.none() | st.integers(0, 10_000),
            height=st.none() | st.integers(0, 10_000),
            content_type=st.none() | texts,
        ),
        max_size=3,
    ),
    provider=st.none() | texts,
    error=st.none() | st.text(max_size=12),
    seed=st.none() | st.integers(0, 2**63),
)


@settings(max_examples=200, deadline=None)
@given(job=wire_jobs, junk=st.dictionaries(st.text(max_size=6), st.integers(), max_size=3))
def test_jobs_round_trip_through_json(job: WireJob, junk: dict[str, int]) -> None:
    data = {**junk, **json.loads(json.dumps(cattrs.unstructure(job)))}
    assert structure(data, WireJob, what="job") == job


# -- property: the hand-written job reader agrees with the converter ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(texts, inner, max_size=2),
    max_leaves=4,
)
_JOB_FIELDS = ["request_id", "status", "images", "provider", "error", "seed"]
_IMAGE_FIELDS = ["url", "width", "height", "content_type"]


@st.composite
def job_answers(draw: st.DrawFn) -> dict[str, Any]:
    """A well-typed job answer with a field or two (of the job, of an image) replaced by any
    JSON value (a bool for an int, a number for a string, a list, ...) or left out."""
    data: dict[str, Any] = cattrs.unstructure(draw(wire_jobs))
    for key in draw(st.lists(st.sampled_from(_JOB_FIELDS), max_size=2)):
        data[key] = draw(json_values)
        if draw(st.booleans()):
            del data[key]
    images = data.get("images")
    if isinstance(images, list) and images and isinstance(images[0], dict) and draw(st.booleans()):
        entry = dict(images[0])
        entry[draw(st.sampled_from(_IMAGE_FIELDS))] = draw(json_values)
        images[0] = entry if draw(st.booleans()) else draw(json_values)
    return data


def _by_converter(data: Any) -> WireJob | str:
    try:
        return structure(data, WireJob, what="job")  # type: ignore[no-any-return]
    except ra.MalformedResponseError as exc:
        return str(exc)


def _by_hand(data: Any) -> WireJob | str:
    try:
        return structure_job(data)
    except ra.MalformedResponseError as exc:
        return str(exc)


@settings(max_examples=1000, deadline=None)
@given(data=job_answers() | json_values)
def test_the_fast_job_reader_gives_what_the_converter_gives(data: Any) -> None:
    """Same job, or the same error message, for any decoded JSON."""
    assert _by_hand(data) == _by_converter(data)


@settings(max_examples=200, deadline=None)
@given(job=wire_jobs)
def test_the_fast_job_reader_reads_every_well_typed_job(job: WireJob) -> None:
    assert structure_job(json.loads(json.dumps(cattrs.unstructure(job)))) == job
