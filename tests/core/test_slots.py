"""``Slots``: FIFO hand-off of the session's caps, with submits served before status polls."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from radient_async._slots import LEAD, NORMAL, URGENT, Slots

pytestmark = pytest.mark.anyio


async def test_waiters_are_served_by_turn_then_first_come() -> None:
    slots = Slots(1)
    await slots.acquire()
    served: list[str] = []

    async def wait(name: str, turn: int) -> None:
        await slots.acquire(turn=turn)
        served.append(name)
        slots.release()

    queued = [("poll 1", NORMAL), ("poll 2", NORMAL), ("submit 1", URGENT), ("probe 1", LEAD)]
    async with anyio.create_task_group() as group:
        for name, turn in queued:
            group.start_soon(wait, name, turn)
            await anyio.wait_all_tasks_blocked()
        group.start_soon(wait, "submit 2", URGENT)
        group.start_soon(wait, "probe 2", LEAD)
        await anyio.wait_all_tasks_blocked()
        slots.release()
    assert served == ["probe 1", "probe 2", "submit 1", "submit 2", "poll 1", "poll 2"]
    assert slots.in_use == 0


async def test_a_cancelled_urgent_waiter_leaves_its_queue() -> None:
    slots = Slots(1)
    await slots.acquire()
    with pytest.raises(TimeoutError):
        await slots.acquire(0.01, turn=URGENT)
    slots.release()
    await slots.acquire()  # the slot was not handed to the waiter that gave up
    assert slots.in_use == 1


async def test_a_free_slot_is_taken_without_waiting() -> None:
    slots = Slots(2)
    await slots.acquire(turn=URGENT)
    await slots.acquire()
    assert slots.in_use == 2


async def _queue_waiters(slots: Slots, served: list[str]) -> list[asyncio.Task[None]]:
    """Two tasks queued for the (held) slot, each giving it back once served."""

    async def wait(name: str) -> None:
        await slots.acquire()
        served.append(name)
        slots.release()

    tasks = []
    for name in ("first", "second"):
        tasks.append(asyncio.create_task(wait(name)))
        await anyio.wait_all_tasks_blocked()
    return tasks


async def test_a_waiter_cancelled_before_it_ran_is_passed_over() -> None:
    slots = Slots(1)
    await slots.acquire()
    served: list[str] = []
    first, second = await _queue_waiters(slots, served)
    first.cancel()  # its future is cancelled now; its task has not run the cancellation yet
    slots.release()
    await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled()
    assert served == ["second"]
    assert slots.in_use == 0


async def test_a_waiter_cancelled_as_it_is_served_passes_the_slot_on() -> None:
    slots = Slots(1)
    await slots.acquire()
    served: list[str] = []
    first, second = await _queue_waiters(slots, served)
    slots.release()  # handed to the first waiter ...
    first.cancel()  # ... whose task is cancelled before it can run
    await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled()
    assert served == ["second"]
    assert slots.in_use == 0
