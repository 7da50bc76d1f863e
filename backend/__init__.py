"""The studio's API process: settings, database, auth, datasets, jobs. Never imports torch or the worker."""
