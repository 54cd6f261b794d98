"""Every example in examples/ runs against the local server."""

from __future__ import annotations

import ast
import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from radient_async.server import ServerConfig, ThreadedServer

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart_local(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--local", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("*.png"))) == 2


def test_batch_script_with_manifest_progress_and_gallery(tmp_path: Path) -> None:
    prompts, out = tmp_path / "prompts.txt", tmp_path / "out"
    command = [
        sys.executable,
        str(EXAMPLES / "batch_script.py"),
        str(prompts),
        "-o",
        str(out),
        "--local",
        "--make-prompts",
        "1000",
        "--limit",
        "40",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert len(prompts.read_text().splitlines()) == 1000
    assert len(list(out.glob("*.png"))) == 40
    assert (out / "gallery.html").read_text().count("<img") == 40
    records = [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()[1:]]
    assert sum(r["status"] == "completed" for r in records) == 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fastapi_app_under_uvicorn() -> None:
    config = ServerConfig(api_key="fastapi-key", latency=0.1)
    with ThreadedServer(config) as radient:
        port = _free_port()
        env = {
            "RADIENT_API_KEY": "fastapi-key",
            "RADIENT_BASE_URL": radient.base_url,
            "MAX_CONCURRENT_GENERATIONS": "4",
            "PATH": "/usr/bin:/bin",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "examples.fastapi_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=EXAMPLES.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for _ in range(100):
                    try:
                        client.get("/docs")
                        break
                    except httpx.TransportError:
                        import time

                        time.sleep(0.1)

                async def many() -> list[httpx.Response]:
                    async with httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{port}", timeout=30
                    ) as aclient:
                        return await asyncio.gather(
                            *(
                                aclient.post(
                                    "/images", json={"prompt": f"p{i}", "image_size": "square"}
                                )
                                for i in range(12)
                            )
                        )

                responses = asyncio.run(many())
                bad = client.post("/images", json={"prompt": "x", "image_size": "enormous"})
                failed = client.post("/images", json={"prompt": "x [fail]"})
        finally:
            server.terminate()
            server.communicate(timeout=10)
        assert [r.status_code for r in responses] == [200] * 12
        assert all(len(r.json()["urls"]) == 1 for r in responses)
        assert bad.status_code == 422
        assert failed.status_code == 502
        assert radient.stats.jobs_created == 13


def test_notebook_cells_run_with_top_level_await() -> None:
    source = (EXAMPLES / "notebook.py").read_text()
    code = compile(source, "notebook.py", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {}

    async def run_cells() -> None:
        result = eval(code, namespace)  # noqa: S307 - our own example file
        if asyncio.iscoroutine(result):
            await result

    asyncio.run(run_cells())
    assert len(namespace["outcomes"]) == 12
    assert "<img" in namespace["lighthouse"]._repr_html_()
    assert namespace["lakes"]._repr_html_().count("<img") == 12
