"""Generate images for many prompts: bounded, resumable, with progress and an HTML gallery.

    python examples/batch_script.py prompts.txt -o out/ --manifest out/batch.jsonl --local

Prompts come one per line (``--make-prompts N`` writes N varied prompts to the file first).
Interrupt it at any time and run it again: finished prompts are skipped, none is generated twice.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from pathlib import Path

import radient_async
from radient_async.cli import write_gallery

SUBJECTS = ["a lighthouse", "a red fox", "a mountain lake", "an old library", "a city street"]
STYLES = ["at dusk", "in watercolour", "as a pixel-art scene", "in heavy fog", "under neon light"]


def make_prompts(path: Path, count: int) -> None:
    combos = itertools.cycle(itertools.product(SUBJECTS, STYLES))
    lines = [f"{s} {t}, variation {i}" for i, (s, t) in zip(range(count), combos, strict=False)]
    path.write_text("\n".join(lines) + "\n")


def read_prompts(path: Path, limit: int | None) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return lines[:limit] if limit else lines


async def run(items: list[str], output: Path, manifest: Path, local: bool) -> int:
    outcomes = []
    server = None
    if local:
        from radient_async.server import LocalServer, ServerConfig

        server = LocalServer(ServerConfig(api_key="batch-key", latency=0.2, latency_jitter=0.1))
        await server.start()
    try:
        key = "batch-key" if server else None
        base = server.base_url if server else None
        async with radient_async.Session(key, base) as session:
            async for outcome in session.map(
                items, download_to=output, manifest=manifest, progress=True, image_size="square"
            ):
                outcomes.append(outcome)
    finally:
        if server is not None:
            await server.stop()
    write_gallery(str(output / "gallery.html"), outcomes)  # a few KB, once
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} done, {failed} failed; gallery at {output / 'gallery.html'}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("prompts", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("out"))
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--make-prompts", type=int, metavar="N")
    args = parser.parse_args()
    if args.make_prompts:
        make_prompts(args.prompts, args.make_prompts)
    manifest = args.manifest or args.output / "batch.jsonl"
    args.output.mkdir(parents=True, exist_ok=True)
    items = read_prompts(args.prompts, args.limit)
    return asyncio.run(run(items, args.output, manifest, args.local))


if __name__ == "__main__":
    raise SystemExit(main())
