"""What a notebook shows: ``gallery`` (input order, saved files or embedded thumbnails) and the
progress bar ``progress=True`` picks for the host (the host passed in, never detected here)."""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

import radient_async as ra
from radient_async._progress import (
    Backend,
    BatchStats,
    Host,
    choose_backend,
    make_progress,
    render_line,
)
from radient_async.server import ServerConfig, ThreadedServer
from radient_async.testing import FAST_POLL

pytestmark = pytest.mark.anyio

KEY = "gallery-key"
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def radient_server_config() -> ServerConfig:
    return ServerConfig(api_key=KEY, seed=3)


def open_session(server: ThreadedServer) -> ra.Session:
    return ra.Session(KEY, server.base_url, poll=FAST_POLL)


def captions(page: str) -> list[str]:
    return re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", page)


def sources(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


def decoded(uri: str) -> PILImage.Image:
    header, _, payload = uri.partition(",")
    assert header in ("data:image/jpeg;base64", "data:image/png;base64"), header
    return PILImage.open(io.BytesIO(base64.b64decode(payload)))


async def generate_all(
    session: ra.Session, prompts: list[str], **options: object
) -> list[ra.GenerationResult]:
    return [await session.generate(prompt, **options) for prompt in prompts]  # type: ignore[arg-type]


def finished_out_of_order(
    prompts: list[str],
    results: list[ra.GenerationResult],
    paths: list[tuple[str, ...]] | None = None,
) -> list[ra.BatchOutcome]:
    """Outcomes as ``session.map`` yields them when the last prompt finishes first."""
    outcomes = [
        ra.BatchOutcome(
            index=i,
            item=prompt,
            request_id=result.request_id,
            result=result,
            paths=paths[i] if paths else (),
        )
        for i, (prompt, result) in enumerate(zip(prompts, results, strict=True))
    ]
    return [outcomes[i] for i in (3, 0, 2, 1)]


async def test_outcomes_are_laid_out_in_input_order(radient_server: ThreadedServer) -> None:
    prompts = [f"a harbour, study {i}" for i in range(4)]
    async with open_session(radient_server) as session:
        results = await generate_all(session, prompts, image_size=(32, 32))
        shown = await ra.gallery(finished_out_of_order(prompts, results), title="harbours")
    assert captions(shown.html) == prompts
    assert shown.count == 4
    assert shown._repr_html_() == str(shown) == shown.html
    assert "<h3>harbours</h3>" in shown.html


async def test_results_keep_the_order_they_are_given_in(radient_server: ThreadedServer) -> None:
    prompts = ["b", "a", "c"]
    async with open_session(radient_server) as session:
        results = await generate_all(session, prompts, image_size=(32, 32))
        shown = await ra.gallery(results)
    assert captions(shown.html) == prompts


async def test_images_are_embedded_as_small_thumbnails_without_server_urls(
    radient_server: ThreadedServer,
) -> None:
    async with open_session(radient_server) as session:
        result = await session.generate("a lighthouse", num_images=2, image_size=(512, 512))
        assert all(
            image.url.startswith(radient_server.base_url.split("/v1")[0]) for image in result.images
        )
        shown = await ra.gallery([result])
        small = await ra.gallery([result], max_size=64)
    for page, limit in ((shown.html, 256), (small.html, 64)):
        srcs = sources(page)
        assert len(srcs) == 2
        assert all(max(decoded(src).size) == limit for src in srcs)
        assert "http://" not in page
        assert "127.0.0.1" not in page
    assert len(small.html) < len(shown.html)


async def test_the_gallery_outlives_the_server(tmp_path: Path) -> None:
    with ThreadedServer(ServerConfig(api_key=KEY)) as server:
        base_url = server.base_url
        async with open_session(server) as session:
            result = await session.generate("a fox", image_size=(64, 64))
            shown = await ra.gallery([result])
    # the server is gone: the page still holds the image itself, and no URL into the server
    assert base_url.split("/v1")[0] not in shown.html
    assert decoded(sources(shown.html)[0]).size == (64, 64)


async def test_saved_files_are_shown_by_path_relative_to_the_folder(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    prompts = [f"a lake {i}" for i in range(4)]
    async with open_session(radient_server) as session:
        outcomes = [
            o
            async for o in session.map(
                prompts, download_to=tmp_path / "images", image_size=(32, 32)
            )
        ]
    # the session is closed: saved files need none
    shown = await ra.gallery(outcomes, folder=tmp_path)
    by_index = sorted(outcomes, key=lambda o: o.index)
    expected = [
        Path(o.paths[0]).resolve().relative_to(tmp_path.resolve()).as_posix() for o in by_index
    ]
    assert sources(shown.html) == expected
    assert all(src.startswith("images/") for src in expected)
    assert captions(shown.html) == prompts


async def test_saved_files_outside_the_folder_are_embedded(
    radient_server: ThreadedServer, tmp_path: Path
) -> None:
    prompts = [f"a hill {i}" for i in range(4)]
    async with open_session(radient_server) as session:
        results = await generate_all(session, prompts, image_size=(300, 200))
        paths = [tuple(await result.download(tmp_path / "saved")) for result in results]
    notebook_folder = tmp_path / "notebooks"
    notebook_folder.mkdir()
    shown = await ra.gallery(finished_out_of_order(prompts, results, paths), folder=notebook_folder)
    assert [decoded(src).size for src in sources(shown.html)] == [(256, 171)] * 4
    assert captions(shown.html) == prompts


async def test_without_pillow_small_images_are_embedded_as_they_are_and_large_ones_linked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetcher = _Bytes(PNG_1PX)
    result = ra.GenerationResult(
        request_id="r1",
        prompt="dot",
        images=(ra.Image(url="http://example.test/dot.png", fetcher=fetcher),),
    )
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    shown = await ra.gallery([result])
    assert sources(shown.html) == ["data:image/png;base64," + base64.b64encode(PNG_1PX).decode()]
    linked = await ra.gallery([result], embed_limit=len(PNG_1PX) - 1)
    assert sources(linked.html) == []
    assert '<a href="http://example.test/dot.png">' in linked.html
    assert fetcher.reads == 2


class _Bytes:
    """An image fetcher serving fixed bytes (what a session's downloader does for ``read``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads = 0

    async def read(self, image: ra.Image) -> bytes:
        self.reads += 1
        return self.data

    async def save(self, image: ra.Image, path: object, *, overwrite: bool) -> str:
        raise NotImplementedError

    async def save_all(self, images: object, directory: object, *, overwrite: bool) -> list[str]:
        raise NotImplementedError


async def test_an_image_that_cannot_be_read_becomes_a_link() -> None:
    detached = ra.Image(url="http://example.test/gone.png")  # no session to read it through
    result = ra.GenerationResult(request_id="r", prompt="gone", images=(detached,))
    shown = await ra.gallery([result])
    assert sources(shown.html) == []
    assert '<a href="http://example.test/gone.png">' in shown.html


async def test_a_failed_item_keeps_its_place() -> None:
    dot = ra.Image(url="http://example.test/dot.png", fetcher=_Bytes(PNG_1PX))
    ok = ra.GenerationResult(request_id="r0", prompt="first", images=(dot,))
    outcomes = [
        ra.BatchOutcome(index=1, item="second", error=ra.JobFailed("r1", "no luck")),
        ra.BatchOutcome(index=0, item="first", result=ok),
    ]
    shown = await ra.gallery(outcomes)
    assert captions(shown.html) == ["first", "second (failed)"]
    assert "no luck" in shown.html
    assert captions(ra.gallery_html(outcomes)) == ["first", "second (failed)"]


async def test_gallery_checks_its_arguments() -> None:
    with pytest.raises(ra.ValidationError, match="max_size"):
        await ra.gallery([], max_size=0)


def test_gallery_html_still_uses_the_image_urls_in_order() -> None:
    results = [
        ra.GenerationResult(
            request_id=f"r{i}", prompt=f"p{i}", images=(ra.Image(url=f"http://x.test/{i}.png"),)
        )
        for i in range(3)
    ]
    page = ra.gallery_html(results, title="three")
    assert sources(page) == [f"http://x.test/{i}.png" for i in range(3)]
    assert captions(page) == ["p0", "p1", "p2"]
    outcomes = [ra.BatchOutcome(index=i, item=f"p{i}", result=r) for i, r in enumerate(results)]
    assert captions(ra.gallery_html(outcomes[::-1])) == ["p0", "p1", "p2"]


# --- the progress bar for each host ---------------------------------------------------------

TERMINAL = Host()
NOTEBOOK = Host(notebook=True, widgets=True)
BARE_NOTEBOOK = Host(notebook=True, widgets=False)


@pytest.mark.parametrize(
    ("spec", "host", "backend"),
    [
        (True, TERMINAL, Backend.TQDM),
        ("auto", TERMINAL, Backend.TQDM),
        ("tqdm", TERMINAL, Backend.TQDM),
        ("rich", TERMINAL, Backend.RICH),
        (True, NOTEBOOK, Backend.TQDM_NOTEBOOK),
        ("tqdm", NOTEBOOK, Backend.TQDM_NOTEBOOK),
        ("rich", NOTEBOOK, Backend.RICH),
        (True, BARE_NOTEBOOK, Backend.LINE),
        ("auto", BARE_NOTEBOOK, Backend.LINE),
        ("tqdm", BARE_NOTEBOOK, Backend.TQDM),  # tqdm's text bar, not tqdm.auto's warning
        ("rich", BARE_NOTEBOOK, Backend.RICH),
    ],
)
def test_the_bar_suits_the_host(spec: str | bool, host: Host, backend: Backend) -> None:
    assert choose_backend(spec, host) is backend


@pytest.mark.parametrize(
    ("host", "backend", "bar"),
    [(TERMINAL, Backend.TQDM, "tqdm.std"), (NOTEBOOK, Backend.TQDM_NOTEBOOK, "tqdm.notebook")],
)
def test_progress_true_builds_the_chosen_tqdm_bar(
    host: Host, backend: Backend, bar: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ipywidgets")
    sink = make_progress(True, 2, detect=lambda: host)
    try:
        assert sink.backend is backend  # type: ignore[union-attr]
        assert type(sink._bar).__module__ == bar  # type: ignore[union-attr]
    finally:
        sink.close()
    assert "IProgress" not in "".join(capsys.readouterr())


def test_a_bare_notebook_gets_one_line_replaced_in_place(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = make_progress(True, 2, detect=lambda: BARE_NOTEBOOK)
    sink.close()
    assert sink.backend is Backend.LINE  # type: ignore[union-attr]
    assert "IProgress" not in "".join(capsys.readouterr())


class _Output:
    """A notebook output: its text replaced on each update, never appended to."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.closed = False

    def update(self, text: str) -> None:
        self.texts.append(text)

    def close(self) -> None:
        self.closed = True


async def test_the_line_bar_counts_a_real_batch(radient_server: ThreadedServer) -> None:
    from radient_async._progress import _LineSink

    output = _Output()
    sink = _LineSink(3, display=output)
    async with open_session(radient_server) as session:
        outcomes = [
            o async for o in session.map(["a", "b [fail]", "c"], progress=sink, image_size=(16, 16))
        ]
    assert len(outcomes) == 3
    assert output.closed
    assert all("\n" not in text for text in output.texts)
    assert output.texts[-1] == render_line(sink.stats, 3)
    assert output.texts[-1].startswith("radient  3/3 |")
    assert "failed 1" in output.texts[-1]


def test_render_line_with_and_without_a_total() -> None:
    stats = BatchStats(submitted=5, completed=3, failed=1, images=3)
    assert (
        render_line(stats, 8, width=8) == "radient  4/8 |████░░░░| running 1 · failed 1 · images 3"
    )
    assert render_line(stats, None) == "radient  4 done · running 1 · failed 1 · images 3"
