"""Throughput and peak memory of the synthetic cohort generator.

Targets (the task brief): at least 200,000 people/s end to end (generation and writing the
files) and at most 2 GiB peak resident memory for 1,000,000 people on a 2-core machine.

Each measurement runs in a fresh Python subprocess, so that its peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, read by the child at its end) is the peak of that
job alone, interpreter and imports included. Timing covers the call only, not the imports.

Usage (from the repository root):

    .venv/bin/python bench/synth_throughput.py              # n = 1,000,000, seed 7
    .venv/bin/python bench/synth_throughput.py --n 200000

Output (one line per job; exit status 1 if a target is missed), e.g.:

    generate  n=1,000,000  2.0 s  500,000 people/s  peak RSS 0.60 GiB  ok
    write     n=1,000,000  2.3 s  430,000 people/s  peak RSS 0.45 GiB  ok
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIN_PEOPLE_PER_SECOND = 200_000
MAX_PEAK_GIB = 2.0
JOBS = ("generate", "write")


def _child(job: str, n: int, seed: int) -> None:
    """Run one job in this process and print its timing and peak memory as JSON."""
    from riskscreen.synth.generate import generate_cohort, load_synth_config, write_cohort

    config = load_synth_config()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if job == "generate":
            generate_cohort(n, seed, config)
        else:
            write_cohort(Path(tmp), n=n, seed=seed, config=config)
        seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"job": job, "n": n, "seconds": seconds, "peak_kib": peak_kib}))


def measure(job: str, n: int, seed: int) -> dict[str, float]:
    """Run `job` in a fresh interpreter and return its measurements."""
    args = [sys.executable, __file__, "--child", job, "--n", str(n), "--seed", str(seed)]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=JOBS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n, args.seed)
        return 0
    ok = True
    for job in JOBS:
        m = measure(job, args.n, args.seed)
        rate, peak_gib = m["n"] / m["seconds"], m["peak_kib"] / 2**20
        fine = rate >= MIN_PEOPLE_PER_SECOND and peak_gib <= MAX_PEAK_GIB
        ok &= fine
        print(
            f"{job:<9} n={args.n:,}  {m['seconds']:.1f} s  {rate:,.0f} people/s  "
            f"peak RSS {peak_gib:.2f} GiB  {'ok' if fine else 'MISSED TARGET'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
