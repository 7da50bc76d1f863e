"""Lane workers as supervised processes: what ``studio up`` and ``studio worker --lane`` run.

Each slot of a lane is one Celery worker process: training and light workers take one job at a time
(solo pool, so a kill of the process is a kill of its job and nothing else), the inference worker runs
Celery's threads pool so concurrent requests can be batched. A process that exits or is killed is
started again after a backoff that doubles while it keeps failing; before that, the job it held is put
back on its queue at once (not after the reaper's heartbeat timeout), to resume from its checkpoint.

Each process gets its lane's thread counts through the environment, read by torch when it is imported:
training takes every core, light and inference one thread each, and OpenMP threads sleep instead of
spinning when idle (``OMP_WAIT_POLICY=PASSIVE``). Measured on two cores (README, "How jobs run"), this
keeps a predict within about 1.3x of its idle latency beside a CPU training run, where the defaults
(every process on every core, spinning) made it 3x slower at the median and 15x at p95.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import LaneWorker, utcnow
from backend.settings import LANES, Settings

log = logging.getLogger(__name__)

STABLE_SECONDS = 60.0  # a process that ran this long resets its backoff


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpu_indices(setting: str) -> list[str]:
    """The GPUs the training lane runs one worker on each: the setting's list, or those nvidia-smi sees."""
    value = setting.strip().lower()
    if value in ("cpu", "none", ""):
        return []
    if value != "auto":
        return [v.strip() for v in value.split(",") if v.strip()]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def worker_argv(
    queues: str, name: str, loglevel: str = "INFO", pool: str = "solo", concurrency: int = 1
) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", queues, "-n", name]
    argv += ["--pool", pool, "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    argv += ["--without-heartbeat"]
    if pool != "solo":
        argv += ["--concurrency", str(concurrency)]
    return argv


def cpus(threads: int) -> str:
    n = max(1, threads)
    return f"{n} CPU thread{'' if n == 1 else 's'}"


def thread_env(threads: int) -> dict[str, str]:
    n = str(max(1, threads))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OMP_WAIT_POLICY": "PASSIVE"}


@dataclass
class Slot:
    """One supervised worker process of a lane."""

    lane: str
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    failures: int = 0  # exits in a row without a stable run, for the backoff
    next_start: float = 0.0
    history: list[str] = field(default_factory=list)  # how each process ended, oldest first
    resources: str = ""  # what it is given, in words: "GPU 0 · 16 CPU threads", "no GPU · 2 CPU threads"


def lane_slots(settings: Settings, lanes: tuple[str, ...] = LANES, host: str | None = None) -> list[Slot]:
    """The worker processes for ``lanes`` on this machine, from the settings."""
    host = host or socket.gethostname()
    slots: list[Slot] = []
    seen = gpu_indices("auto") if "inference" in lanes else []  # what an unpinned process finds
    for lane in lanes:
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; lanes are {', '.join(LANES)}")
        base = {"STUDIO_LANE": lane}
        if lane == "training":
            gpus = gpu_indices(settings.training_devices)
            threads = settings.training_threads or cores()
            for i, gpu in enumerate(gpus or [None]):
                env = {**base, **thread_env(threads)}
                # The job is pinned to its device; with none planned, the CPU, as the setting says.
                env["CUDA_VISIBLE_DEVICES"] = gpu if gpu is not None else ""
                name = f"training-{i + 1}@{host}"
                has = f"GPU {gpu}" if gpu is not None else "no GPU"
                slots.append(
                    Slot(lane, name, worker_argv(lane, name), env, resources=f"{has} · {cpus(threads)}")
                )
        elif lane == "light":
            for i in range(settings.light_concurrency):
                name = f"light-{i + 1}@{host}"
                env = {**base, **thread_env(settings.light_threads), "CUDA_VISIBLE_DEVICES": ""}
                has = f"no GPU · {cpus(settings.light_threads)}"
                slots.append(Slot(lane, name, worker_argv(lane, name), env, resources=has))
        else:
            for i in range(settings.inference_concurrency):
                name = f"inference-{i + 1}@{host}"
                argv = worker_argv(lane, name, pool="threads", concurrency=settings.inference_slots)
                found = f"GPU {', '.join(seen)}" if seen else "no GPU"
                has = f"{found} · {cpus(settings.inference_threads)}"
                env = {**base, **thread_env(settings.inference_threads)}
                slots.append(Slot(lane, name, argv, env, resources=has))
    return slots


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Starts every slot, restarts the ones that end, and records each in ``lane_workers``."""

    def __init__(self, slots: list[Slot], settings: Settings, tick: float = 0.2) -> None:
        self.slots = slots
        self.settings = settings
        self.tick = tick
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- records ------------------------------------------------------------------------------------

    def _record(self, slot: Slot, state: str, last_exit: str | None = None) -> None:
        try:
            with session_scope() as session:
                row = session.scalars(select(LaneWorker).where(LaneWorker.name == slot.name)).one_or_none()
                if row is None:
                    row = LaneWorker(name=slot.name, lane=slot.lane, host=socket.gethostname(), state=state)
                    session.add(row)
                row.lane, row.state, row.restarts = slot.lane, state, slot.restarts
                row.resources = slot.resources
                row.pid = slot.proc.pid if slot.proc is not None and state == "running" else None
                now = utcnow()
                if state == "running":
                    row.started_at = now
                if last_exit is not None:
                    row.last_exit, row.exited_at = last_exit, now
                row.updated_at = now
        except Exception as exc:  # the database may be down; supervision goes on without the record
            log.warning("could not record worker %s as %s: %s", slot.name, state, exc)

    def _release_jobs(self, slot: Slot, how: str) -> None:
        from backend.jobs.lifecycle import release_dead_worker
        from backend.jobs.service import resend

        try:
            with session_scope() as session:
                reaped = release_dead_worker(session, slot.name, self.settings.max_attempts, how)
            resend(reaped)
        except Exception as exc:  # the reaper takes the job back later
            log.warning("could not re-queue the jobs of %s: %s", slot.name, exc)

    # -- processes ----------------------------------------------------------------------------------

    def _start(self, slot: Slot) -> None:
        env = {**os.environ, **slot.env}
        slot.proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            slot.argv, env=env, start_new_session=True, preexec_fn=_die_with_parent
        )
        slot.started = time.monotonic()
        log.info("%s started (pid %s)", slot.name, slot.proc.pid)
        self._record(slot, "running")

    def _ended(self, slot: Slot, code: int) -> None:
        how = describe_exit(code)
        slot.history.append(how)
        slot.proc = None
        ran = time.monotonic() - slot.started
        slot.failures = 1 if ran >= STABLE_SECONDS else slot.failures + 1
        delay = min(
            self.settings.restart_backoff_max_seconds,
            self.settings.restart_backoff_seconds * 2 ** (slot.failures - 1),
        )
        slot.next_start = time.monotonic() + delay
        slot.restarts += 1
        log.warning("%s %s after %.0f s; restarting in %.1f s", slot.name, how, ran, delay)
        self._release_jobs(slot, f"was {how}" if how.startswith("killed") else how)
        self._record(slot, "restarting", how)

    def poll_once(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            now = time.monotonic()
            for slot in self.slots:
                if slot.proc is None:
                    if now >= slot.next_start:
                        self._start(slot)
                    continue
                code = slot.proc.poll()
                if code is not None:
                    self._ended(slot, code)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("supervisor round failed")
            self._stopping.wait(self.tick)

    def start(self) -> None:
        self.poll_once()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self, timeout: float = 20.0) -> None:
        """A warm stop: SIGTERM to each worker's own process (Celery's warm shutdown; the running job
        gives itself back to its queue at its next check and resumes from its last checkpoint at the next
        start), not to its process group, so its data-loader processes are not killed under it. SIGKILL
        whatever is still there after ``timeout`` (or at once after :meth:`kill_now`)."""
        with self._lock:
            self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        running = [s for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for slot in running:
            assert slot.proc is not None  # noqa: S101 - filtered above
            with contextlib.suppress(ProcessLookupError):
                slot.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for slot in running:
            assert slot.proc is not None  # noqa: S101 - filtered above
            try:
                slot.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(slot, signal.SIGKILL)
                slot.proc.wait(timeout=10)
        for slot in running:  # a job cut short goes back on its queue, to resume at the next start
            self._release_jobs(slot, "was stopped with the studio")
        for slot in self.slots:
            self._record(slot, "stopped")

    def kill_now(self) -> None:
        """A second stop signal: SIGKILL every worker's process group now; :meth:`stop` then takes their
        jobs back (to resume from their checkpoints)."""
        self._stopping.set()
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                _signal_group(slot, signal.SIGKILL)

    def wait(self) -> None:
        """Block until ``stop`` is called (from a signal handler)."""
        while not self._stopping.wait(1.0):
            pass


try:  # loaded here, in the parent: the child between fork and exec must not take the loader's locks
    _PRCTL = ctypes.CDLL(None).prctl if sys.platform == "linux" else None
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when the supervisor dies, however it dies, so
    no worker outlives the studio that started it (Linux; elsewhere the stop path alone does it)."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _signal_group(slot: Slot, sig: signal.Signals) -> None:
    if slot.proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(slot.proc.pid, sig)
