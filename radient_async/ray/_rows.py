"""Pure row handling: an input row as a batch item with its derived key, an outcome as a result row.

Nothing here does I/O or knows about Ray; the mapper feeds rows in and result rows out. A row's key
is ``derive_idempotency_key(run_id, row id, request_fingerprint(request), attempt)``, so the same
row of the same run sends the same key from any actor, after any restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import pyarrow as pa

from radient_async import (
    ConfigurationError,
    GenerationRequest,
    JobFailed,
    RadientError,
    ValidationError,
    derive_idempotency_key,
    request_fingerprint,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "ImageMode",
    "Planned",
    "RowResult",
    "RowSpec",
    "check_columns",
    "error_row",
    "plan_row",
    "result_table",
]

ImageMode = Literal["path", "bytes", "url"]
IMAGE_MODES: tuple[ImageMode, ...] = ("path", "bytes", "url")
OUTPUT_COLUMNS = (
    "request_id",
    "status",
    "error",
    "error_type",
    "provider",
    "seed",
    "images",
    "idempotency_key",
)
_REQUEST_FIELDS = frozenset(field.name for field in attrs.fields(GenerationRequest))


def _column_names(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    names = (value,) if isinstance(value, str) else value
    if not all(isinstance(name, str) and name for name in names):
        raise ConfigurationError(f"{attribute.name} must be column names, got {value!r}")


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen(kw_only=True)
class RowSpec:
    """How a row becomes a request: its id column, its prompt column, per-row request fields
    (``columns``: columns named like ``GenerationRequest`` fields, e.g. ``seed``; a null means
    "not given") and ``defaults`` for every row."""

    id_column: str = attrs.field(validator=_column_names)
    prompt_column: str = attrs.field(default="prompt", validator=_column_names)
    columns: tuple[str, ...] = attrs.field(default=(), converter=_names, validator=_column_names)
    defaults: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)

    def __attrs_post_init__(self) -> None:
        if "source" in self.defaults or "source" in self.columns:
            raise ConfigurationError("rows take source_url (a URL or data: URI), not source")
        if "idempotency_key" in self.defaults or "idempotency_key" in self.columns:
            raise ConfigurationError("keys are derived per row; do not set idempotency_key")

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Every column the spec reads."""
        return (self.id_column, self.prompt_column, *self.columns)


@attrs.frozen
class Planned:
    """A row ready to submit: its position in the batch, its ``session.map`` item, its key."""

    index: int
    item: Mapping[str, Any]
    key: str


@attrs.frozen(kw_only=True)
class RowResult:
    """What one row produced; ``status`` is COMPLETED, FAILED (the server said so) or ERROR."""

    status: str
    key: str | None = None
    request_id: str | None = None
    error: str | None = None
    error_type: str | None = None
    provider: str | None = None
    seed: int | None = None
    images: tuple[str, ...] | tuple[bytes, ...] = ()


def check_columns(names: Sequence[str], spec: RowSpec) -> None:
    """Refuse a batch the spec cannot read, or whose columns the results would overwrite.

    This is the one error raised for a batch (every row of it would be wrong alike); row errors
    are returned as rows.
    """
    missing = [name for name in spec.input_columns if name not in names]
    if missing:
        raise ConfigurationError(f"the input has no column {missing[0]!r} (columns: {names})")
    clash = [name for name in OUTPUT_COLUMNS if name in names]
    if clash:
        raise ConfigurationError(f"the input already has a result column {clash[0]!r}; rename it")


def _row_fields(row: Mapping[str, Any], spec: RowSpec) -> dict[str, Any]:
    fields = dict(spec.defaults)
    fields["prompt"] = row[spec.prompt_column]
    for name in spec.columns:
        if row[name] is not None:
            fields[name] = row[name]
    return fields


def _request(fields: Mapping[str, Any]) -> GenerationRequest:
    """The request ``session.map`` builds from the same mapping (unknown names go to extra)."""
    named = {name: value for name, value in fields.items() if name in _REQUEST_FIELDS}
    extra = {name: value for name, value in fields.items() if name not in _REQUEST_FIELDS}
    if extra:
        named["extra"] = {**dict(named.get("extra") or {}), **extra}
    return GenerationRequest(**named)


def _row_id(value: object) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError("id", f"a row id must be a string or an int, got {value!r}")
    return value


def plan_row(
    index: int, row: Mapping[str, Any], spec: RowSpec, run_id: str, attempt: int
) -> Planned | RowResult:
    """The row's item and key, or (for an invalid row) its error row; never raises for a row."""
    try:
        fields = _row_fields(row, spec)
        request = _request(fields)
        row_id = _row_id(row[spec.id_column])
        key = derive_idempotency_key(run_id, row_id, request_fingerprint(request), attempt)
    except (RadientError, TypeError, ValueError) as exc:
        return error_row(exc)
    return Planned(index, {**fields, "idempotency_key": key}, key)


def error_row(
    error: BaseException, *, key: str | None = None, request_id: str | None = None
) -> RowResult:
    """The result row for a row that did not produce its images."""
    status = "FAILED" if isinstance(error, JobFailed) else "ERROR"
    return RowResult(
        status=status,
        key=key,
        request_id=request_id,
        error=str(error) or type(error).__name__,
        error_type=type(error).__name__,
    )


def _images_type(mode: ImageMode) -> pa.DataType:
    return pa.list_(pa.binary() if mode == "bytes" else pa.string())


def result_table(batch: pa.Table, results: Sequence[RowResult], mode: ImageMode) -> pa.Table:
    """The batch's own columns plus one result column each, in ``OUTPUT_COLUMNS`` order."""
    columns: dict[str, tuple[list[Any], pa.DataType]] = {
        "request_id": ([r.request_id for r in results], pa.string()),
        "status": ([r.status for r in results], pa.string()),
        "error": ([r.error for r in results], pa.string()),
        "error_type": ([r.error_type for r in results], pa.string()),
        "provider": ([r.provider for r in results], pa.string()),
        "seed": ([r.seed for r in results], pa.int64()),
        "images": ([list(r.images) for r in results], _images_type(mode)),
        "idempotency_key": ([r.key for r in results], pa.string()),
    }
    table = batch
    for name in OUTPUT_COLUMNS:
        values, kind = columns[name]
        table = table.append_column(pa.field(name, kind), pa.array(values, type=kind))
    return table
