"""The worker's Celery app: the API's configuration plus the task functions."""

from __future__ import annotations

from backend.jobs.broker import make_celery
from backend.settings import get_settings

app = make_celery(get_settings())
app.conf.imports = ["worker.celery_tasks"]
