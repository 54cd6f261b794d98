"""What a batch is made of: its items, their outcomes, and the checks made before it starts.

``Session.map`` takes prompts, ``GenerationRequest`` values or JSON-like mappings (``BatchItem``)
and yields one ``BatchOutcome`` per item; ``_batch`` runs them. Pure helpers, no I/O.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import attrs

from ._errors import RadientError, ValidationError
from ._keys import check_idempotency_key
from ._models import GenerationRequest, GenerationResult

__all__ = [
    "BatchItem",
    "BatchOutcome",
    "check_concurrency",
    "enumerate_items",
    "in_order",
    "item_error",
    "item_idempotency_key",
    "length_of",
    "to_request",
]

BatchItem = str | GenerationRequest | Mapping[str, Any]


@attrs.frozen(kw_only=True)
class BatchOutcome:
    """What became of one batch item: its result (and saved files) or its error."""

    index: int
    item: BatchItem
    request_id: str | None = None
    result: GenerationResult | None = None
    paths: tuple[str, ...] = ()
    error: RadientError | None = None
    resumed: bool = False
    resubmitted: bool = False

    @property
    def ok(self) -> bool:
        """True when the item produced its images (and files, when downloading)."""
        return self.error is None

    def unwrap(self) -> GenerationResult:
        """The result, or raise the item's error."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def _repr_html_(self) -> str:
        from ._display import result_html

        return result_html(self.result) if self.result else f"<pre>{self.error}</pre>"


def to_request(item: BatchItem, defaults: Mapping[str, Any]) -> GenerationRequest:
    """A prompt, a request, or a JSON-like mapping of request fields, as a ``GenerationRequest``."""
    if isinstance(item, GenerationRequest):
        return item
    if isinstance(item, str):
        return GenerationRequest(prompt=item, **defaults)
    if isinstance(item, Mapping):
        fields = {**defaults, **item}
        fields.pop("idempotency_key", None)  # the item's own key: see item_idempotency_key
        if "source" in fields:
            raise ValidationError("source", "batch items take source_url (a URL or data: URI)")
        known = {a.name for a in attrs.fields(GenerationRequest)}
        extra = {k: v for k, v in fields.items() if k not in known}
        named = {k: v for k, v in fields.items() if k in known}
        if extra:
            named["extra"] = {**dict(named.get("extra") or {}), **extra}
        return GenerationRequest(**named)
    raise ValidationError("items", f"each item must be a prompt, request or mapping, not {item!r}")


def item_idempotency_key(item: BatchItem) -> str | None:
    """The ``idempotency_key`` a mapping item carries for its submit, checked; else None."""
    if isinstance(item, Mapping) and item.get("idempotency_key") is not None:
        return check_idempotency_key(item["idempotency_key"])
    return None


async def enumerate_items(
    items: Iterable[BatchItem] | AsyncIterable[BatchItem],
) -> AsyncGenerator[tuple[int, BatchItem], None]:
    """``(index, item)`` of a plain or async iterable, pulled one at a time."""
    if isinstance(items, AsyncIterable):
        index = 0
        async for item in items:
            yield index, item
            index += 1
    else:
        for index, item in enumerate(items):
            yield index, item


def item_error(exc: Exception) -> RadientError:
    """A typed error for an unexpected exception inside one item (the original is its cause)."""
    error = RadientError(f"the item failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


async def in_order(receive: AsyncIterable[BatchOutcome]) -> AsyncIterator[BatchOutcome]:
    """Outcomes re-ordered by input index (later ones wait for earlier ones)."""
    pending: dict[int, BatchOutcome] = {}
    expected = 0
    async for outcome in receive:
        pending[outcome.index] = outcome
        while expected in pending:
            yield pending.pop(expected)
            expected += 1
    for index in sorted(pending):
        yield pending[index]


def length_of(items: object) -> int | None:
    """``len(items)`` when it has one (a progress bar's total), else None."""
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


def check_concurrency(value: int | None, session_jobs: int) -> int:
    """The batch's items in flight: never silently fewer than asked (the session's job limit)."""
    if value is None:
        return session_jobs
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("concurrency", f"must be a positive integer, got {value!r}")
    if value > session_jobs:
        raise ValidationError(
            "concurrency",
            f"{value} is more than the session allows in flight (Limits(jobs={session_jobs})); "
            f"open the session with Limits(jobs={value}) or more",
        )
    return value
