"""The ASGI entry point for uvicorn workers: `service.main:app` (settings from RISKSCREEN_*)."""

from service.app import create_app

app = create_app()
