"""Serve a bench app with exactly the uvicorn settings `riskscreen serve` uses.

    python -m bench.serve noop --port P [--workers N]

`noop` (bench/noop_app.py) logs nothing, like a bare endpoint.
"""

from __future__ import annotations

import argparse

import uvicorn

APPS = {"noop": "bench.noop_app:app"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        APPS[args.app],
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
