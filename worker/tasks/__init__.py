"""One package per task: its runtime behind the protocol in ``worker.tasks.protocol``; the registry RUNTIMES."""
