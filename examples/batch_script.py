"""Generate images for 1,000 prompts: bounded, resumable, with a progress bar and an HTML gallery.

    python examples/batch_script.py --local                  # 1,000 made-up prompts, no account
    python examples/batch_script.py prompts.txt -o out/      # your prompts, one per line
    python examples/batch_script.py p.txt --make-prompts 50  # write 50 prompts to edit, then run

Without a prompts file, 1,000 prompts are made from a few subjects, styles and times of day.
Images go to OUTPUT, the manifest to OUTPUT/batch.jsonl and the gallery to OUTPUT/gallery.html.
Interrupt it at any time (Ctrl-C) and run it again: finished prompts are skipped, none is generated
twice, and no half-written file is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import quote

import radient_async

SUBJECTS = ("a lighthouse", "a red fox", "a mountain lake", "an old library", "a city street")
STYLES = ("in watercolour", "as pixel art", "in heavy fog", "under neon light", "as an etching")
TIMES = ("at dawn", "at noon", "at dusk", "at night")


def made_up_prompts(count: int) -> list[str]:
    """``count`` distinct prompts: every subject, style and time, then numbered variations."""
    combos = itertools.cycle(itertools.product(SUBJECTS, STYLES, TIMES))
    return [
        f"{s} {style} {t}, study {i}"
        for i, (s, style, t) in zip(range(count), combos, strict=False)
    ]


def read_prompts(path: Path) -> list[str]:
    """One prompt per line; blank lines and ``#`` comments are skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@contextlib.asynccontextmanager
async def open_session(local: bool, concurrency: int) -> AsyncIterator[radient_async.Session]:
    """A session against RADIENT_BASE_URL, or against an embedded local server."""
    limits = radient_async.Limits(jobs=concurrency)
    if not local:
        async with radient_async.Session(limits=limits) as session:
            yield session
        return
    from radient_async.server import LocalServer, ServerConfig

    config = ServerConfig(api_key="batch-key", latency=0.2, latency_jitter=0.1)
    async with (
        LocalServer(config) as server,
        radient_async.Session("batch-key", server.base_url, limits=limits) as session,
    ):
        yield session


def write_gallery(page: Path, done: Sequence[radient_async.BatchOutcome]) -> None:
    """An HTML page of every saved image, captioned with its prompt; sources relative to it."""
    results = [
        radient_async.GenerationResult(
            request_id=outcome.request_id or "",
            prompt=str(outcome.item),
            images=tuple(
                radient_async.Image(url=quote(Path(os.path.relpath(path, page.parent)).as_posix()))
                for path in outcome.paths
            ),
        )
        for outcome in sorted(done, key=lambda outcome: outcome.index)
    ]
    grid = radient_async.gallery_html(results, title=f"{len(results)} prompts")
    page.write_text(f'<!doctype html><meta charset="utf-8"><title>batch</title>{grid}\n')


async def run(prompts: list[str], output: Path, local: bool, concurrency: int) -> int:
    """Generate and save every prompt; returns the number that failed."""
    done: list[radient_async.BatchOutcome] = []
    failed = 0
    async with open_session(local, concurrency) as session:
        async for outcome in session.map(
            prompts,
            download_to=output,
            manifest=output / "batch.jsonl",
            progress=True,  # a tqdm bar (or rich, when tqdm is not installed)
            image_size="square",
        ):
            if outcome.ok:
                done.append(outcome)
            else:
                failed += 1
                print(f"#{outcome.index} {outcome.item!r} failed: {outcome.error}")
    write_gallery(output / "gallery.html", done)
    resumed = sum(outcome.resumed for outcome in done)
    print(f"{len(done)} done ({resumed} from an earlier run), {failed} failed")
    print(f"gallery: {output / 'gallery.html'}")
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", type=Path, nargs="?", help="one prompt per line")
    parser.add_argument("-o", "--output", type=Path, default=Path("out"))
    parser.add_argument("--local", action="store_true", help="use an embedded local server")
    parser.add_argument("--limit", type=int, help="only the first N prompts")
    parser.add_argument("--concurrency", type=int, default=64, help="jobs in flight at once")
    parser.add_argument("--make-prompts", type=int, metavar="N", help="write N to PROMPTS first")
    args = parser.parse_args(argv)
    if args.prompts and args.make_prompts:
        args.prompts.write_text("\n".join(made_up_prompts(args.make_prompts)) + "\n")
    prompts = read_prompts(args.prompts) if args.prompts else made_up_prompts(1000)
    prompts = prompts[: args.limit] if args.limit else prompts
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        failed = asyncio.run(run(prompts, args.output, args.local, args.concurrency))
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue")
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
