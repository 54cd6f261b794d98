"""The learned first look in virtual time: status calls per job against time a job is held (#12).

A discrete-event model of a batch: ``jobs`` jobs, ``in_flight`` at a time, each taking a
duration drawn from a workload; submits cost ``submit_cost`` seconds each, one after another.
Every job is watched as ``Watch`` watches it: ``FirstLook.plan`` (probes, then the learned first
look), a second look from ``plan_again`` after a missed first look (where the model has one),
then ``poll_delay``'s growing schedule; each look reports to ``FirstLook`` as the watcher does.
A workload named "N batches of" runs N batches one after another on one ``FirstLook``, as one
session running batch after batch would (figures per batch). No network, no CPU: it isolates
the schedule from the machine, which the HTTP benchmarks cannot (their polls compete with the
client's CPU). Seeded, so every run prints the same table.

``hold/ideal`` is the mean time a job keeps its slot, from submit until seen done, over the mean
duration: the latency the schedule adds. ``--old REV`` also models ``FirstLook`` as of a git
revision (its module is read with ``git show``), for an A/B of the rule itself.

    python benchmarks/poll_model.py --seeds 12 --old 636007d
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import itertools
import random
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radient_async._polling import FirstLook, PollPolicy, poll_delay

Duration = Callable[[random.Random], float]

WORKLOADS: dict[str, tuple[int, int, Duration]] = {
    # name: (jobs, in flight, duration); the first is the polling benchmark's; "N batches of"
    # runs N such batches one after another on one model, as one session would
    "batch, 0.5 ± 0.2 s, 1,000 in flight": (3000, 1000, lambda r: r.uniform(0.3, 0.7)),
    "one at a time, 0.5 ± 0.2 s": (300, 1, lambda r: r.uniform(0.3, 0.7)),
    "one at a time, 5 s": (100, 1, lambda r: 5.0),
    "20 in flight, lognormal (median 1 s, σ 0.5)": (1000, 20, lambda r: r.lognormvariate(0, 0.5)),
    "4 batches of 2,000 × 2 s, all in flight": (2000, 2000, lambda r: 2.0),
    "4 batches of 2,000 × 2 ± 0.2 s, all in flight": (2000, 2000, lambda r: r.uniform(1.8, 2.2)),
}


class _Job:
    __slots__ = ("done_at", "ended", "look", "peers", "planning", "probe", "start")

    def __init__(self, start: float, done_at: float) -> None:
        self.start, self.done_at = start, done_at
        self.planning, self.probe, self.look = True, False, "scheduled"
        self.peers, self.ended = 0, 0.0


class _Batch:
    """One seeded batch in virtual time: an event queue of first-look plans, wake-ups and polls."""

    def __init__(self, model: Any, jobs: int, duration: Duration, seed: int, cost: float) -> None:
        self.model, self.jobs, self.duration, self.cost = model, jobs, duration, cost
        self.rng, self.jitter = random.Random(seed), random.Random(seed + 1)
        self.policy = PollPolicy()
        self.events: list[tuple[float, int, str, int]] = []
        self.order = itertools.count()
        self.state: list[_Job] = []
        self.waiting: set[int] = set()
        self.polls, self.submitted_until = 0, 0.0

    def later(self, when: float, kind: str, index: int) -> None:
        heapq.heappush(self.events, (when, next(self.order), kind, index))

    def submit(self, now: float) -> None:
        self.submitted_until = max(self.submitted_until, now) + self.cost
        start = self.submitted_until
        self.state.append(_Job(start, start + self.duration(self.rng)))
        self.later(start, "plan", len(self.state) - 1)

    def plan(self, now: float, index: int, job: _Job) -> None:
        age, policy = now - job.start, self.policy
        wait = self.model.plan(policy, elapsed=age)
        if wait is None:  # waits for the probes, looking once after max_interval
            self.waiting.add(index)
            patience = poll_delay(policy, age, rng=self.jitter, first=policy.max_interval)
            self.later(now + patience, "wake", index)
            return
        job.planning, job.probe = False, self.model.at is None
        job.peers = getattr(self.model, "watching", 1)
        if job.probe or wait <= 0:
            wait = poll_delay(policy, age, rng=self.jitter, first=wait)
        else:  # a learned first look, unjittered (as ``Watch`` makes it)
            job.look = "first"
        self.later(now + wait, "poll", index)

    def poll(self, now: float, index: int, job: _Job) -> None:
        self.polls += 1
        age, done = now - job.start, now >= job.done_at
        look, job.look = job.look, "scheduled"
        if look == "first":
            _looked(self.model, done, age, job.peers)
        elif look == "again":
            self.model.looked_again(self.policy, done, age, peers=job.peers)
        elif done and self.model.seen_done(age):
            for other in self.waiting:
                self.later(now, "plan", other)
            self.waiting.clear()
        if not done:
            self.later(now + self._next(job, look, age), "poll", index)
            return
        _ended(self.model, job)
        job.ended = now
        if len(self.state) < self.jobs:
            self.submit(now)

    def _next(self, job: _Job, look: str, age: float) -> float:
        """The wait before a running job's next look: soon after a missed first look (when the
        model learns second looks), else the policy's schedule."""
        again = getattr(self.model, "plan_again", None)
        if look == "first" and again is not None:
            wait: float | None = again(self.policy, first=age, elapsed=age)
            if wait is not None:
                job.look = "again"
                return wait
        return poll_delay(self.policy, age, rng=self.jitter)

    def run(self, in_flight: int) -> tuple[float, float]:
        for _ in range(min(in_flight, self.jobs)):
            self.submit(0.0)
        while self.events:
            now, _, kind, index = heapq.heappop(self.events)
            job = self.state[index]
            if kind == "plan" and job.planning:
                self.plan(now, index, job)
            elif kind == "wake" and index in self.waiting:
                self.waiting.discard(index)
                job.planning = False
                self.later(now, "poll", index)
            elif kind == "poll":
                self.poll(now, index, job)
        held = statistics.fmean(job.ended - job.start for job in self.state)
        ideal = statistics.fmean(job.done_at - job.start for job in self.state)
        return self.polls / self.jobs, held / ideal


def simulate(
    model: Any, jobs: int, in_flight: int, duration: Duration, seed: int, submit_cost: float
) -> tuple[float, float]:
    """Status calls per job, and mean slot time over mean duration, for one seeded batch."""
    return _Batch(model, jobs, duration, seed, submit_cost).run(in_flight)


def _batches(name: str) -> int:
    return int(name.split()[0]) if name.split()[1:2] == ["batches"] else 1


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({max(values):.2f})"


def _looked(model: Any, done: bool, age: float, peers: int) -> None:
    if hasattr(model, "watching"):
        model.looked(done, age, peers=peers)
    else:  # the rule before the shared gain
        model.looked(done, age)


def _ended(model: Any, job: _Job) -> None:
    if hasattr(model, "ended"):
        if job.peers:  # planned, so counted in watching (probes too)
            model.ended(probe=job.probe)
    elif job.probe:
        model.probe_ended()


def _first_look_at(revision: str) -> type[Any]:
    """``FirstLook`` as the module at ``revision`` defined it."""
    source = subprocess.run(
        ["git", "show", f"{revision}:radient_async/_polling.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    source = source.replace("from ._", "from radient_async._")
    path = Path(tempfile.mkdtemp()) / "old_polling.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_polling", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FirstLook  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--submit-cost", type=float, default=0.0005)
    parser.add_argument("--old", help="a git revision whose FirstLook to model as well")
    parser.add_argument("--targets", default="0.8", help="comma-separated targets for today's rule")
    args = parser.parse_args()
    models: dict[str, Callable[[], Any]] = {}
    if args.old:
        models[f"FirstLook at {args.old}"] = _first_look_at(args.old)
    for target in (float(t) for t in args.targets.split(",")):
        models[f"FirstLook(target={target})"] = lambda target=target: FirstLook(target=target)
    print("| workload | model | status calls/job, median (max) | hold/ideal, median (max) |")
    print("|---|---|---|---|")
    for name, (jobs, in_flight, duration) in WORKLOADS.items():
        for label, make in models.items():
            runs: list[list[tuple[float, float]]] = []  # per seed, per batch
            for seed in range(args.seeds):
                model, cost = make(), args.submit_cost
                runs.append(
                    [
                        simulate(model, jobs, in_flight, duration, seed + 1000 * b, cost)
                        for b in range(_batches(name))
                    ]
                )
            cells = [
                " / ".join(_cell([run[b][part] for run in runs]) for b in range(len(runs[0])))
                for part in (0, 1)
            ]
            print(f"| {name} | {label} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
