"""Public value types: request validation field by field, sizes, images, job states."""

from __future__ import annotations

import base64
import math
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import radient_async as ra
from radient_async._models import (
    IMAGE_SIZES,
    MAX_NUM_IMAGES,
    GenerationRequest,
    Image,
    ImageSize,
    JobStatus,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
SOURCE = "https://img.example.com/in.png"


def request(**fields: Any) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a lighthouse", **fields})


def field_of_error(**fields: Any) -> str:
    with pytest.raises(ra.ValidationError) as caught:
        request(**fields)
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, ra.RadientError)
    assert str(error).startswith(f"{error.field}: ")
    return error.field


# -- defaults and accepted values ----------------------------------------------------------------


def test_defaults() -> None:
    req = GenerationRequest(prompt="p")
    assert (req.num_images, req.image_size, req.sync_mode, req.provider, req.source_url) == (
        1,
        None,
        False,
        None,
        None,
    )
    assert (req.strength, req.guidance_scale, req.num_inference_steps, req.seed) == (
        None,
        None,
        None,
        None,
    )
    assert dict(req.extra) == {}


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": "x"},
        {"prompt": "x" * 10_000},
        {"prompt": "  leading and trailing spaces are kept  "},
        {"prompt": "émoji 🎨 and 中文"},
        {"num_images": 1},
        {"num_images": MAX_NUM_IMAGES},
        *({"image_size": name} for name in IMAGE_SIZES),
        {"image_size": ImageSize(16, 16)},
        {"image_size": ImageSize(4096, 4096)},
        {"sync_mode": True},
        {"provider": "sketch"},
        {"source_url": SOURCE},
        {"source_url": "http://127.0.0.1:8000/x.jpg"},
        {"source_url": PNG_URI},
        {"source_url": SOURCE, "strength": 0},
        {"source_url": SOURCE, "strength": 1},
        {"source_url": SOURCE, "strength": 0.35},
        {"guidance_scale": 1e-9},
        {"guidance_scale": 50},
        {"guidance_scale": 7.5},
        {"num_inference_steps": 1},
        {"num_inference_steps": 200},
        {"seed": 0},
        {"seed": 2**63 - 1},
        {"extra": {"style": "noir", "nested": {"a": [1, 2]}}},
        {"extra": None},
    ],
)
def test_valid_requests(fields: dict[str, Any]) -> None:
    req = request(**fields)
    for name, value in fields.items():
        if name != "extra":
            assert getattr(req, name) == value


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n\t"}, "prompt"),
        ({"prompt": "x" * 10_001}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"prompt": b"bytes"}, "prompt"),
        ({"prompt": ["a"]}, "prompt"),
        ({"num_images": 0}, "num_images"),
        ({"num_images": -1}, "num_images"),
        ({"num_images": MAX_NUM_IMAGES + 1}, "num_images"),
        ({"num_images": 2.0}, "num_images"),
        ({"num_images": "2"}, "num_images"),
        ({"num_images": True}, "num_images"),
        ({"num_images": None}, "num_images"),
        ({"image_size": "huge"}, "image_size"),
        ({"image_size": "SQUARE_HD"}, "image_size"),
        ({"image_size": ""}, "image_size"),
        ({"image_size": 512}, "image_size"),
        ({"image_size": [512, 512]}, "image_size"),
        ({"image_size": (512,)}, "image_size"),
        ({"image_size": (512, 512, 3)}, "image_size"),
        ({"image_size": {"width": 512}}, "image_size"),
        ({"image_size": {"width": 512, "height": 512, "depth": 3}}, "image_size"),
        ({"image_size": (15, 512)}, "image_size.width"),
        ({"image_size": (512, 4097)}, "image_size.height"),
        ({"image_size": (512.0, 512)}, "image_size.width"),
        ({"image_size": (True, 512)}, "image_size.width"),
        ({"image_size": {"width": 512, "height": "512"}}, "image_size.height"),
        ({"sync_mode": "yes"}, "sync_mode"),
        ({"sync_mode": 1}, "sync_mode"),
        ({"sync_mode": None}, "sync_mode"),
        ({"provider": ""}, "provider"),
        ({"provider": "  "}, "provider"),
        ({"provider": 3}, "provider"),
        ({"source_url": "ftp://img.example.com/x.png"}, "source"),
        ({"source_url": "file:///etc/passwd"}, "source"),
        ({"source_url": "https://user:pw@img.example.com/x.png"}, "source"),
        ({"source_url": "https:///x.png"}, "source"),
        ({"source_url": "https://img.example.com/a b.png"}, "source"),
        ({"source_url": "data:text/plain;base64,aGk="}, "source"),
        ({"source_url": "data:image/png;base64,!!!"}, "source"),
        ({"source_url": "data:image/png," + PNG.decode("latin-1")}, "source"),
        (
            {"source_url": "data:image/png;base64," + base64.b64encode(JPEG).decode()},
            "source",
        ),
        ({"source_url": 42}, "source"),
        ({"strength": 0.5}, "strength"),  # only for image-to-image
        ({"source_url": SOURCE, "strength": -0.01}, "strength"),
        ({"source_url": SOURCE, "strength": 1.01}, "strength"),
        ({"source_url": SOURCE, "strength": math.nan}, "strength"),
        ({"source_url": SOURCE, "strength": "0.5"}, "strength"),
        ({"source_url": SOURCE, "strength": True}, "strength"),
        ({"guidance_scale": 0}, "guidance_scale"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"guidance_scale": 50.0001}, "guidance_scale"),
        ({"guidance_scale": math.inf}, "guidance_scale"),
        ({"guidance_scale": math.nan}, "guidance_scale"),
        ({"guidance_scale": "7"}, "guidance_scale"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": 201}, "num_inference_steps"),
        ({"num_inference_steps": 20.0}, "num_inference_steps"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"seed": "42"}, "seed"),
        ({"seed": False}, "seed"),
        ({"extra": {"prompt": "shadow"}}, "extra"),
        ({"extra": {"seed": 1, "style": "x"}}, "extra"),
    ],
)
def test_invalid_requests_name_the_field(fields: dict[str, Any], field: str) -> None:
    assert field_of_error(**fields) == field


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"num_images": 9}, ["between 1 and 8", "9"]),
        ({"image_size": "huge"}, ["'huge'", "square_hd", "landscape_16_9"]),
        ({"prompt": "x" * 10_001}, ["10000"]),
        ({"guidance_scale": 0}, ["(0.0, 50.0]"]),
        ({"source_url": SOURCE, "strength": 2}, ["[0.0, 1.0]", "2"]),
        ({"extra": {"seed": 1}}, ["seed"]),
    ],
)
def test_validation_messages_are_informative(fields: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ra.ValidationError) as caught:
        request(**fields)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    "fields", [{"guidance_scale": 10**400}, {"source_url": SOURCE, "strength": -(10**400)}]
)
def test_huge_integers_are_validation_errors(fields: dict[str, Any]) -> None:
    assert field_of_error(**fields) in ("guidance_scale", "strength")


@pytest.mark.parametrize("extra", [5, "abc", [1, 2], [("a", 1)], object()])
def test_extra_that_is_not_a_mapping_is_a_validation_error(extra: Any) -> None:
    assert field_of_error(extra=extra) == "extra"


@pytest.mark.parametrize("extra", [{1: "x"}, {"when": object()}, {"raw": b"bytes"}])
def test_extra_must_be_json_with_string_keys(extra: Any) -> None:
    assert field_of_error(extra=extra) == "extra"


# -- coercions and immutability ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [(640, 480), {"width": 640, "height": 480}, MappingProxyType({"height": 480, "width": 640})],
)
def test_custom_sizes_are_coerced_to_image_size(value: Any) -> None:
    assert request(image_size=value).image_size == ImageSize(640, 480)


def test_image_size_is_a_frozen_validated_value() -> None:
    size = ImageSize(512, 768)
    assert (size.width, size.height) == (512, 768)
    assert size == ImageSize(512, 768)
    assert hash(size) == hash(ImageSize(512, 768))
    with pytest.raises(AttributeError):
        size.width = 1  # type: ignore[misc]
    for width, height, field in [(15, 16, "width"), (16, 4097, "height"), (16.0, 16, "width")]:
        with pytest.raises(ra.ValidationError, match=f"image_size.{field}"):
            ImageSize(width, height)  # type: ignore[arg-type]


def test_image_sizes_table_matches_the_guide() -> None:
    assert dict(IMAGE_SIZES) == {
        "square_hd": (1024, 1024),
        "square": (512, 512),
        "portrait_4_3": (768, 1024),
        "portrait_16_9": (576, 1024),
        "landscape_4_3": (1024, 768),
        "landscape_16_9": (1024, 576),
    }
    with pytest.raises(TypeError):
        IMAGE_SIZES["huge"] = (1, 1)  # type: ignore[index]


def test_requests_are_frozen_and_extra_is_a_private_copy() -> None:
    extra = {"style": "noir"}
    req = request(extra=extra)
    extra["style"] = "changed"
    extra["new"] = 1
    assert dict(req.extra) == {"style": "noir"}
    with pytest.raises(TypeError):
        req.extra["style"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        req.prompt = "other"  # type: ignore[misc]


def test_requests_compare_by_value() -> None:
    assert request(seed=1, extra={"a": 1}) == request(seed=1, extra={"a": 1})
    assert request(seed=1) != request(seed=2)


def test_requests_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        GenerationRequest("a prompt")  # type: ignore[misc]


def test_repr_is_short_and_hides_long_data() -> None:
    long_prompt = "word " * 1000
    req = request(prompt=long_prompt, source_url=PNG_URI, image_size=(64, 64))
    text = repr(req)
    assert text.startswith("GenerationRequest(prompt='word word")
    assert len(text) < 300
    assert "…" in text
    assert "ImageSize(width=64, height=64)" in text


# -- images --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "extension"),
    [
        ("image/png", ".png"),
        ("image/jpeg", ".jpg"),
        ("image/webp", ".webp"),
        ("image/gif", ".gif"),
        ("IMAGE/PNG", ".png"),
        ("image/jpeg; charset=binary", ".jpg"),
        (" image/webp ", ".webp"),
        (None, ".png"),
        ("", ".png"),
        ("image/x-not-a-real-type", ".png"),
    ],
)
def test_image_extension(content_type: str | None, extension: str) -> None:
    assert Image(url="https://cdn/x", content_type=content_type).extension == extension


@pytest.mark.parametrize(
    ("request_id", "index", "content_type", "filename"),
    [
        ("imgreq_abc", 0, "image/png", "imgreq_abc_0.png"),
        ("imgreq_abc", 3, "image/jpeg", "imgreq_abc_3.jpg"),
        ("../../etc/passwd", 0, "image/png", "etc_passwd_0.png"),
        ("", 1, None, "image_1.png"),
    ],
)
def test_image_filename_comes_from_request_id_and_index(
    request_id: str, index: int, content_type: str | None, filename: str
) -> None:
    image = Image(
        url="https://cdn.example.com/../../evil.sh",
        request_id=request_id,
        index=index,
        content_type=content_type,
    )
    assert image.filename == filename


def test_image_equality_ignores_the_fetcher() -> None:
    plain = Image(url="u", width=1, height=2, content_type="image/png", request_id="r")
    attached = Image(
        url="u", width=1, height=2, content_type="image/png", request_id="r", fetcher=object()
    )  # type: ignore[arg-type]
    assert plain == attached
    assert "fetcher" not in repr(attached)


def test_a_detached_image_says_so() -> None:
    import anyio

    async def read() -> bytes:
        return await Image(url="https://cdn/x.png").read()

    with pytest.raises(ra.SessionClosedError, match="not attached"):
        anyio.run(read)


# -- job states ----------------------------------------------------------------------------------


def test_job_status_values_and_terminality() -> None:
    assert [status.value for status in JobStatus] == [
        "PROCESSING",
        "COMPLETED",
        "FAILED",
        "UNKNOWN",
    ]
    assert {status for status in JobStatus if status.is_terminal} == {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
    }
    assert JobStatus("COMPLETED") is JobStatus.COMPLETED
    assert JobStatus.FAILED == "FAILED"  # a str enum: compares with the wire value


# -- property: only ValidationError comes out ----------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([*IMAGE_SIZES, SOURCE, PNG_URI, "data:image/png;base64,"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(
            st.sampled_from(["width", "height", "x"]) | st.text(max_size=6), inner, max_size=3
        )
    ),
    max_leaves=6,
)
FIELDS = [
    "prompt",
    "num_images",
    "image_size",
    "sync_mode",
    "provider",
    "source_url",
    "strength",
    "guidance_scale",
    "num_inference_steps",
    "seed",
]


def check_only_validation_errors(fields: dict[str, Any]) -> None:
    try:
        req = GenerationRequest(**{"prompt": "ok", **fields})
    except ra.ValidationError as error:
        field = error.field
    else:
        field = None
    if field is not None:
        assert field.split(".")[0] in {*FIELDS, "image_size", "source", "extra"}
        return
    assert isinstance(req.prompt, str)
    assert req.prompt.strip()
    assert isinstance(req.num_images, int)
    assert 1 <= req.num_images <= MAX_NUM_IMAGES
    assert (
        req.image_size is None
        or req.image_size in IMAGE_SIZES
        or (isinstance(req.image_size, ImageSize))
    )


@settings(max_examples=200, deadline=None)
@given(fields=st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, json_values)))
def test_arbitrary_field_values_raise_only_validation_errors(fields: dict[str, Any]) -> None:
    check_only_validation_errors(fields)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {"extra": json_values}, optional=dict.fromkeys(FIELDS, json_values)
    )
)
def test_arbitrary_kwargs_including_extra_raise_only_validation_errors(
    fields: dict[str, Any],
) -> None:
    check_only_validation_errors(fields)
