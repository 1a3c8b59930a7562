"""A fork server for the crash tests: imports the whole stack once, then forks real servers.

A cold start of the service costs seconds of imports on these machines; a crash test that kills
the server hundreds of times would spend nearly all its time importing. This process imports
everything once and then, for each `start` command on stdin, forks a child that runs exactly what
`uvicorn service.main:app` runs (the app module is imported in the child, so the settings come
from its environment, the stores are opened and the model is loaded and verified there). The
parent holds no database connection, thread pool or event loop to carry across the fork.

One zygote serves a whole pytest worker (a session fixture), so the imports are paid once.
Protocol, one JSON object per line: {"op": "start", "port": P, "env": {...}, "log": path} ->
{"pid": N}; {"op": "wait", "pid": N} -> {"pid": N, "status": S}. EOF on stdin ends the zygote.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Everything a child needs is imported here, before any fork; the MLflow stores are otherwise
# imported lazily, at the first model load, in every child again.
import mlflow.artifacts
import mlflow.store.artifact.local_artifact_repo
import mlflow.store.db.utils
import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.sqlalchemy_store
import mlflow.tracking  # noqa: F401
import uvicorn

import service.app  # noqa: F401
from riskscreen.logs import service_log_config
from riskscreen.registry import mlflow_environment


def child(port: int, env: dict[str, str], log: str) -> None:
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    uvicorn.run(  # as `riskscreen serve` runs it, structured logs included
        "service.main:app",
        host="127.0.0.1",
        port=port,
        log_config=service_log_config(),
        access_log=False,
    )


def main() -> None:
    mlflow_environment()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "start":
            pid = os.fork()
            if pid == 0:
                status = 0
                try:
                    sys.stdin.close()
                    child(command["port"], command["env"], command["log"])
                except BaseException:
                    traceback.print_exc()
                    status = 1
                finally:
                    os._exit(status)
            print(json.dumps({"pid": pid}), flush=True)
        elif command["op"] == "wait":
            _, status = os.waitpid(command["pid"], 0)
            print(json.dumps({"pid": command["pid"], "status": status}), flush=True)


if __name__ == "__main__":
    main()
