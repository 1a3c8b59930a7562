"""What every command shares: logging for the terminal, settings, and the stores that must exist.

Kept out of the commands so that each command module stays one group of the CLI.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from riskscreen.audit.chain import AuditStore
    from riskscreen.audit.keys import KeyStore
    from riskscreen.registry import Registration
    from riskscreen.settings import Settings


def configure_logging() -> None:
    """Log lines for a person at a terminal (the service configures JSON logs of its own)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # interpret logs every boosting round of every bag at INFO: hundreds of lines per training
    # at a person's terminal, none of which they can act on.
    logging.getLogger("interpret").setLevel(logging.WARNING)


def load_settings() -> Settings:
    """The service settings from RISKSCREEN_* variables, read when a command runs."""
    from riskscreen.settings import Settings

    return Settings()


def stores(ctx: typer.Context) -> tuple[AuditStore, KeyStore]:
    """The audit log and key store, created if absent: only for the commands that set up a
    machine (`run`, `keys create`), which say so when they create one. Commands that only read
    or change what is there use :func:`existing_stores`. Closed when the command's context
    closes; exit 1 with the reason if the database cannot be used."""
    from riskscreen.audit.chain import AuditStore
    from riskscreen.audit.db import StoreMissing, StoreUnavailable, open_existing, store_location
    from riskscreen.audit.keys import KeyStore
    from riskscreen.audit.table import audit_records

    url = load_settings().resolved_audit_url
    try:
        try:
            open_existing(url, (audit_records.name,)).dispose()
            new = False
        except StoreMissing:
            new = True
        audit = AuditStore.from_url(url)
        ctx.call_on_close(audit.close)
        where = store_location(audit.engine)
        if audit.engine.dialect.name == "sqlite":
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        try:
            audit.create_schema()
            keys = KeyStore(audit.engine)
            keys.create_schema()
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"{exc} at {where}") from exc
    except StoreUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc
    if new:
        typer.echo(f"created a new audit store at {where}", err=True)
    return audit, keys


def existing_stores(
    ctx: typer.Context, *, log: bool = True, keys: bool = False
) -> tuple[AuditStore, KeyStore]:
    """The audit log and key store as they are, for the commands that read them (and those that
    revoke a key or append to the log). They must exist with the tables asked for (`log`: the
    audit records, `keys`: the API keys); otherwise exit 1 naming the absolute path looked at
    and the settings that point elsewhere. Creates no file, directory or table."""
    from riskscreen.audit.chain import AuditStore
    from riskscreen.audit.db import StoreUnavailable, open_existing
    from riskscreen.audit.keys import KeyStore, api_keys
    from riskscreen.audit.table import audit_records

    tables = [t.name for t, wanted in ((audit_records, log), (api_keys, keys)) if wanted]
    try:
        engine = open_existing(load_settings().resolved_audit_url, tables)
    except StoreUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc
    audit = AuditStore(engine)
    ctx.call_on_close(audit.close)
    return audit, KeyStore(engine)


def require_registry(settings: Settings) -> None:
    """Exit 1 naming the path if the MLflow store that registers the models is absent, before
    MLflow would create an empty one (a tracking URI that is no database is left to MLflow)."""
    from riskscreen.audit.db import StoreUnavailable, is_database_url, open_existing

    uri = settings.resolved_tracking_uri
    if not is_database_url(uri):
        return
    try:
        open_existing(
            uri,
            ("registered_models",),  # MLflow's; jobs/approval.py checks it the same way
            what="model registry",
            setting="RISKSCREEN_TRACKING_URI",
            made_by="riskscreen train",
        ).dispose()
    except StoreUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc


def exit_as_training(outcome: Registration) -> None:
    """Exit as `riskscreen train` does: 0 champion, 3 waiting for an approval, 2 a failed gate
    (the version is registered for the record either way)."""
    if outcome.verdict == "needs_approval":
        typer.echo(
            f"Version {outcome.version} is registered; no gate failed, but these could not be "
            f"assessed on these people: {', '.join(outcome.open_gates)}. It becomes champion "
            f"after an auditor or admin approves it: riskscreen model approve --version "
            f"{outcome.version} --reason TEXT (see the report).",
            err=True,
        )
        raise typer.Exit(code=3)
    if not outcome.champion:
        typer.echo(
            f"Gates failed ({', '.join(outcome.failed_gates)}): version "
            f"{outcome.version} is registered but not made champion.",
            err=True,
        )
        raise typer.Exit(code=2)
