"""All of the studio's knobs, read once from the environment (prefix ``STUDIO_``).

Every knob has a default that runs on one machine: SQLite and a broker with no server, both kept
in the data directory.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Lanes (Celery queues), by what the work needs; see DESIGN.md "Lanes and deployment".
#   training:  train, evaluate, batch predict, CAM over a split: one job per accelerator at a time
#   light:     imports, exports, previews, catalog analysis, model imports: several at once
#   inference: single pictures (and small batches) from warm models, micro-batched
LANES = ("training", "light", "inference")
# Names the lanes had before there were three; old rows and old probe configs still say them.
LEGACY_QUEUES = {"gpu": "training", "cpu": "light"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDIO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Images, exports, checkpoints, the SQLite file")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in data_dir")
    broker_url: str = Field(default="", description="Celery broker; empty means the filesystem broker")
    redis_url: str = Field(default="", description="Redis for live events; defaults to a redis broker_url")
    secret_key: SecretStr = Field(default=SecretStr(""), description="Empty: generated into data_dir")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    frontend_dir: Path = Field(default=Path(__file__).resolve().parent.parent / "frontend" / "dist")
    cookie_secure: bool = False
    session_days: int = Field(default=14, ge=1)

    max_upload_bytes: int = Field(default=4 << 30, gt=0, description="Largest upload accepted (413 above)")
    max_archive_bytes: int = Field(default=20 << 30, gt=0, description="Largest total a zip may expand to")
    max_archive_entries: int = Field(default=200_000, gt=0)

    login_rate_limit: str = "10/minute"
    token_rate_limit: str = "20/hour"  # noqa: S105 - a rate, not a secret

    # Jobs in detail (see DESIGN.md): heartbeat <= 30 s, reaper after 90 s, 3 attempts.
    heartbeat_seconds: float = Field(default=10.0, gt=0, le=30)
    heartbeat_timeout_seconds: float = Field(default=90.0, gt=0)
    reaper_interval_seconds: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    visibility_timeout_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    broker_polling_seconds: float = Field(default=0.1, gt=0)
    canary_interval_seconds: float = Field(default=10.0, gt=0)
    canary_retry_seconds: float = Field(default=60.0, gt=0, description="Resend an unconsumed canary after")
    worker_live_seconds: float = Field(default=45.0, gt=0)
    events_poll_seconds: float = Field(default=0.5, gt=0)

    offline: bool = Field(
        default=False,
        description="Never download pretrained weights: they come from the torch hub cache only, and runs "
        "start from scratch unless a config asks for them",
    )

    # Lanes: how many jobs each runs at once on this machine (one solo worker process per slot; `studio up`
    # and `studio worker --lane` supervise them) and how many CPU threads each process gives torch.
    training_devices: str = Field(
        default="auto",
        description="GPU indices for the training lane, one worker each (e.g. '0,1'); 'auto': every GPU "
        "nvidia-smi lists; 'cpu' or none found: one CPU worker",
    )
    light_concurrency: int = Field(default=2, ge=1, le=64, description="Light jobs at once")
    inference_concurrency: int = Field(default=1, ge=1, le=16, description="Inference worker processes")
    training_threads: int = Field(default=0, ge=0, le=256, description="torch threads; 0: every core")
    light_threads: int = Field(default=1, ge=1, le=256, description="torch threads per light worker")
    inference_threads: int = Field(default=1, ge=1, le=256, description="torch threads per inference worker")
    training_loader_workers: int = Field(
        default=-1,
        ge=-1,
        le=64,
        description="Cap on a CPU training run's data loader processes; -1: one less than the cores",
    )
    restart_backoff_seconds: float = Field(default=1.0, gt=0, description="First wait before a restart")
    restart_backoff_max_seconds: float = Field(default=30.0, gt=0)

    # Serving (the inference lane): warm models, micro-batching, request limits.
    inference_cache_mb: int = Field(default=2048, ge=1, description="Memory for warm models (LRU)")
    inference_max_batch: int = Field(default=8, ge=1, le=256, description="Requests batched per forward")
    inference_max_wait_ms: float = Field(
        default=2.0, ge=0, le=1000, description="How long a forward waits for more requests to batch"
    )
    inference_slots: int = Field(default=16, ge=1, le=256, description="Requests one worker holds at once")
    inference_timeout_seconds: float = Field(default=60.0, gt=0, description="Longest a request waits")
    max_batch_images: int = Field(default=16, ge=1, le=256, description="Images in one batch request")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'studio.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.redis_url and self.broker_url.startswith(("redis://", "rediss://")):
            self.redis_url = self.broker_url
        return self

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def results_dir(self) -> Path:
        """The inference lane's answers when there is no Redis (Celery's file result backend)."""
        return self.data_dir / "results"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    def broker_transport_options(self) -> dict[str, Any]:
        if self.broker_url.startswith("sqla+"):
            # kombu's SQLAlchemy transport hands every option to create_engine(); it polls once a second.
            return {}
        opts: dict[str, Any] = {
            "visibility_timeout": self.visibility_timeout_seconds,
            "polling_interval": self.broker_polling_seconds,
        }
        if self.uses_filesystem_broker:
            queue_dir = str(self.broker_dir / "queue")
            opts.update(
                data_folder_in=queue_dir,
                data_folder_out=queue_dir,
                control_folder=str(self.broker_dir / "control"),
                # Claimed messages are renamed into this folder on the same filesystem, which is atomic:
                # two consumers can never both take one message. The reaper prunes it.
                store_processed=True,
                processed_folder=str(self.broker_dir / "processed"),
            )
        return opts

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.redis_url:
            self.results_dir.mkdir(parents=True, exist_ok=True)
        if self.uses_filesystem_broker:
            for sub in ("queue", "control", "processed"):
                (self.broker_dir / sub).mkdir(parents=True, exist_ok=True)

    def secret(self) -> str:
        """The signing key: the configured one, else one generated once into the data dir (mode 0600)."""
        configured = self.secret_key.get_secret_value()
        if configured:
            return configured
        path = self.data_dir / "secret_key"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.ensure_dirs()
    return settings
