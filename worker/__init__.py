"""The Celery worker and everything that runs jobs. May import backend; backend never imports it."""
