"""Exit codes, one-line errors, ``--debug``, and the API key never printed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import radient_async as ra
from radient_async.cli import cli, main
from radient_async.cli._run import CliError, exit_code_for
from radient_async.server import ServerConfig, ThreadedServer

SECRET = "sk-never-print-this-9f8e7d"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_no_api_key_exits_3_with_one_line() -> None:
    code, stdout, stderr = invoke("providers", env={"RADIENT_API_KEY": "", "RADIENT_BASE_URL": ""})
    assert code == 3
    assert stdout == ""
    assert stderr.startswith("error: no API key")
    assert stderr.count("\n") == 1


def test_a_wrong_key_exits_3_and_is_never_printed_even_with_debug() -> None:
    with ThreadedServer(ServerConfig(api_key="the-right-key")) as server:
        env = {"RADIENT_API_KEY": SECRET, "RADIENT_BASE_URL": server.base_url}
        code, stdout, stderr = invoke("--debug", "providers", env=env)
        option = ["--api-key", SECRET, "--base-url", server.base_url]
        code2, _, stderr2 = invoke("providers", *option, env={"RADIENT_API_KEY": ""})
    assert (code, code2) == (3, 3)
    assert "DEBUG radient_async" in stderr  # --debug shows the SDK's log
    assert "Traceback" in stderr  # and the traceback
    assert "401" in stderr.splitlines()[-1]
    assert SECRET not in stdout + stderr + stderr2


def test_an_unreachable_api_exits_4() -> None:
    env = {"RADIENT_API_KEY": "k", "RADIENT_BASE_URL": "http://127.0.0.1:9/v1"}
    code, _, stderr = invoke("providers", "--timeout", "1", env=env)  # retried for 1 s
    assert code == 4
    assert stderr.startswith("error: ")
    assert "127.0.0.1:9" in stderr
    assert "Traceback" not in stderr


def test_plain_http_off_loopback_is_a_configuration_error() -> None:
    code, _, stderr = invoke("providers", "--api-key", "k", "--base-url", "http://example.com/v1")
    assert code == 3
    assert stderr.startswith("error: ")


def test_a_bug_is_one_line_and_exit_1_unless_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: ra.Session) -> tuple[str, ...]:
        raise RuntimeError("boom")

    monkeypatch.setattr(ra.Session, "providers", broken)
    code, _, stderr = invoke("--local", "providers")
    assert code == 1
    assert (
        stderr
        == "error: internal error: RuntimeError: boom (rerun with --debug for the traceback)\n"
    )
    code, _, stderr = invoke("--local", "providers", "--debug")
    assert code == 1
    assert "Traceback (most recent call last)" in stderr
    assert "in broken" in stderr


def test_main_returns_the_exit_code_instead_of_raising(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["--help"]) == 0
    assert main(["generate"]) == 2  # missing PROMPT
    assert main(["no-such-command"]) == 2
    assert main(["--local", "generate", "x", "-n", "0"]) == 2
    assert main(["providers", "--api-key", "", "--base-url", "http://127.0.0.1:9/v1"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_help_documents_the_exit_codes() -> None:
    for args in ([], ["generate"], ["batch"], ["serve"]):
        code, stdout, _ = invoke(*args, "--help")
        assert code == 0
        assert "Exit codes:" in stdout
        assert "130  interrupted" in stdout


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ra.ValidationError("prompt", "must not be empty"), 2),
        (ra.ConfigurationError("no key"), 3),
        (ra.AuthenticationError("bad key", status=401), 3),
        (ra.PermissionDeniedError("no", status=403), 3),
        (ra.RateLimitError("slow down", status=429), 4),
        (ra.ServerError("oops", status=500), 4),
        (ra.NotFoundError("gone", status=404), 4),
        (ra.APIConnectionError("refused"), 4),
        (ra.APITimeoutError("slow"), 4),
        (ra.MalformedResponseError("html"), 4),
        (ra.DownloadError("truncated"), 4),
        (ra.JobFailed("imgreq_1", "nope"), 5),
        (ra.JobTimeout("imgreq_1", 1.0, "PROCESSING"), 5),
        (CliError("bad file", 2), 2),
        (OSError(28, "No space left on device"), 1),
        (RuntimeError("bug"), 1),
    ],
)
def test_exit_code_table(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code
