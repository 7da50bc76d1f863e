"""Shared by benchmarks/lanes.py and benchmarks/serving.py: a whole studio (`studio up`) started on a fresh
temp data dir and port, a signed-in HTTP client for it, a ResNet-18 put in place without training, and a
clean stop (SIGTERM to the studio's process group, then whatever of its workers is left, then the temp dir).

Not a benchmark itself; the leading underscore keeps `make bench` from running it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLASSES = ["circle", "square", "triangle"]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def exit_on_sigterm() -> None:
    """A SIGTERM to the benchmark unwinds like Ctrl-C does, so every ``finally`` stops its studio."""

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _jiffies(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


class CpuMeter:
    """The machine's CPU use (all cores, /proc/stat) from construction to ``report``, in percent of all
    cores, and the share of it taken by processes other than ``ours()`` and this one (other work on the
    machine: a test suite, a browser). Processes of ours that end in between are not counted as ours, so
    the "others" figure is an upper bound."""

    def __init__(self, ours: Callable[[], list[int]] | None = None) -> None:
        self._ours = ours or (lambda: [])
        self._t0 = self._read()
        self._p0 = self._ours_jiffies()

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]), idle

    def _ours_jiffies(self) -> dict[int, int]:
        return {pid: _jiffies(pid) for pid in [os.getpid(), *self._ours()]}

    def report(self) -> tuple[float, float]:
        """(machine CPU use %, use by other processes %), both of all cores."""
        total, idle = self._read()
        dt, di = total - self._t0[0], idle - self._t0[1]
        if dt <= 0:
            return 0.0, 0.0
        now = self._ours_jiffies()
        ours = sum(j - self._p0.get(pid, 0) for pid, j in now.items())
        busy = dt - di
        return 100.0 * busy / dt, 100.0 * max(0, busy - ours) / dt


def _our_processes(marker: str) -> list[int]:
    """Pids of processes whose environment names ``marker`` (our unique temp data dir): only ours."""
    pids = []
    needle = f"STUDIO_DATA_DIR={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def _term_with_parent() -> None:
    """In the child before exec: SIGTERM it when this benchmark dies, however it dies (even SIGKILL),
    so a studio is never left running (it stops its own workers on SIGTERM)."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Studio:
    """``studio up`` on a fresh temp dir. Use as a context manager; ``stop`` is safe to call twice."""

    def __init__(self, label: str, env: dict[str, str] | None = None, lanes: str | None = None) -> None:
        self.label = label
        self.lanes = lanes
        self.tmp = Path(tempfile.mkdtemp(prefix="studio-bench-"))
        self.data = self.tmp / "data"
        self.log_path = self.tmp / "up.log"
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
        self.studio_env = {
            "STUDIO_DATA_DIR": str(self.data),
            "STUDIO_DATABASE_URL": "",
            "STUDIO_BROKER_URL": "",
            "STUDIO_REDIS_URL": "",
            "STUDIO_TRAINING_DEVICES": "cpu",
            **(env or {}),
        }
        self.env = {**base, **self.studio_env, "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: httpx.Client | None = None
        self._log: Any = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Studio:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> None:
        argv = [sys.executable, "-m", "backend.cli", "up", "--port", str(self.port)]
        if self.lanes:
            argv += ["--lanes", self.lanes]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_term_with_parent,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120)
        wanted = [lane.strip() for lane in (self.lanes or "training,light,inference").split(",")]
        wait_for(f"{self.label}: a live worker on every lane", lambda: self._live(wanted), timeout, 0.5)
        r = self.client.post(
            "/api/auth/register", json={"email": "bench@example.com", "password": "benchmark-pass"}
        )
        if r.status_code != 201:
            raise RuntimeError(f"register: {r.status_code} {r.text}")
        self.client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        self.user_id = int(self.client.get("/api/auth/me").json()["id"])

    def _live(self, lanes: list[str]) -> bool:
        assert self.proc is not None and self.client is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.label}: studio up exited ({self.proc.returncode}):\n{self.log_tail()}")
        try:
            got = self.client.get("/api/health", timeout=5).json()["lanes"]
        except (httpx.HTTPError, KeyError, ValueError):
            return False
        return all(any(w["live"] for w in got[lane]["workers"]) for lane in lanes)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the studio's process group (the API, which stops its supervised workers), SIGKILL
        after 60 s; then any worker process of this studio still alive is killed; the temp dir goes.
        SIGINT and SIGTERM wait until this is done (a second Ctrl-C does not leave the studio behind)."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self._stop()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                print(
                    f"[{self.label}] studio did not stop within 60 s of SIGTERM; killing it", file=sys.stderr
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            self.proc = None
        leftovers = _our_processes(str(self.data))
        if leftovers:
            print(
                f"[{self.label}] killing {len(leftovers)} worker process(es) left after the studio stopped: "
                f"{leftovers}",
                file=sys.stderr,
            )
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        if os.environ.get("BENCH_KEEP"):
            print(f"[{self.label}] kept {self.tmp} (BENCH_KEEP is set)", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- things in it ---------------------------------------------------------------------------------

    def use_database(self) -> None:
        """Point this process's settings at the studio's data dir and database."""
        os.environ.update(self.studio_env)
        from backend.settings import get_settings

        get_settings.cache_clear()

    def put_model(self, model_file: Path, name: str = "resnet18") -> int:
        """A ready ResNet-18 row whose checkpoint is a copy of ``model_file`` (see ``resnet18_file``)."""
        self.use_database()
        from backend.db.session import session_scope
        from backend.db.tables import TrainedModel
        from backend.models.contract import model_dir
        from backend.settings import get_settings

        with session_scope() as s:
            row = TrainedModel(
                owner_id=self.user_id,
                name=name,
                task="classification",
                architecture="resnet18",
                class_names=CLASSES,
                status="ready",
                input_size=224,
            )
            s.add(row)
            s.flush()
            path = model_dir(get_settings().data_dir, row.id) / "model.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_file, path)
            row.checkpoint_path = str(path)
            return int(row.id)

    def task_seconds(self, task: str = "studio.infer") -> list[float]:
        """How long each ``task`` ran in the worker, oldest first, from Celery's INFO lines in the log
        ("Task studio.infer[...] succeeded in 0.06s")."""
        if self._log is not None:
            self._log.flush()
        pattern = re.compile(rf"Task {re.escape(task)}\[[^\]]+\] succeeded in ([0-9.eE+-]+)s")
        return [float(m.group(1)) for m in pattern.finditer(self.log_tail(1 << 30))]

    def processes(self) -> list[int]:
        """Pids of the studio: the API process and every worker process it started (their children too)."""
        found = set(_our_processes(str(self.data)))  # the API's own environment names the data dir too
        if self.proc is not None:
            found.add(self.proc.pid)
        return sorted(found)

    def pids(self, lane: str) -> list[int]:
        assert self.client is not None
        lanes = self.client.get("/api/health").json()["lanes"]
        return [int(w["pid"]) for w in lanes[lane]["workers"] if w.get("pid")]


def resnet18_file(path: Path) -> Path:
    """A ResNet-18 (3 classes, 224 px, random weights) saved as the studio's model file."""
    import torch

    from worker.engine.checkpoint import save_model_file
    from worker.zoo import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", len(CLASSES)).eval()
    save_model_file(
        path,
        state_dict=model.state_dict(),
        architecture="resnet18",
        task="classification",
        class_names=CLASSES,
        input_size=224,
        mean=MEAN,
        std=STD,
        options={},
    )
    return path


def picture_png(width: int = 256, height: int = 256, seed: int = 0) -> bytes:
    """A shape on a noisy background, as PNG bytes."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 60, (height, width, 3), dtype=np.uint8))
    ImageDraw.Draw(img).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(230, 200, 40)
    )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def timed(fn: Callable[[], httpx.Response], expect: str = "") -> float:
    """Seconds one request took; raises unless it answered 200 (and, if given, this content type)."""
    started = time.perf_counter()
    r = fn()
    elapsed = time.perf_counter() - started
    if r.status_code != 200 or (expect and not r.headers.get("content-type", "").startswith(expect)):
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:500]}")
    return elapsed


@contextlib.contextmanager
def announce(what: str) -> Iterator[None]:
    print(f"... {what}", file=sys.stderr, flush=True)
    started = time.monotonic()
    yield
    print(f"    done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
