"""Bad input is never a 500: each becomes a 400/413/422/404 JSON error and creates nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

TINY = {"width": 32, "height": 32}


def _uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


BAD_BODIES: list[tuple[str, Any, int, str, str | None]] = [
    ("missing prompt", {"num_images": 1}, 422, "missing", "prompt"),
    ("null prompt", {"prompt": None}, 422, "missing", "prompt"),
    ("empty prompt", {"prompt": ""}, 422, "empty", "prompt"),
    ("blank prompt", {"prompt": " \n\t "}, 422, "empty", "prompt"),
    ("prompt a number", {"prompt": 5}, 400, "type", "prompt"),
    ("prompt a list", {"prompt": ["a"]}, 400, "type", "prompt"),
    ("prompt too long", {"prompt": "x" * 10_001}, 422, "out_of_range", "prompt"),
    ("num_images zero", {"prompt": "p", "num_images": 0}, 422, "out_of_range", "num_images"),
    ("num_images nine", {"prompt": "p", "num_images": 9}, 422, "out_of_range", "num_images"),
    ("num_images true", {"prompt": "p", "num_images": True}, 400, "type", "num_images"),
    ("num_images string", {"prompt": "p", "num_images": "2"}, 400, "type", "num_images"),
    ("num_images float", {"prompt": "p", "num_images": 2.0}, 400, "type", "num_images"),
    ("unknown size", {"prompt": "p", "image_size": "huge"}, 422, "unknown_value", "image_size"),
    ("size a number", {"prompt": "p", "image_size": 512}, 400, "type", "image_size"),
    ("size a list", {"prompt": "p", "image_size": [64, 64]}, 400, "type", "image_size"),
    (
        "side too small",
        {"prompt": "p", "image_size": {"width": 15, "height": 64}},
        422,
        "out_of_range",
        "image_size",
    ),
    (
        "side too large",
        {"prompt": "p", "image_size": {"width": 64, "height": 4097}},
        422,
        "out_of_range",
        "image_size",
    ),
    (
        "side missing",
        {"prompt": "p", "image_size": {"width": 64}},
        422,
        "missing",
        "image_size",
    ),
    (
        "side float",
        {"prompt": "p", "image_size": {"width": 64.0, "height": 64}},
        400,
        "type",
        "image_size",
    ),
    (
        "side bool",
        {"prompt": "p", "image_size": {"width": True, "height": 64}},
        400,
        "type",
        "image_size",
    ),
    ("sync_mode string", {"prompt": "p", "sync_mode": "yes"}, 400, "type", "sync_mode"),
    ("sync_mode number", {"prompt": "p", "sync_mode": 1}, 400, "type", "sync_mode"),
    ("provider unknown", {"prompt": "p", "provider": "dalle"}, 422, "unknown_value", "provider"),
    ("provider empty", {"prompt": "p", "provider": ""}, 422, "unknown_value", "provider"),
    ("provider number", {"prompt": "p", "provider": 3}, 400, "type", "provider"),
    ("strength above 1", {"prompt": "p", "strength": 1.01}, 422, "out_of_range", "strength"),
    ("strength below 0", {"prompt": "p", "strength": -0.1}, 422, "out_of_range", "strength"),
    ("strength string", {"prompt": "p", "strength": "0.5"}, 400, "type", "strength"),
    ("strength bool", {"prompt": "p", "strength": False}, 400, "type", "strength"),
    ("guidance zero", {"prompt": "p", "guidance_scale": 0}, 422, "out_of_range", "guidance_scale"),
    ("guidance 51", {"prompt": "p", "guidance_scale": 51}, 422, "out_of_range", "guidance_scale"),
    ("guidance string", {"prompt": "p", "guidance_scale": "7"}, 400, "type", "guidance_scale"),
    (
        "steps zero",
        {"prompt": "p", "num_inference_steps": 0},
        422,
        "out_of_range",
        "num_inference_steps",
    ),
    (
        "steps 201",
        {"prompt": "p", "num_inference_steps": 201},
        422,
        "out_of_range",
        "num_inference_steps",
    ),
    (
        "steps float",
        {"prompt": "p", "num_inference_steps": 2.5},
        400,
        "type",
        "num_inference_steps",
    ),
    ("seed negative", {"prompt": "p", "seed": -1}, 422, "out_of_range", "seed"),
    ("seed 2**63", {"prompt": "p", "seed": 2**63}, 422, "out_of_range", "seed"),
    ("seed string", {"prompt": "p", "seed": "1"}, 400, "type", "seed"),
    ("seed bool", {"prompt": "p", "seed": True}, 400, "type", "seed"),
    ("source a number", {"prompt": "p", "source_url": 7}, 400, "type", "source_url"),
    ("source empty", {"prompt": "p", "source_url": ""}, 422, "scheme", "source_url"),
    ("source ftp", {"prompt": "p", "source_url": "ftp://x/y.png"}, 422, "scheme", "source_url"),
    (
        "source file",
        {"prompt": "p", "source_url": "file:///etc/passwd"},
        422,
        "scheme",
        "source_url",
    ),
    (
        "data URI bad base64",
        {"prompt": "p", "source_url": "data:image/png;base64,@@@"},
        422,
        "invalid_source",
        "source_url",
    ),
    (
        "data URI not base64",
        {"prompt": "p", "source_url": "data:image/png,rawbytes"},
        422,
        "invalid_source",
        "source_url",
    ),
    (
        "data URI without comma",
        {"prompt": "p", "source_url": "data:image/png;base64"},
        422,
        "invalid_source",
        "source_url",
    ),
    (
        "data URI empty",
        {"prompt": "p", "source_url": "data:image/png;base64,"},
        422,
        "invalid_source",
        "source_url",
    ),
    (
        "data URI not an image",
        {"prompt": "p", "source_url": _uri(b"hello, not a picture")},
        422,
        "invalid_source",
        "source_url",
    ),
    (
        "data URI truncated PNG",
        {"prompt": "p", "source_url": _uri(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0")},
        422,
        "invalid_source",
        "source_url",
    ),
    (
        "data URI text mime",
        {"prompt": "p", "source_url": "data:text/plain;base64,aGk="},
        422,
        "invalid_source",
        "source_url",
    ),
    (
        "http URL without host",
        {"prompt": "p", "source_url": "http:///x.png"},
        422,
        "scheme",
        "source_url",
    ),
    (
        "http URL bad port",
        {"prompt": "p", "source_url": "http://127.0.0.1:99999/x.png"},
        422,
        "invalid_source",
        "source_url",
    ),
    ("body an array", [1, 2], 400, "type", None),
    ("body a string", "prompt", 400, "type", None),
    ("body null", None, 400, "type", None),
    ("invalid json", b"{not json", 400, "invalid_json", None),
    ("empty body", b"", 400, "invalid_json", None),
    ("not utf-8", b'{"prompt": "\xff\xfe"}', 400, "invalid_json", None),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json", None),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
async def test_bad_generate_bodies(
    api: Any, case: str, body: Any, status: int, code: str, field: str | None
) -> None:
    reply = await api.generate(body)
    assert reply.error == (status, code, field)
    assert reply.headers["Content-Type"].startswith("application/json")
    assert api.stats.jobs_created == 0


async def test_nan_and_infinite_numbers_are_rejected(api: Any) -> None:
    for raw in (
        b'{"prompt": "p", "strength": NaN}',
        b'{"prompt": "p", "strength": Infinity}',
        b'{"prompt": "p", "guidance_scale": NaN}',
    ):
        reply = await api.generate(raw)
        assert reply.status == 422
        assert reply.error[1] == "out_of_range"
    assert api.stats.jobs_created == 0


async def test_limits_themselves_are_accepted(api: Any) -> None:
    body = {
        "prompt": "x" * 10_000,
        "num_images": 8,
        "image_size": {"width": 16, "height": 16},
        "strength": 0,
        "guidance_scale": 50,
        "num_inference_steps": 200,
        "seed": 2**63 - 1,
    }
    job = await api.job(body)
    assert job["seed"] == 2**63 - 1
    job = await api.job(
        {**body, "strength": 1.0, "num_images": 1, "num_inference_steps": 1, "seed": 0}
    )
    assert job["seed"] == 0


async def test_oversized_body_is_413(start_server: Any) -> None:
    api = await start_server(max_body_bytes=4096)
    reply = await api.generate({"prompt": "x" * 5000})
    assert reply.error == (413, "too_large", None)
    assert api.stats.jobs_created == 0
    assert (await api.generate({"prompt": "fits"})).status == 200


async def test_oversized_source_is_413(start_server: Any, tools: Any) -> None:
    api = await start_server(max_source_bytes=2048)
    noisy = tools.encode(tools.solid((1, 2, 3), (200, 200)), "BMP")[:3000]
    reply = await api.generate({"prompt": "p", "source_url": tools.data_uri(noisy)})
    assert reply.error == (413, "too_large", "source_url")


async def test_overlong_idempotency_key_is_400(api: Any) -> None:
    reply = await api.generate({"prompt": "p"}, headers={"Idempotency-Key": "k" * 256})
    assert reply.error == (400, "invalid_header", "Idempotency-Key")


async def test_status_needs_a_request_id(api: Any) -> None:
    assert (await api.status(None)).error == (422, "missing", "request_id")
    assert (await api.status("")).error == (422, "missing", "request_id")


@pytest.mark.parametrize(
    "request_id", ["imgreq_nope", "imgreq_" + "0" * 24, "../etc/passwd", "x" * 500]
)
async def test_unknown_request_ids_are_404(api: Any, request_id: str) -> None:
    assert (await api.status(request_id)).error == (404, "not_found", "request_id")


async def test_files_of_unknown_unfinished_or_missing_images_are_404(start_server: Any) -> None:
    api = await start_server(latency=5)
    assert (await api.get(f"{api.base_url}/files/imgreq_nope/0.png")).error == (
        404,
        "not_found",
        None,
    )
    job = await api.job({"prompt": "slow", "image_size": TINY})
    unfinished = f"{api.base_url}/files/{job['request_id']}/0.png"
    assert (await api.get(unfinished)).status == 404
    api.controls.set_latency(0)
    done = await api.job({"prompt": "p", "sync_mode": True, "image_size": TINY})
    url = done["images"][0]["url"]
    assert (await api.get(url.replace("/0.png", "/1.png"))).status == 404
    assert (await api.get(url.replace("/0.png", "/99999999999999999999.png"))).status == 404
    assert (await api.get(url.replace("/0.png", "/-1.png"))).status == 404
    assert (await api.get(url.replace("/0.png", "/x.png"))).status == 404
    assert api.stats.downloads == 0


async def test_failed_jobs_have_no_files(api: Any) -> None:
    job = await api.job({"prompt": "[fail] me", "sync_mode": True, "image_size": TINY})
    assert job["status"] == "FAILED"
    url = f"{api.base_url}/files/{job['request_id']}/0.png"
    assert (await api.get(url)).status == 404


async def test_no_body_content_type_needed(api: Any) -> None:
    reply = await api.request(
        "POST", f"{api.base_url}/images/generate", data=b'{"prompt": "p"}', headers=api.auth
    )
    assert reply.status == 200
