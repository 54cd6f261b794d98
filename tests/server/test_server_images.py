"""Images: deterministic rendering, lazy and cached, padding, and image-to-image blending."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

pytestmark = pytest.mark.anyio

TINY = {"width": 32, "height": 32}
SMALL = {"width": 64, "height": 64}


async def _bytes(api: Any, body: dict[str, Any]) -> bytes:
    job = await api.job({"sync_mode": True, **body})
    reply = await api.get(job["images"][0]["url"])
    assert reply.status == 200
    data: bytes = reply.body
    return data


def _picture(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        return picture.convert("RGB")


async def test_same_inputs_same_bytes_across_servers(start_server: Any) -> None:
    first, second = await start_server(), await start_server()
    body = {"prompt": "a red kite", "seed": 42, "image_size": SMALL}
    assert await _bytes(first, body) == await _bytes(second, body)


async def test_different_prompts_seeds_indexes_providers_differ_visibly(
    api: Any, tools: Any
) -> None:
    base = {"prompt": "a red kite", "seed": 42, "image_size": SMALL}
    reference = _picture(await _bytes(api, base))
    variants = [
        {**base, "prompt": "a blue whale"},
        {**base, "seed": 43},
        {**base, "provider": "sketch"},
    ]
    for body in variants:
        other = _picture(await _bytes(api, body))
        assert tools.distance(reference, other) > 10, body
    job = await api.job({**base, "num_images": 2, "sync_mode": True})
    one, two = [_picture((await api.get(i["url"])).body) for i in job["images"]]
    assert tools.distance(one, two) > 10


async def test_sketch_is_greyscale(api: Any) -> None:
    picture = _picture(
        await _bytes(api, {"prompt": "x", "provider": "sketch", "image_size": SMALL})
    )
    raw = picture.tobytes()
    assert raw[0::3] == raw[1::3] == raw[2::3]


async def test_size_does_not_change_the_composition(api: Any, tools: Any) -> None:
    small = _picture(await _bytes(api, {"prompt": "hill", "seed": 1, "image_size": SMALL}))
    big = _picture(await _bytes(api, {"prompt": "hill", "seed": 1, "image_size": "square"}))
    assert big.size == (512, 512)
    assert tools.distance(small, big) < 15


async def test_rendering_is_lazy_and_cached(api: Any) -> None:
    job = await api.job({"prompt": "lazy", "num_images": 3, "sync_mode": True, "image_size": TINY})
    assert api.stats.images_rendered == 0
    url = job["images"][0]["url"]
    first = await api.get(url)
    second = await api.get(url)
    assert first.body == second.body
    assert api.stats.images_rendered == 1
    assert api.stats.downloads == 2


async def test_big_images_render_off_the_loop_once(api: Any, tools: Any) -> None:
    job = await api.job({"prompt": "big", "sync_mode": True, "image_size": "square_hd"})
    url = job["images"][0]["url"]
    replies = await asyncio.gather(*(api.get(url) for _ in range(4)))
    assert {r.status for r in replies} == {200}
    assert len({r.body for r in replies}) == 1
    assert tools.png_size(replies[0].body) == (1024, 1024)
    assert api.stats.images_rendered == 1


async def test_min_image_bytes_pads_to_a_valid_identical_picture(
    start_server: Any, tools: Any
) -> None:
    plain, padded = await start_server(), await start_server(min_image_bytes=100_000)
    body = {"prompt": "pad", "seed": 7, "image_size": TINY}
    small, big = await _bytes(plain, body), await _bytes(padded, body)
    assert len(small) < 100_000 <= len(big) <= 100_000 + 12
    assert _picture(big).tobytes() == _picture(small).tobytes()
    assert b"raDp" in big


async def test_rendered_cache_is_bounded(start_server: Any) -> None:
    api = await start_server(render_cache_bytes=1)
    for seed in range(3):
        await _bytes(api, {"prompt": "evict", "seed": seed, "image_size": TINY})
    assert api.server.state.images.held_bytes < 2000  # only the last image is kept
    await _bytes(api, {"prompt": "evict", "seed": 0, "image_size": TINY})
    assert api.stats.images_rendered == 4


# -- image-to-image -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
async def test_data_uri_sources_of_every_format(api: Any, tools: Any, fmt: str, mime: str) -> None:
    red = tools.solid((250, 0, 0))
    source = tools.data_uri(tools.encode(red, fmt), mime)
    body = {"prompt": "blend", "seed": 1, "image_size": TINY, "source_url": source}
    kept = _picture(await _bytes(api, {**body, "strength": 1.0}))
    assert tools.distance(kept, red) < 12


async def test_strength_moves_the_result_from_prompt_to_source(api: Any, tools: Any) -> None:
    green = tools.solid((0, 200, 0), (48, 48))
    source = tools.data_uri(tools.encode(green))
    prompt_only = _picture(await _bytes(api, {"prompt": "dusk", "seed": 5, "image_size": TINY}))
    distances_to_source = []
    distances_to_prompt = []
    for strength in (0.0, 0.3, 0.7, 1.0):
        body = {
            "prompt": "dusk",
            "seed": 5,
            "image_size": TINY,
            "source_url": source,
            "strength": strength,
        }
        result = _picture(await _bytes(api, body))
        distances_to_source.append(tools.distance(result, green))
        distances_to_prompt.append(tools.distance(result, prompt_only))
    assert distances_to_source == sorted(distances_to_source, reverse=True)
    assert distances_to_prompt == sorted(distances_to_prompt)
    assert distances_to_prompt[0] < 2  # 0.0 ≈ the prompt's own image
    assert distances_to_source[-1] < 2  # 1.0 ≈ the source
    assert distances_to_source[0] > 30


async def test_source_without_strength_blends_halfway(api: Any, tools: Any) -> None:
    white = tools.solid((255, 255, 255))
    body = {"prompt": "half", "seed": 2, "image_size": TINY}
    alone = _picture(await _bytes(api, body))
    halfway = _picture(
        await _bytes(api, {**body, "source_url": tools.data_uri(tools.encode(white))})
    )
    assert 5 < tools.distance(halfway, alone) < tools.distance(white, alone)


async def test_guide_style_mislabelled_data_uri_is_accepted(api: Any, tools: Any) -> None:
    """The guide's helper labels anything not .png/.gif as image/jpeg; the bytes decide."""
    webp = tools.encode(tools.solid((0, 0, 250)), "WEBP")
    body = {"prompt": "p", "image_size": TINY, "strength": 1.0}
    blue = _picture(await _bytes(api, {**body, "source_url": tools.data_uri(webp, "image/jpeg")}))
    assert tools.distance(blue, tools.solid((0, 0, 250))) < 12


@pytest.fixture
async def image_host(tools: Any) -> AsyncIterator[str]:
    """A loopback web server with sources: ``/red.png``, ``/redirect``, ``/missing``, ``/text``."""
    red = tools.encode(tools.solid((240, 10, 10)))

    async def picture(request: web.Request) -> web.Response:
        return web.Response(body=red, content_type="image/png")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/red.png")

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="not an image")

    app = web.Application()
    app.router.add_get("/red.png", picture)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/text", text)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_loopback_http_source_is_fetched(api: Any, tools: Any, image_host: str) -> None:
    body = {"prompt": "p", "image_size": TINY, "strength": 1.0, "seed": 3}
    result = _picture(await _bytes(api, {**body, "source_url": f"{image_host}/red.png"}))
    assert tools.distance(result, tools.solid((240, 10, 10))) < 12
    localhost = image_host.replace("127.0.0.1", "localhost")
    assert (await api.generate({**body, "source_url": f"{localhost}/red.png"})).status == 200


async def test_own_files_can_be_a_source(api: Any, tools: Any) -> None:
    first = await api.job({"prompt": "src", "sync_mode": True, "image_size": TINY})
    source = _picture((await api.get(first["images"][0]["url"])).body)
    body = {"prompt": "copy", "source_url": first["images"][0]["url"], "strength": 1.0}
    result = _picture(await _bytes(api, {**body, "image_size": TINY}))
    assert tools.distance(result, source) < 3


@pytest.mark.parametrize(
    ("path", "code"), [("/redirect", "fetch"), ("/missing", "fetch"), ("/text", "invalid_source")]
)
async def test_bad_http_sources_are_422(api: Any, image_host: str, path: str, code: str) -> None:
    reply = await api.generate({"prompt": "p", "source_url": image_host + path})
    assert reply.error == (422, code, "source_url")
    assert api.stats.jobs_created == 0


async def test_unreachable_source_is_422(api: Any) -> None:
    reply = await api.generate({"prompt": "p", "source_url": "http://127.0.0.1:1/x.png"})
    assert reply.error == (422, "fetch", "source_url")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/x.png",
        "https://example.com/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/x.png",
        "http://localhost.example.com/x.png",
        "http://2130706433/x.png",
    ],
)
async def test_non_loopback_sources_are_refused_by_default(api: Any, url: str) -> None:
    reply = await api.generate({"prompt": "ssrf", "source_url": url})
    assert reply.error == (422, "forbidden_host", "source_url")
    assert api.stats.jobs_created == 0


async def test_allow_remote_sources_lifts_the_host_check(start_server: Any) -> None:
    api = await start_server(allow_remote_sources=True, source_timeout=0.5)
    # 192.0.2.0/24 is TEST-NET-1: never routed, so the fetch fails (or times out) instead
    reply = await api.generate({"prompt": "p", "source_url": "http://192.0.2.1:9/x.png"})
    assert reply.error == (422, "fetch", "source_url")


async def test_oversized_http_source_is_413(start_server: Any, tools: Any, image_host: str) -> None:
    api = await start_server(max_source_bytes=1024)
    big = tools.encode(tools.solid((1, 2, 3), (64, 64)), "BMP")
    assert len(big) > 1024
    reply = await api.generate({"prompt": "p", "source_url": tools.data_uri(big, "image/bmp")})
    assert reply.status == 413
