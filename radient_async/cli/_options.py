"""Options in CLI terms: checking request options up front, and naming what is wrong.

The SDK names its arguments (``num_images``, ``api_key=``, ``overwrite=True``); a CLI user can
only pass flags and environment variables. Everything here turns the first into the second:
``check_request_options`` builds the request ``generate`` or ``batch`` would send from the
options alone, before anything is started, and reports a bad value under its flag
(``-n/--num-images: must be between 1 and 8, got 0``); ``in_cli_terms`` says an SDK error's
remedy (``api_key``, ``https``, …) as the flags that do it; ``usage_line`` makes click's usage
errors one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs
import click

from radient_async._errors import RadientError, Remedy, ValidationError
from radient_async._models import IMAGE_SIZES, MAX_SIDE, MIN_SIDE, GenerationRequest, ImageSize

__all__ = [
    "OPTION_NAMES",
    "OUTPUT",
    "SIZE",
    "SizeType",
    "check_request_options",
    "in_cli_terms",
    "nearest_field",
    "request_fields",
    "usage_line",
]

# SDK field -> the option that sets it.
OPTION_NAMES = {
    "prompt": "PROMPT",
    "num_images": "-n/--num-images",
    "image_size": "--size",
    "provider": "--provider",
    "seed": "--seed",
    "source": "--source",
    "source_url": "--source",
    "strength": "--strength",
    "sync_mode": "--sync",
    "timeout": "--timeout",
    "download_to": "-o/--output",
    "concurrency": "--concurrency",
}
_PLACEHOLDER_SOURCE = "https://example.invalid/source.png"  # stands in for --source when checking

# What a CLI user can do about an error, by its ``remedy`` (``_errors._REMEDIES`` says it for
# Python callers).
_CLI_REMEDIES: dict[Remedy, str] = {
    "api_key": "pass --api-key or set RADIENT_API_KEY, or use --local: no account needed",
    "https": "use an https:// --base-url; plain http only to a loopback host such as 127.0.0.1",
    "overwrite": "--overwrite replaces it, --skip-existing keeps it",
    "source": "give a --source",
}


def request_fields() -> tuple[str, ...]:
    """The request fields a batch item may set (the rest go to the API as provider extras)."""
    names = [a.name for a in attrs.fields(GenerationRequest) if a.name != "extra"]
    return (*names, "extra", "idempotency_key")


def nearest_field(key: str) -> str | None:
    """The known request field ``key`` is most likely a typo of, if any is close."""
    matches = difflib.get_close_matches(key, request_fields(), n=1, cutoff=0.6)
    return matches[0] if matches else None


def check_request_options(fields: Mapping[str, Any], prompt: str = "placeholder") -> None:
    """Raise ``ValidationError`` (named by its option) if ``fields`` make no valid request.

    ``source`` (a file or URL, read only when submitting) is replaced by a placeholder URL so
    that ``--strength`` is checked with it; the file itself is checked by ``submit``.
    """
    named = {k: v for k, v in fields.items() if v is not None}
    if named.pop("source", None) is not None:
        named["source_url"] = _PLACEHOLDER_SOURCE
    try:
        GenerationRequest(prompt=prompt, **named)
    except ValidationError as exc:
        raise as_option_error(exc) from None


def as_option_error(exc: ValidationError) -> ValidationError:
    """``exc`` with its field named as the option that sets it (``num_images`` → ``-n``)."""
    field = exc.field.split(".")[0]
    option = OPTION_NAMES.get(field)
    if option is None:
        return exc
    message = exc.problem.removeprefix(f"{exc.field}: ")
    if field == "image_size":  # e.g. image_size.width: a --size of WxH out of range
        message = f"each side must be {MIN_SIDE} to {MAX_SIDE} pixels ({message})"
    return ValidationError(option, message, remedy=exc.remedy)


def in_cli_terms(error: RadientError) -> str:
    """``error``'s message, with its remedy said as the flags and variables that do it."""
    if error.remedy is None:
        return str(error)
    return f"{error.problem} ({_CLI_REMEDIES[error.remedy]})"


class SizeType(click.ParamType):  # type: ignore[type-arg]
    """``--size``: a size name (``square``, ``landscape_16_9``, …) or ``WIDTHxHEIGHT``."""

    name = "size"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> str | ImageSize:
        if isinstance(value, ImageSize):
            return value
        text = str(value).strip().lower()
        if text in IMAGE_SIZES:
            return text
        width, sep, height = text.partition("x")
        if sep and width.isdigit() and height.isdigit():
            if not all(MIN_SIDE <= int(side) <= MAX_SIDE for side in (width, height)):
                self.fail(
                    f"{value!r}: each side must be {MIN_SIDE} to {MAX_SIDE} pixels", param, ctx
                )
            return ImageSize(int(width), int(height))
        names = ", ".join(IMAGE_SIZES)
        self.fail(
            f"{value!r} is neither a size name ({names}) nor WIDTHxHEIGHT "
            f"({MIN_SIDE} to {MAX_SIDE} a side)",
            param,
            ctx,
        )


SIZE = SizeType()

# -o/--output, as generate, batch and download take it.
OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Directory to save the images in (created if needed).",
)


def usage_line(exc: click.UsageError) -> str:
    """A click usage error as one line: what is wrong, and where the help is."""
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        text = f"{_param_name(exc)}: {_lower_first(exc.message)}"
    else:
        text = _lower_first(exc.format_message())
    text = " ".join(text.split())  # click may wrap its messages
    where = f"{exc.ctx.command_path} --help" if exc.ctx is not None else "radient --help"
    return f"error: {text.rstrip('.')} (see '{where}')"


def _param_name(exc: click.BadParameter) -> str:
    """``-n/--num-images``, ``--size`` or ``FILE``: the parameter as the user typed it."""
    param = exc.param
    if param is None:
        hint = exc.param_hint
        if hint is None:
            return "value"
        return hint if isinstance(hint, str) else "/".join(hint)
    if isinstance(param, click.Argument):
        return param.human_readable_name
    return "/".join(param.opts) or param.human_readable_name


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
