"""The Session and JobHandle against the local server over real loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import os
from pathlib import Path

import anyio
import pytest
from PIL import Image as PILImage

import radient_async as ra
from radient_async.server import LocalServer, ServerConfig, ThreadedServer

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdef"
SMALL = (64, 64)
FAST_POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.2, timeout=20)
FAST_RETRY = ra.RetryPolicy(initial_backoff=0.01, max_backoff=0.05)


def session_for(server: ThreadedServer | LocalServer, **kwargs: object) -> ra.Session:
    options: dict[str, object] = {"poll": FAST_POLL, "retry": FAST_RETRY}
    options.update(kwargs)
    return ra.Session(KEY, server.base_url, **options)  # type: ignore[arg-type]


@pytest.fixture
def radient_server_config() -> ServerConfig:
    """Overrides the plugin's config: a known key and a little latency so jobs poll."""
    return ServerConfig(api_key=KEY, latency=0.05, seed=7)


@pytest.fixture
def server(radient_server: ThreadedServer) -> ThreadedServer:
    return radient_server


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_text_to_image_async_job(server: ThreadedServer, tmp_path: Path) -> None:
    async with session_for(server) as session:
        job = await session.submit("a lighthouse at dusk", num_images=2, image_size=SMALL)
        assert job.request_id.startswith("imgreq_")
        assert not job.done()
        result = await job
        paths = await result.download(tmp_path)
    assert job.status is ra.JobStatus.COMPLETED
    assert len(result.images) == 2
    assert [Path(p).name for p in paths] == [f"{job.request_id}_0.png", f"{job.request_id}_1.png"]
    for path, image in zip(paths, result.images, strict=False):
        with PILImage.open(path) as picture:
            assert picture.size == SMALL == (image.width, image.height)
    assert server.stats.jobs_created == 1
    assert sorted(os.listdir(tmp_path)) == sorted(Path(p).name for p in paths)


async def test_sync_mode_handle_is_complete_at_once(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        job = await session.submit("sync please", sync_mode=True, image_size=SMALL)
        assert job.done()
        result = await job
        data = await result.images[0].read()
    assert data.startswith(b"\x89PNG")
    assert server.stats.status_calls == 0


async def test_inline_data_uri_images_are_read_and_saved(
    server: ThreadedServer, tmp_path: Path
) -> None:
    async with session_for(server) as session:
        result = await session.generate(
            "inline", sync_mode=True, provider="inline", image_size=SMALL
        )
        assert result.images[0].url.startswith("data:image/png;base64,")
        path = await result.images[0].download(tmp_path)
        data = await result.images[0].read()
    assert Path(path).read_bytes() == data
    assert server.stats.downloads == 0


async def test_image_to_image_from_path_bytes_and_data_uri(
    server: ThreadedServer, tmp_path: Path
) -> None:
    source = png_bytes((200, 10, 10))
    file = tmp_path / "source.png"
    file.write_bytes(source)
    data_uri = "data:image/png;base64," + base64.b64encode(source).decode()
    async with session_for(server) as session:
        for given in (file, str(file), source, data_uri, io.BytesIO(source)):
            result = await session.generate(
                "make it blue", source=given, strength=0.9, image_size=SMALL
            )
            assert len(result.images) == 1
    sent = [body["source_url"] for body in list(server.stats.generate_bodies)[-5:]]
    assert sent == [data_uri] * 5


async def test_failed_job_raises_job_failed_with_server_error(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        job = await session.submit("please [fail] now", image_size=SMALL)
        with pytest.raises(ra.JobFailed) as caught:
            await job
    assert caught.value.request_id == job.request_id
    assert caught.value.error
    assert caught.value.error in str(caught.value)
    assert job.status is ra.JobStatus.FAILED


async def test_controls_fail_next_generation(server: ThreadedServer) -> None:
    server.controls.fail_next(1, error="GPU on fire")
    async with session_for(server) as session:
        with pytest.raises(ra.JobFailed, match="GPU on fire"):
            await session.generate("a cat", image_size=SMALL)
        assert (await session.generate("a cat", image_size=SMALL)).images


async def test_providers_listed(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        assert await session.providers() == ("default", "sketch", "inline")


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "reset"])
async def test_retryable_faults_on_generate_recover_with_one_job(
    server: ThreadedServer, kind: str
) -> None:
    server.controls.inject(kind, next_n=2, endpoints=["generate"], retry_after=0.05)
    async with session_for(server) as session:
        result = await session.generate("retry me", image_size=SMALL)
    assert result.images
    assert server.stats.jobs_created == 1
    assert server.stats.faults[kind] == 2


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "reset", "truncate"])
async def test_retryable_faults_on_status_recover(server: ThreadedServer, kind: str) -> None:
    server.controls.inject(kind, next_n=2, endpoints=["status"], retry_after=0.05)
    async with session_for(server) as session:
        result = await session.generate("poll through faults", image_size=SMALL)
    assert result.images
    assert server.stats.faults[kind] == 2


async def test_reset_after_job_created_replays_same_job_by_idempotency_key(
    server: ThreadedServer,
) -> None:
    """A generate whose response is lost after the job exists must not create a second job."""
    server.controls.inject("truncate", next_n=1, endpoints=["generate"])
    async with session_for(server) as session:
        result = await session.generate("exactly once", image_size=SMALL)
    assert result.images
    assert server.stats.jobs_created == 1
    assert server.stats.idempotent_replays == 1
    keys = server.stats.idempotency_keys
    assert len(keys) == 1


async def test_retry_after_is_honoured(server: ThreadedServer) -> None:
    server.controls.inject("429", next_n=1, endpoints=["providers"], retry_after=0.4)
    async with session_for(server) as session:
        started = anyio.current_time()
        await session.providers()
        waited = anyio.current_time() - started
    assert waited >= 0.39


async def test_retry_after_beyond_cap_fails_fast(server: ThreadedServer) -> None:
    server.controls.inject("429", next_n=1, endpoints=["providers"], retry_after=30)
    retry = ra.RetryPolicy(max_retry_after=1.0)
    async with session_for(server, retry=retry) as session:
        with pytest.raises(ra.RateLimitError) as caught:
            await session.providers()
    assert caught.value.retry_after == pytest.approx(30, abs=1)
    assert caught.value.status == 429


async def test_overall_timeout_bounds_all_retries(server: ThreadedServer) -> None:
    server.controls.inject("503", rate=1.0, endpoints=["providers"], retry_after=0.3)
    timeouts = ra.Timeouts(request=0.5)
    retry = ra.RetryPolicy(max_retries=50)
    async with session_for(server, timeouts=timeouts, retry=retry) as session:
        started = anyio.current_time()
        with pytest.raises((ra.APITimeoutError, ra.ServerError)):
            await session.providers()
        assert anyio.current_time() - started < 1.0


async def test_job_deadline_raises_job_timeout(server: ThreadedServer) -> None:
    server.controls.set_latency(30.0)
    async with session_for(server) as session:
        job = await session.submit("slow", image_size=SMALL, timeout=0.3)
        with pytest.raises(ra.JobTimeout) as caught:
            await job
    assert caught.value.request_id == job.request_id
    assert caught.value.last_status == "PROCESSING"


async def test_wait_timeout_does_not_stop_polling(server: ThreadedServer) -> None:
    server.controls.set_latency(0.4)
    async with session_for(server) as session:
        job = await session.submit("patience", image_size=SMALL)
        with pytest.raises(ra.JobTimeout):
            await job.wait(timeout=0.05)
        assert (await job.wait(timeout=10)).images


async def test_unknown_status_is_surfaced_then_bounded(server: ThreadedServer) -> None:
    server.controls.force_status("WEIRD", next_n=1000)
    poll = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.02, max_unknown=5)
    async with session_for(server, poll=poll) as session:
        job = await session.submit("strange", image_size=SMALL)
        with pytest.raises(ra.UnexpectedStatusError) as caught:
            await job
    assert caught.value.status == "WEIRD"
    assert job.last_update is not None
    assert job.last_update.raw_status == "WEIRD"
    assert job.status is ra.JobStatus.UNKNOWN


async def test_unknown_status_then_completion_succeeds(server: ThreadedServer) -> None:
    server.controls.force_status("IN_QUEUE", next_n=2)
    async with session_for(server) as session:
        job = await session.submit("queued first", image_size=SMALL)
        seen = [update.raw_status async for update in job.updates()]
    assert seen[-1] == "COMPLETED"
    assert "IN_QUEUE" in seen


async def test_resume_by_request_id_in_a_new_session(server: ThreadedServer) -> None:
    server.controls.set_latency(0.3)
    async with session_for(server) as first:
        job = await first.submit("survive a restart", image_size=SMALL, provider="sketch")
        request_id = job.request_id
    async with session_for(server) as second:
        result = await second.job(request_id, provider="sketch")
    assert result.request_id == request_id
    assert result.images
    assert server.stats.jobs_created == 1


async def test_unknown_request_id_is_not_found(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        with pytest.raises(ra.NotFoundError) as caught:
            await session.job("imgreq_000000000000000000000000")
    assert caught.value.status == 404


async def test_cancel_handle_stops_polling_and_leaves_no_task(server: ThreadedServer) -> None:
    server.controls.set_latency(30.0)
    async with session_for(server) as session:
        before = len(asyncio.all_tasks())
        jobs = [await session.submit(f"cancel {i}", image_size=SMALL) for i in range(5)]
        for job in jobs:
            job.cancel()
        for job in jobs:
            with pytest.raises(ra.JobCancelled):
                await job
        await anyio.sleep(0.05)
        assert len(asyncio.all_tasks()) <= before
        calls = server.stats.status_calls
        await anyio.sleep(0.2)
        assert server.stats.status_calls == calls


async def test_closing_session_cancels_outstanding_jobs(server: ThreadedServer) -> None:
    server.controls.set_latency(30.0)
    before = len(asyncio.all_tasks())
    async with session_for(server) as session:
        job = await session.submit("left behind", image_size=SMALL)
    with pytest.raises(ra.JobCancelled):
        await job
    assert len(asyncio.all_tasks()) == before


async def test_use_after_close_is_a_clear_error(server: ThreadedServer) -> None:
    session = session_for(server)
    with pytest.raises(ra.SessionClosedError):
        await session.providers()
    async with session:
        pass
    with pytest.raises(ra.SessionClosedError):
        await session.submit("too late")


async def test_authentication_error_on_wrong_key(server: ThreadedServer) -> None:
    async with ra.Session("wrong-key", server.base_url) as session:
        with pytest.raises(ra.AuthenticationError) as caught:
            await session.providers()
    assert caught.value.status == 401
    assert "wrong-key" not in str(caught.value)


async def test_validation_happens_before_any_request(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        with pytest.raises(ra.ValidationError) as caught:
            await session.submit("x", num_images=0)
        assert caught.value.field == "num_images"
        with pytest.raises(ra.ValidationError):
            await session.submit("x", source=b"not an image")
    assert sum(server.stats.requests.values()) == 0


async def test_downloads_are_atomic_and_never_overwrite(
    server: ThreadedServer, tmp_path: Path
) -> None:
    async with session_for(server) as session:
        result = await session.generate("once", image_size=SMALL)
        [path] = await result.download(tmp_path)
        with pytest.raises(ra.DownloadError, match="exists"):
            await result.download(tmp_path)
        again = await result.download(tmp_path, overwrite=True)
    assert again == [path]
    assert [p.name for p in tmp_path.iterdir()] == [Path(path).name]


async def test_truncated_download_is_retried_then_checked(
    server: ThreadedServer, tmp_path: Path
) -> None:
    server.controls.inject("truncate", next_n=1, endpoints=["files"])
    async with session_for(server) as session:
        result = await session.generate("cut short once", image_size=SMALL)
        [path] = await result.download(tmp_path)
        expected = await result.images[0].read()
    assert Path(path).read_bytes() == expected
    server.controls.inject("truncate", rate=1.0, endpoints=["files"])
    async with session_for(server) as session:
        result = await session.generate("always cut", image_size=SMALL)
        with pytest.raises(ra.IntegrityError):
            await result.download(tmp_path / "bad")
    assert not list((tmp_path / "bad").glob("*")) if (tmp_path / "bad").exists() else True


async def test_key_never_sent_to_the_image_origin(tmp_path: Path) -> None:
    config = ServerConfig(api_key=KEY, separate_image_origin=True)
    async with LocalServer(config) as server, session_for(server) as session:
        result = await session.generate("cdn hosted", image_size=SMALL)
        assert ra.Session  # the image lives on another origin
        assert not result.images[0].url.startswith(server.base_url.rsplit("/v1", 1)[0])
        await result.download(tmp_path)
        assert server.stats.downloads == 1
        assert server.stats.authorized_requests.get("files", 0) == 0


async def test_key_not_in_debug_logs_reprs_or_errors(
    server: ThreadedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.controls.inject("500", next_n=1, endpoints=["generate"])
    async with session_for(server) as session:
        job = await session.submit("secret keeping", image_size=SMALL)
        result = await job
        texts = [repr(session), repr(job), repr(result), repr(result.images[0])]
    async with ra.Session("sk-wrong-secret", server.base_url) as bad:
        with pytest.raises(ra.AuthenticationError) as caught:
            await bad.providers()
    texts += [str(caught.value), repr(caught.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records, "expected DEBUG records from the SDK"
    assert not [t for t in texts if KEY in t or "sk-wrong-secret" in t]


async def test_two_sessions_do_not_interfere(server: ThreadedServer) -> None:
    async with session_for(server) as one, session_for(server) as two:
        a, b = await one.submit("one", image_size=SMALL), await two.submit("two", image_size=SMALL)
    with pytest.raises(ra.JobCancelled):
        await a
    with pytest.raises(ra.JobCancelled):
        await b


def test_sessions_work_across_event_loops() -> None:
    async def once() -> int:
        async with LocalServer(ServerConfig(api_key=KEY)) as server, session_for(server) as s:
            result = await s.generate("loop", sync_mode=True, image_size=SMALL)
            return len(result.images)

    assert asyncio.run(once()) == 1
    assert asyncio.run(once()) == 1


async def test_generated_bytes_are_deterministic_for_a_seed(server: ThreadedServer) -> None:
    async with session_for(server) as session:
        first = await session.generate("same seed", seed=42, image_size=SMALL, sync_mode=True)
        second = await session.generate("same seed", seed=42, image_size=SMALL, sync_mode=True)
        one, two = await first.images[0].read(), await second.images[0].read()
    assert hashlib.sha256(one).digest() == hashlib.sha256(two).digest()


async def test_an_error_in_the_session_body_propagates_as_itself(server: ThreadedServer) -> None:
    server.controls.set_latency(30.0)

    async def body() -> None:
        async with session_for(server) as session:
            await session.submit("running while the body fails", image_size=SMALL)
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await body()
