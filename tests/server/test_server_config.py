"""Configuration is validated strictly; the command line maps onto it and runs the server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from radient_async.server import ENDPOINTS, FAULT_KINDS, FaultConfig, ServerConfig
from radient_async.server.__main__ import build_config, main, parser


def test_defaults_are_safe() -> None:
    config = ServerConfig()
    assert (config.host, config.port, config.api_key) == ("127.0.0.1", 0, None)
    assert (config.latency, config.latency_jitter, config.rate_limit) == (0.0, 0.0, None)
    assert config.providers == ("default", "sketch", "inline")
    assert config.default_provider == "default"
    assert config.base_path == "/v1"
    assert config.job_ttl == 3600
    assert config.max_live_jobs == 100_000
    assert config.max_body_bytes == 32 * 1024 * 1024
    assert not config.allow_remote_sources
    assert not config.separate_image_origin
    assert not config.poll_hint
    assert config.min_image_bytes == 0
    assert config.faults.rate == 0
    assert config.faults.kinds == FAULT_KINDS
    assert config.faults.endpoints == ENDPOINTS


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency": -0.1},
        {"latency": float("nan")},
        {"latency": "1"},
        {"latency_jitter": -1},
        {"latency": True},
        {"port": -1},
        {"port": 70000},
        {"port": "80"},
        {"host": ""},
        {"host": "127.0.0.1 "},
        {"api_key": ""},
        {"api_key": "has space"},
        {"api_key": "line\nbreak"},
        {"providers": ()},
        {"providers": ("default", "default")},
        {"providers": ("bad name",)},
        {"base_path": "v1"},
        {"base_path": "/v2"},
        {"base_path": "//v1"},
        {"image_base_url": "ftp://cdn"},
        {"separate_image_origin": 1},
        {"job_ttl": 0},
        {"job_ttl": -5},
        {"max_live_jobs": 0},
        {"max_live_jobs": 1.5},
        {"max_body_bytes": 10},
        {"max_source_bytes": 0},
        {"source_timeout": 0},
        {"rate_limit": 0},
        {"rate_limit": -3},
        {"rate_limit": float("inf")},
        {"poll_hint": "yes"},
        {"allow_remote_sources": None},
        {"min_image_bytes": -1},
        {"render_cache_bytes": -1},
        {"seed": 1.5},
        {"faults": {"rate": 0.5}},
    ],
)
def test_bad_server_config_raises_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ServerConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 1.5},
        {"rate": -0.1},
        {"kinds": ("418",)},
        {"kinds": ()},
        {"endpoints": ("admin",)},
        {"retry_after": -1},
        {"slow_delay": float("nan")},
    ],
)
def test_bad_fault_config_raises_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        FaultConfig(**kwargs)


def test_config_is_frozen_and_hides_the_key() -> None:
    config = ServerConfig(api_key="sk-secret", image_base_url="https://cdn.test/x/")
    assert config.image_base_url == "https://cdn.test/x"
    assert "sk-secret" not in repr(config)
    with pytest.raises(AttributeError):
        config.latency = 1  # type: ignore[misc]


def test_command_line_maps_onto_the_config() -> None:
    args = parser().parse_args(
        [
            "--port", "0", "--api-key", "k", "--latency", "1.5", "--jitter", "0.5",
            "--rate-limit", "20", "--fault-rate", "0.1", "--fault-kinds", "429", "reset",
            "--fault-endpoints", "status", "--retry-after", "2", "--slow-delay", "0.2",
            "--separate-image-origin", "--poll-hint", "--min-image-bytes", "1000",
            "--job-ttl", "60", "--max-live-jobs", "50", "--allow-remote-sources", "--seed", "7",
            "--providers", "default", "other", "--base-path", "/x/v1",
        ]
    )  # fmt: skip
    config = build_config(args)
    assert (config.port, config.api_key, config.latency, config.latency_jitter) == (
        0,
        "k",
        1.5,
        0.5,
    )
    assert config.rate_limit == 20
    assert config.faults == FaultConfig(
        rate=0.1, kinds=("429", "reset"), endpoints=("status",), retry_after=2, slow_delay=0.2
    )
    assert config.separate_image_origin
    assert config.poll_hint
    assert (config.min_image_bytes, config.job_ttl, config.max_live_jobs) == (1000, 60, 50)
    assert config.allow_remote_sources
    assert config.seed == 7
    assert config.providers == ("default", "other")
    assert config.base_path == "/x/v1"


def test_random_key_is_generated() -> None:
    config = build_config(parser().parse_args(["--random-key"]))
    assert config.api_key
    assert config.api_key.startswith("rk-")


def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--latency", "-1"]) == 2
    assert "latency" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["--fault-kinds", "418"])
    assert caught.value.code == 2


def test_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    assert "cannot serve" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "radient_async.server"],
        [os.path.join(os.path.dirname(sys.executable), "radient-server")],
    ],
    ids=["python -m", "console script"],
)
def test_the_server_process_prints_its_url_serves_and_stops_on_sigterm(
    command: list[str],
) -> None:
    if not os.path.exists(command[0]):
        pytest.skip("console script not installed")  # pragma: no cover
    process = subprocess.Popen(
        [*command, "--port", "0", "--api-key", "cli-key", "--separate-image-origin"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        rest = [process.stdout.readline(), process.stdout.readline()]
        assert rest[0].startswith("images served from http://127.0.0.1:")
        assert "cli-key" not in rest[1]  # a key the user typed is not echoed
        request = urllib.request.Request(  # noqa: S310 - our own http:// URL
            f"{base_url}/images/providers", headers={"Authorization": "Bearer cli-key"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert json.load(response) == {"providers": ["default", "sketch", "inline"]}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert err == ""
