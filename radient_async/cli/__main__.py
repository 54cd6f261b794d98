"""``python -m radient_async.cli``: the ``radient`` command."""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
