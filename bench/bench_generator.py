"""Synthetic practice generation at scale: seconds, objects and peak memory as JSON.

Usage: python bench/bench_generator.py [--clients 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from lorchestra_dagster.sources.sandbox.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    practice = generate(args.clients, args.seed)
    seconds = time.perf_counter() - start
    objects = sum(practice.counts().values())
    print(
        json.dumps(
            {
                "bench": "generator",
                "clients": args.clients,
                "objects": objects,
                "seconds": round(seconds, 3),
                "objects_per_s": round(objects / seconds, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
