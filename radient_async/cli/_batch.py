"""``radient batch``: items from a file, ``session.map`` over them, outcomes as they come.

The input is read and every item checked before anything is submitted. Progress is counted in a
``Tally`` (by a small ``ProgressSink`` for bytes, and here for the items taken up and the
outcomes) and shown by a ``Display`` from ``_terminal``. With a manifest, a rerun continues where
the last run stopped; jobs the server no longer knows (expired, or started on an earlier
``--local`` server) are submitted again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio.to_thread
import attrs

from radient_async._batch_items import BatchOutcome, to_request
from radient_async._errors import DownloadError, RadientError
from radient_async._models import Image

from ._options import in_cli_terms, nearest_field, request_fields
from ._run import EXIT_USAGE, STOP_AUTH, CliError, note
from ._saving import Existing, existing_file, save_result
from ._terminal import Display, Tally

if TYPE_CHECKING:
    from radient_async._session import Session

__all__ = ["BatchInput", "BatchJob", "load_items", "outcome_json", "prompt_of"]

BatchInput = str | dict[str, Any]


def load_items(path: str, defaults: Mapping[str, Any]) -> list[BatchInput]:
    """Prompts (one per line) or JSONL request objects from ``path``, each checked up front.

    JSONL is recognised by a ``.jsonl`` name or a first character ``{``. Blank lines and lines
    starting with ``#`` are skipped. A bad line stops everything before any job is submitted.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE) from None
    as_jsonl = path.lower().endswith(".jsonl") or text.lstrip().startswith("{")
    items: list[BatchInput] = []
    warned: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        item = _json_item(stripped, path, number) if as_jsonl else stripped
        try:
            to_request(item, defaults)
        except RadientError as exc:
            raise CliError(f"{path} line {number}: {exc}", EXIT_USAGE) from None
        if isinstance(item, dict):
            _warn_unknown_keys(item, f"{path} line {number}", warned)
        items.append(item)
    if not items:
        raise CliError(f"{path} holds no prompts (one per line; # starts a comment)", EXIT_USAGE)
    return items


def _warn_unknown_keys(item: Mapping[str, Any], where: str, warned: set[str]) -> None:
    """One warning per unknown key (a typo, or a provider-specific field), naming the nearest."""
    known = set(request_fields())
    for key in item:
        if key in known or key in warned:
            continue
        warned.add(key)
        nearest = nearest_field(key)
        guess = f" (did you mean {nearest!r}?)" if nearest else ""
        note(
            f"warning: {where}: unknown field {key!r}{guess}; it is sent to the API as a "
            'provider-specific field (put those under "extra" to silence this)'
        )


def _json_item(line: str, path: str, number: int) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} line {number}: not JSON ({exc.msg})", EXIT_USAGE) from None
    if not isinstance(item, dict):
        raise CliError(f"{path} line {number}: expected a JSON object", EXIT_USAGE)
    return item


def prompt_of(item: object) -> str:
    """The prompt of a batch item (a prompt string or a request mapping)."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        return str(item.get("prompt", ""))
    return str(getattr(item, "prompt", ""))


class _Sink:
    """The SDK ``ProgressSink``: counts the bytes saved; items and outcomes are counted here."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally

    def submitted(self) -> None:
        pass

    def completed(self) -> None:
        pass

    def failed(self) -> None:
        pass

    def downloaded(self, images: int, nbytes: int) -> None:
        self._tally.nbytes += nbytes

    def close(self) -> None:
        pass


@attrs.define
class BatchJob:
    """One ``radient batch`` run: its inputs and options, its tally, the images for a gallery."""

    items: list[BatchInput]
    defaults: Mapping[str, Any]
    output: str
    concurrency: int | None
    manifest: str | None
    as_json: bool
    display: Display
    tally: Tally
    gallery: list[tuple[int, str, tuple[str, ...]]] | None = None
    existing: Existing = Existing.FAIL
    download_hint: bool = True  # not with --local: its jobs end with the command

    async def run(self, session: Session) -> None:
        """Check the key and connection once, then run every item.

        With a manifest, an item interrupted while running is re-attached by its request id; if
        the server no longer knows that job (it expired, or ``--local`` started a new server)
        ``session.map`` submits it again and marks the outcome ``resubmitted``.
        """
        await session.providers()  # a wrong key or an unreachable API fails here, and only here
        self.display.refresh(self.tally)
        outcomes = session.map(
            self._taken(),
            download_to=self.output,
            overwrite=self.existing is Existing.OVERWRITE,
            concurrency=self.concurrency,
            manifest=self.manifest,
            progress=_Sink(self.tally),
            **self.defaults,
        )
        resubmitted = 0
        # ``map`` is an async generator: closing it on the way out cancels its outstanding work.
        stream = cast(AsyncGenerator[BatchOutcome, None], outcomes)
        async with contextlib.aclosing(stream):
            async for outcome in stream:
                resubmitted += outcome.resubmitted
                self.report(await self._kept(session, outcome))
        if resubmitted:
            self.display.message(
                f"{resubmitted} unfinished jobs are unknown to the server: submitted again"
            )

    def _taken(self) -> Iterator[BatchInput]:
        """The items, counted as ``map`` takes each up (it reads only as slots free up)."""
        for item in self.items:
            self.tally.taken += 1
            self.display.refresh(self.tally)
            yield item

    async def _kept(self, session: Session, outcome: BatchOutcome) -> BatchOutcome:
        """With ``--skip-existing``, an item whose files were already there: keep them.

        The SDK refuses to replace them, so the item arrives failed; its job did finish, so it is
        fetched again (one status call) and only its missing images are saved.
        """
        error, request_id = outcome.error, outcome.request_id
        if self.existing is not Existing.SKIP or not isinstance(error, DownloadError):
            return outcome
        if request_id is None or not await _has_files(self.output, outcome):
            return outcome
        try:
            result = await session.job(request_id, _provider_of(outcome.item, self.defaults))
            paths, kept = await save_result(result, self.output, Existing.SKIP)
        except RadientError as exc:
            return attrs.evolve(outcome, error=exc)
        self.tally.kept += len(kept)
        for path in kept:
            self.display.message(f"kept {path} (already there)")
        return attrs.evolve(outcome, error=None, result=result, paths=tuple(paths))

    def report(self, outcome: BatchOutcome) -> None:
        """Count, print and keep one outcome; an authentication failure ends the batch."""
        self.tally.record(outcome)
        self.display.refresh(self.tally)
        prompt = prompt_of(outcome.item)
        if self.as_json:
            self.display.result(json.dumps(outcome_json(outcome, prompt)))
        elif outcome.ok:
            for path in outcome.paths:
                self.display.result(path)
        if outcome.error is not None:
            if isinstance(outcome.error, STOP_AUTH):
                raise outcome.error
            self.display.message(self.failure_line(outcome, prompt))
        elif self.gallery is not None:
            self.gallery.append((outcome.index, prompt, outcome.paths))

    def failure_line(self, outcome: BatchOutcome, prompt: str) -> str:
        """``item 3 ('a dog') failed: …``, with how to save the images when only saving failed."""
        error = outcome.error
        assert error is not None
        line = f"item {outcome.index} ({_short(prompt)}) failed: {in_cli_terms(error)}"
        if isinstance(error, DownloadError) and outcome.request_id and self.download_hint:
            line += f"; to save its images: radient download {outcome.request_id} -o {self.output}"
        return line

    def gallery_entries(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(prompt, paths)`` of every successful item, in input order."""
        return [(prompt, paths) for _, prompt, paths in sorted(self.gallery or ())]


async def _has_files(folder: str, outcome: BatchOutcome) -> bool:
    """Whether ``folder`` holds the first image of the outcome's job (``<request_id>_0.*``)."""
    first = Image(url="", request_id=outcome.request_id or "", index=0)
    return await anyio.to_thread.run_sync(lambda: existing_file(folder, first) is not None)


def _provider_of(item: object, defaults: Mapping[str, Any]) -> str | None:
    provider = item.get("provider") if isinstance(item, Mapping) else None
    value = provider or defaults.get("provider")
    return value if isinstance(value, str) else None


def outcome_json(outcome: BatchOutcome, prompt: str) -> dict[str, Any]:
    """One ``--json`` line for an outcome."""
    return {
        "index": outcome.index,
        "prompt": prompt,
        "ok": outcome.ok,
        "request_id": outcome.request_id,
        "paths": list(outcome.paths),
        "resumed": outcome.resumed,
        "error": None if outcome.error is None else str(outcome.error),
    }


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
