"""Chosen idempotency keys: checked before any request, sent as given, derived one way."""

from __future__ import annotations

import pytest

import radient_async as ra
from radient_async._keys import check_idempotency_key
from radient_async.server import LocalServer, ServerConfig

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdef"
FAST_POLL = ra.PollPolicy(first_delay=0.01, min_interval=0.01, max_interval=0.1, timeout=20)


def test_derived_keys_depend_on_run_item_request_and_attempt() -> None:
    request = ra.GenerationRequest(prompt="a fox")
    key = ra.derive_idempotency_key("run-1", 7, request)
    assert key == ra.derive_idempotency_key("run-1", 7, ra.GenerationRequest(prompt="a fox"))
    assert key == ra.derive_idempotency_key("run-1", 7, ra.request_fingerprint(request))
    others = {
        ra.derive_idempotency_key("run-2", 7, request),
        ra.derive_idempotency_key("run-1", 8, request),
        ra.derive_idempotency_key("run-1", "7x", request),
        ra.derive_idempotency_key("run-1", 7, ra.GenerationRequest(prompt="a fox", seed=1)),
        ra.derive_idempotency_key("run-1", 7, request, attempt=1),
    }
    assert key not in others
    assert len(others) == 5
    assert check_idempotency_key(key) == key


@pytest.mark.parametrize(
    "bad", [None, 5, b"abc", "", "x" * 256, "has space", "tab\there", "nul\x00", "del\x7f", "é"]
)
def test_unsendable_keys_are_validation_errors(bad: object) -> None:
    with pytest.raises(ra.ValidationError) as caught:
        check_idempotency_key(bad)
    assert caught.value.field == "idempotency_key"


@pytest.mark.parametrize(
    "args", [("", 1, "fp"), ("run", True, "fp"), ("run", 1.5, "fp"), ("run", 1, "fp", -1)]
)
def test_derivation_refuses_bad_parts(args: tuple[object, ...]) -> None:
    with pytest.raises(ra.ValidationError):
        ra.derive_idempotency_key(*args)  # type: ignore[arg-type]


async def test_a_repeated_key_returns_the_same_job_from_another_session() -> None:
    async with LocalServer(ServerConfig(api_key=KEY, latency=0.05)) as server:
        for _ in range(2):  # two "processes": two sessions, one key
            async with ra.Session(KEY, server.base_url, poll=FAST_POLL) as session:
                job = await session.submit("a fox", idempotency_key="row-0001")
                await job
        assert server.stats.jobs_created == 1
        assert server.stats.idempotency_keys == ["row-0001"]


async def test_a_bad_key_is_refused_before_any_request() -> None:
    async with LocalServer(ServerConfig(api_key=KEY)) as server:
        async with ra.Session(KEY, server.base_url) as session:
            with pytest.raises(ra.ValidationError, match="idempotency_key"):
                await session.submit("a fox", idempotency_key="two words")
        assert server.stats.jobs_created == 0
        assert sum(server.stats.requests.values()) == 0


async def test_map_items_carry_their_own_keys() -> None:
    async with LocalServer(ServerConfig(api_key=KEY, latency=0.02)) as server:
        items = [{"prompt": f"p{i}", "idempotency_key": f"k-{i % 3}"} for i in range(6)]
        async with ra.Session(KEY, server.base_url, poll=FAST_POLL) as session:
            outcomes = [o async for o in session.map(items, ordered=True)]
            bad = [o async for o in session.map([{"prompt": "p", "idempotency_key": 3}])]
        assert all(o.ok for o in outcomes)
        # items 0 and 3 share a key: the server answers the second with the first's job
        assert outcomes[0].request_id == outcomes[3].request_id
        assert len({o.request_id for o in outcomes}) == 3
        assert server.stats.jobs_created == 3
        assert sorted(server.stats.idempotency_keys) == ["k-0", "k-1", "k-2"]
        # the key is not sent as an extra request field
        assert all("idempotency_key" not in body for body in server.stats.generate_bodies)
        assert isinstance(bad[0].error, ra.ValidationError)
