"""Approving a version whose only open gates could not be assessed, so that it may be served.

At a municipality's size some gates cannot be told either way (the interval straddles the
criterion, a group is too small). Such a version is registered but not served until an auditor
or admin takes responsibility: the approval names their key and their reason, is written to the
audit log before it takes effect, and is shown with the version (tag `approval`, `GET /v1/model`,
the report's gates). A version with a failed gate can never be approved: no setting loosens a
gate to get there.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.db import StoreUnavailable, is_database_url, open_existing
from riskscreen.audit.keys import KeyStore, api_keys
from riskscreen.audit.table import audit_records
from riskscreen.contract.identity import refusal
from riskscreen.registry import ARTIFACT_HASH_TAG, client
from riskscreen.settings import Settings

APPROVING_ROLES = ("auditor", "admin")
MIN_REASON, MAX_REASON = 10, 500


class ApprovalRefused(RuntimeError):
    """The approval was not recorded; the message says why. Nothing changed."""


def _checked_reason(reason: str) -> str:
    text = reason.strip()
    if not MIN_REASON <= len(text) <= MAX_REASON:
        raise ApprovalRefused(f"the reason must be {MIN_REASON}-{MAX_REASON} characters")
    why = refusal(text)
    if why is not None:  # it is about the model, never about a person
        raise ApprovalRefused(f"the reason {why}")
    return text


def approve_version(settings: Settings, token: str, version: str, reason: str) -> dict[str, Any]:
    """Record the approval in the audit log, tag the version with it and make it champion.

    Raises:
        ApprovalRefused: an unknown, revoked or case-manager key, a reason that is not about
            the model, a version that is not waiting for an approval, or no audit store or
            model registry where the settings point (none is created).
    """
    text = _checked_reason(reason)
    audit = AuditStore(_existing(settings))
    try:
        key = KeyStore(audit.engine).authenticate(token)
        if key is None:
            raise ApprovalRefused("unknown or revoked key")
        if key.role not in APPROVING_ROLES:
            raise ApprovalRefused(f"a {key.role} key may not approve a model version")
        mlc = client(settings)
        name = settings.model_name
        tags = mlc.get_model_version(name, version).tags
        verdict = tags.get("verdict")
        if verdict != "needs_approval":
            why = {
                "no": f"a gate failed ({tags.get('gates_failed')}); a failed gate is not approved",
                "yes": "every gate passed: it needs no approval",
            }.get(str(verdict), "it was registered without three-valued gates")
            raise ApprovalRefused(f"version {version} is not waiting for an approval: {why}")
        open_gates = [
            o["name"] for o in json.loads(tags["gate_outcomes"]) if o["outcome"] == "not_assessable"
        ]
        record = audit.append(
            "model_approved",
            {
                "key_id": key.key_id,
                "role": key.role,
                "model": {
                    "name": name,
                    "version": version,
                    "artifact_sha256": tags[ARTIFACT_HASH_TAG],
                },
                "open_gates": open_gates,
                "reason": text,
            },
        )
        approval = {
            "key_id": key.key_id,
            "role": key.role,
            "reason": text,
            "approved_at": record.created_at,
            "audit_record_id": record.record_id,
        }
        mlc.set_model_version_tag(name, version, "approval", json.dumps(approval))
        mlc.set_registered_model_alias(name, settings.model_alias, version)
        return approval
    finally:
        audit.close()


def _existing(settings: Settings) -> Engine:
    """The audit store's engine, once it and the model registry are known to exist: an approval
    in the wrong folder must not start an empty log and registry there."""
    try:
        engine = open_existing(settings.resolved_audit_url, (audit_records.name, api_keys.name))
        registry = settings.resolved_tracking_uri
        if is_database_url(registry):
            try:
                open_existing(
                    registry,
                    ("registered_models",),  # MLflow's; as riskscreen.cli.common checks it
                    what="model registry",
                    setting="RISKSCREEN_TRACKING_URI",
                    made_by="riskscreen train",
                ).dispose()
            except StoreUnavailable:
                engine.dispose()
                raise
    except StoreUnavailable as exc:
        raise ApprovalRefused(str(exc)) from exc
    return engine
