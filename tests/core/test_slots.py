"""``Slots``: FIFO hand-off of the session's caps, with submits served before status polls."""

from __future__ import annotations

import anyio
import pytest

from radient_async._slots import Slots

pytestmark = pytest.mark.anyio


async def test_waiters_are_served_first_come_urgent_ones_first() -> None:
    slots = Slots(1)
    await slots.acquire()
    served: list[str] = []

    async def wait(name: str, urgent: bool) -> None:
        await slots.acquire(urgent=urgent)
        served.append(name)
        slots.release()

    async with anyio.create_task_group() as group:
        for name, urgent in [("poll 1", False), ("poll 2", False), ("submit 1", True)]:
            group.start_soon(wait, name, urgent)
            await anyio.wait_all_tasks_blocked()
        group.start_soon(wait, "submit 2", True)
        await anyio.wait_all_tasks_blocked()
        slots.release()
    assert served == ["submit 1", "submit 2", "poll 1", "poll 2"]
    assert slots.in_use == 0


async def test_a_cancelled_urgent_waiter_leaves_its_queue() -> None:
    slots = Slots(1)
    await slots.acquire()
    with pytest.raises(TimeoutError):
        await slots.acquire(0.01, urgent=True)
    slots.release()
    await slots.acquire()  # the slot was not handed to the waiter that gave up
    assert slots.in_use == 1


async def test_a_free_slot_is_taken_without_waiting() -> None:
    slots = Slots(2)
    await slots.acquire(urgent=True)
    await slots.acquire()
    assert slots.in_use == 2
