"""The framework's ceiling: a FastAPI endpoint that validates the `POST /v1/scores` body with the
service's own ScoreRequest model and returns a constant. No auth, no model, no audit, no
middleware: whatever riskscreen adds is measured against this, served with the same settings.
"""

from fastapi import FastAPI, Response

from service.schemas import ScoreRequest

CONSTANT = b'{"ok":true}'

app = FastAPI(title="riskscreen bench no-op", openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/v1/scores", status_code=201)
async def noop_score(body: ScoreRequest) -> Response:  # type: ignore[valid-type]
    """Validated, then ignored."""
    return Response(CONSTANT, status_code=201, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(CONSTANT, media_type="application/json")
