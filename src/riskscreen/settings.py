"""Where riskscreen keeps its state, read from RISKSCREEN_* environment variables.

Embedded defaults live under one data directory (SQLite for MLflow and the audit log, local
files for artifacts); production names PostgreSQL URLs and is refused the embedded defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKSCREEN_", extra="forbid", frozen=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    tracking_uri: str | None = None
    artifact_root: str | None = None
    audit_url: str | None = None
    model_name: str = "riskscreen"
    model_alias: str = "champion"
    # A full batch (100 records, longest values, pretty-printed) is about 100 kB.
    max_body_bytes: int = Field(default=256_000, ge=1024)
    # Admission control (service/limits.py): per key, per process ÷ workers; 503 past capacity.
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_burst: int = Field(default=60, ge=1)
    max_concurrent_requests: int = Field(default=32, ge=1, le=1000)
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    workers: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _production_is_not_embedded(self) -> Settings:
        if self.environment == "production":
            for name in ("tracking_uri", "audit_url"):
                value = getattr(self, name)
                if not value or value.startswith("sqlite"):
                    raise ValueError(f"production needs RISKSCREEN_{name.upper()} on PostgreSQL")
        return self

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.data_dir.resolve() / 'mlflow.db'}"

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or (self.data_dir.resolve() / "mlartifacts").as_uri()

    @property
    def resolved_audit_url(self) -> str:
        return self.audit_url or f"sqlite:///{self.data_dir.resolve() / 'audit.db'}"

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"
