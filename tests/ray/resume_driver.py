"""A driver the resume test starts and kills: joins the test's Ray cluster and runs ``generate``.

Usage: ``python resume_driver.py '<json settings>'`` (``address``, ``source``, ``output``,
``base_url``, ``api_key``, ``block_rows``).
"""

from __future__ import annotations

import json
import sys

import ray

import radient_async.ray as rr


def main() -> None:
    settings = json.loads(sys.argv[1])
    ray.init(address=settings.pop("address"), log_to_driver=False)
    rr.generate(settings.pop("source"), id_column="id", actors=2, images="path", **settings)


if __name__ == "__main__":
    main()
