"""`riskscreen keys`: issue, list and revoke API keys; each change is an audit record.

`create` is how a new machine is set up, so it creates the audit store if there is none (and
says where); `list` and `revoke` need the store that exists and create nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer

from riskscreen.cli.common import existing_stores, stores

app = typer.Typer(no_args_is_help=True, help="API keys for case managers, auditors, admins.")


@app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="case_manager, auditor or admin")],
    name: Annotated[str, typer.Option(help="Who or what holds the key (no personal data needed).")],
) -> None:
    """Issue a key and print its token once; only a hash is kept. Creates the audit store if
    there is none yet (on a new machine), and says where."""
    from riskscreen.audit.keys import ROLES
    from riskscreen.contract.identity import refusal

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    if (why := refusal(name)) is not None:  # the name is in the audit log for good
        raise typer.BadParameter(f"the name {why}", param_hint="--name")
    audit, keys = stores(ctx)
    key, token = keys.create(role, name)
    audit.append("key_created", key.as_payload())
    typer.echo(f"key {key.key_id} ({key.role}, {key.name}); the token is shown only now:")
    typer.echo(token)


@app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """Every key with its role and whether it is revoked (never a secret)."""
    _, keys = existing_stores(ctx, log=False, keys=True)
    for key in keys.list():
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        typer.echo(f"{key.key_id}  {key.role:12s}  {state:24s}  {key.name}")


@app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
) -> None:
    """Revoke a key at once; its token stops working on the next request."""
    audit, keys = existing_stores(ctx, keys=True)
    key = keys.revoke(key_id)
    if key is None:
        typer.echo(f"no key {key_id}", err=True)
        raise typer.Exit(code=1)
    audit.append("key_revoked", key.as_payload())
    typer.echo(f"revoked {key.key_id} ({key.role}, {key.name})")
