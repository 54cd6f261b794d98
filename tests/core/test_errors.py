"""The exception tree: every error is a RadientError, with the documented bases and messages."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

import radient_async as ra
from radient_async import _errors

TREE = [
    (ra.ValidationError, (ra.RadientError, ValueError)),
    (ra.ConfigurationError, (ra.RadientError, ValueError)),
    (ra.SessionClosedError, (ra.RadientError, RuntimeError)),
    (ra.APIError, (ra.RadientError,)),
    (ra.BadRequestError, (ra.APIError,)),
    (ra.AuthenticationError, (ra.APIError,)),
    (ra.PermissionDeniedError, (ra.APIError,)),
    (ra.NotFoundError, (ra.APIError,)),
    (ra.ConflictError, (ra.APIError,)),
    (ra.RateLimitError, (ra.APIError,)),
    (ra.ServerError, (ra.APIError,)),
    (ra.APIConnectionError, (ra.RadientError,)),
    (ra.APITimeoutError, (ra.APIConnectionError, TimeoutError)),
    (ra.MalformedResponseError, (ra.RadientError,)),
    (ra.JobError, (ra.RadientError,)),
    (ra.JobFailed, (ra.JobError,)),
    (ra.JobTimeout, (ra.JobError, TimeoutError)),
    (ra.JobCancelled, (ra.JobError,)),
    (ra.UnexpectedStatusError, (ra.JobError,)),
    (ra.DownloadError, (ra.RadientError,)),
    (ra.IntegrityError, (ra.DownloadError,)),
]


@pytest.mark.parametrize(("cls", "bases"), TREE)
def test_the_tree_is_as_documented(cls: type[Exception], bases: tuple[type, ...]) -> None:
    assert cls.__bases__ == bases
    assert issubclass(cls, ra.RadientError)
    assert cls.__name__ in (_errors.__doc__ or "")


def test_every_exception_class_is_in_the_tree_and_exported() -> None:
    classes = {
        value
        for value in vars(_errors).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert classes == {cls for cls, _ in TREE} | {ra.RadientError}
    assert set(_errors.__all__) == {cls.__name__ for cls in classes}
    for cls in classes:
        assert getattr(ra, cls.__name__) is cls


@pytest.mark.parametrize(
    ("cls", "builtin", "absent"),
    [
        (ra.ValidationError, ValueError, TimeoutError),
        (ra.ConfigurationError, ValueError, TimeoutError),
        (ra.SessionClosedError, RuntimeError, ValueError),
        (ra.JobTimeout, TimeoutError, ValueError),
        (ra.APITimeoutError, TimeoutError, ValueError),
        (ra.JobFailed, Exception, TimeoutError),
        (ra.ServerError, Exception, TimeoutError),
        (ra.RateLimitError, Exception, TimeoutError),
    ],
)
def test_builtin_bases_let_generic_handlers_catch(
    cls: type[Exception], builtin: type[Exception], absent: type[Exception]
) -> None:
    assert issubclass(cls, builtin)
    assert not issubclass(cls, absent)


def sample_errors() -> list[ra.RadientError]:
    return [
        ra.RadientError("base message"),
        ra.ValidationError("num_images", "must be between 1 and 8, got 9"),
        ra.ConfigurationError("no API key"),
        ra.SessionClosedError("the session is closed"),
        ra.APIError("HTTP 418: teapot", status=418, request_id="r1", body="b", code="c", field="f"),
        ra.NotFoundError("HTTP 404: unknown job", status=404),
        ra.RateLimitError("HTTP 429: slow down", status=429, retry_after=2.5),
        ra.ServerError("HTTP 503: busy", status=503, body="<html>"),
        ra.APIConnectionError("GET https://api/x: connection refused"),
        ra.APITimeoutError("GET https://api/x: timed out"),
        ra.MalformedResponseError("job: expected JSON", status=200, body="<html>"),
        ra.JobFailed("imgreq_1", "nsfw content"),
        ra.JobFailed("imgreq_2", None),
        ra.JobTimeout("imgreq_3", 12.345, "PROCESSING"),
        ra.JobCancelled("imgreq_4", "session closed"),
        ra.UnexpectedStatusError("imgreq_5", "IN_QUEUE"),
        ra.DownloadError("could not fetch", url="https://cdn/x.png"),
        ra.IntegrityError("got 10 of 20 bytes", url="https://cdn/x.png"),
    ]


@pytest.mark.parametrize(
    ("error", "text"),
    list(
        zip(
            sample_errors(),
            [
                "base message",
                "num_images: must be between 1 and 8, got 9",
                "no API key",
                "the session is closed",
                "HTTP 418: teapot",
                "HTTP 404: unknown job",
                "HTTP 429: slow down",
                "HTTP 503: busy",
                "GET https://api/x: connection refused",
                "GET https://api/x: timed out",
                "job: expected JSON",
                "job imgreq_1 failed: nsfw content",
                "job imgreq_2 failed: no error message given",
                "job imgreq_3 did not finish within 12.3s (last status: PROCESSING)",
                "job imgreq_4 was cancelled: session closed",
                "job imgreq_5 reported unknown status 'IN_QUEUE' repeatedly",
                "could not fetch",
                "got 10 of 20 bytes",
            ],
            strict=True,
        )
    ),
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_str_is_the_informative_message(error: ra.RadientError, text: str) -> None:
    assert str(error) == text
    assert error.message == text
    assert error.args == (text,)
    assert text in repr(error)
    assert repr(error).startswith(type(error).__name__)


def test_attributes_carry_the_details() -> None:
    api = ra.APIError(
        "m", status=422, request_id="r", body="raw", code="out_of_range", field="seed"
    )
    assert (api.status, api.request_id, api.body, api.code, api.field) == (
        422,
        "r",
        "raw",
        "out_of_range",
        "seed",
    )
    bare = ra.ServerError("m", status=500)
    assert (bare.request_id, bare.body, bare.code, bare.field) == (None, "", None, None)
    assert ra.RateLimitError("m", status=429, retry_after=1.5).retry_after == 1.5
    assert ra.RateLimitError("m", status=429).retry_after is None
    assert ra.ValidationError("seed", "bad").field == "seed"
    malformed = ra.MalformedResponseError("m")
    assert (malformed.status, malformed.body) == (None, "")
    failed = ra.JobFailed("r", "why")
    assert (failed.request_id, failed.error) == ("r", "why")
    assert ra.JobFailed("r", "").error == "no error message given"
    timeout = ra.JobTimeout("r", 3.0, None)
    assert (timeout.request_id, timeout.waited, timeout.last_status) == ("r", 3.0, None)
    assert "last status: None" in str(timeout)
    unexpected = ra.UnexpectedStatusError("r", "WEIRD")
    assert (unexpected.request_id, unexpected.status) == ("r", "WEIRD")
    assert ra.JobCancelled("r", "x").request_id == "r"
    assert ra.DownloadError("m").url is None
    assert ra.IntegrityError("m", url="u").url == "u"


def test_api_error_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ra.APIError("m", 500)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ra.APIError("m")  # type: ignore[call-arg]


def test_errors_can_be_raised_and_caught_by_their_bases() -> None:
    with pytest.raises(ra.APIError) as caught:
        raise ra.RateLimitError("HTTP 429: x", status=429, retry_after=1.0)
    assert isinstance(caught.value, ra.RateLimitError)
    with pytest.raises(TimeoutError):
        raise ra.JobTimeout("r", 1.0, "PROCESSING")
    with pytest.raises(ValueError, match="prompt"):
        raise ra.ValidationError("prompt", "must not be empty")


def round_trip(error: ra.RadientError) -> None:
    for clone in (
        pickle.loads(pickle.dumps(error)),  # noqa: S301 - our own bytes, round-tripped
        copy.copy(error),
    ):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert vars(clone) == vars(error)


PICKLABLE = (
    ra.ConfigurationError,
    ra.SessionClosedError,
    ra.APIConnectionError,
    ra.MalformedResponseError,
    ra.DownloadError,
)


@pytest.mark.parametrize(
    "error",
    [
        error
        for error in sample_errors()
        if type(error) is ra.RadientError or isinstance(error, PICKLABLE)
    ],
    ids=lambda value: type(value).__name__,
)
def test_errors_with_message_only_constructors_survive_pickling(error: ra.RadientError) -> None:
    round_trip(error)


@pytest.mark.parametrize(
    "error",
    [
        error
        for error in sample_errors()
        if type(error) is not ra.RadientError and not isinstance(error, PICKLABLE)
    ],
    ids=lambda value: type(value).__name__,
)
def test_errors_with_richer_constructors_survive_pickling(error: ra.RadientError) -> None:
    round_trip(error)


def test_the_public_error_docs_draw_the_same_tree() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    module = _errors.__doc__ or ""
    tree = module[module.index("RadientError\n") : module.index("\n\nMessages")]
    assert "\n".join(line[4:] if line else line for line in tree.splitlines()) in doc


def test_an_error_the_caller_can_fix_names_the_fix() -> None:
    # Each one before any request: none of these reaches a server.
    with pytest.raises(ra.ConfigurationError) as no_key:
        ra.Session("", "http://127.0.0.1:9/v1")
    with pytest.raises(ra.ConfigurationError) as plain_http:
        ra.Session("k", "http://example.com/v1")
    with pytest.raises(ra.ValidationError) as strength:
        ra.GenerationRequest(prompt="x", strength=0.5)
    found = {e.value.remedy: e.value for e in (no_key, plain_http, strength)}
    assert set(found) == {"api_key", "https", "source"}
    for remedy, error in found.items():
        assert str(error) == f"{error.problem} ({_errors._REMEDIES[remedy]})"
    assert no_key.value.problem == "no API key"
    assert "allow_insecure_http=True" in str(plain_http.value)
    assert strength.value.problem == "strength: only applies to image-to-image"
    assert ra.JobFailed("r1", "nsfw").remedy is None


def test_remedies_survive_pickling() -> None:
    error = ra.DownloadError("out.png already exists", url="http://x/y.png", remedy="overwrite")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (again.remedy, again.problem, str(again)) == (
        "overwrite",
        "out.png already exists",
        "out.png already exists (pass overwrite=True to replace it)",
    )
