"""Serve a bench app with exactly the uvicorn settings `riskscreen serve` uses.

    python -m bench.serve noop|proto --port P [--workers N]

`proto` also configures logging the way `riskscreen serve` does (INFO to stderr), so its access
log line per request costs what riskscreen's costs; `noop` logs nothing, like a bare endpoint.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn

APPS = {"noop": "bench.noop_app:app", "proto": "bench.proto_app:app"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.app == "proto":
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
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
