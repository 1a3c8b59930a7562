"""What every command shares: logging for the terminal, settings, and the stores that must exist.

Kept out of the commands so that each command module stays one group of the CLI.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from riskscreen.audit.chain import AuditStore
    from riskscreen.audit.keys import KeyStore
    from riskscreen.settings import Settings


def configure_logging() -> None:
    """Log lines for a person at a terminal (the service configures JSON logs of its own)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def load_settings() -> Settings:
    """The service settings from RISKSCREEN_* variables, read when a command runs."""
    from riskscreen.settings import Settings

    return Settings()


def stores(ctx: typer.Context) -> tuple[AuditStore, KeyStore]:
    """The audit log and key store (one engine), closed when the command's context closes."""
    from riskscreen.audit.chain import AuditStore
    from riskscreen.audit.keys import KeyStore

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    audit = AuditStore.from_url(settings.resolved_audit_url)
    ctx.call_on_close(audit.close)
    audit.create_schema()
    keys = KeyStore(audit.engine)
    keys.create_schema()
    return audit, keys
