"""Shared helpers: environment, ports, subprocesses ended by process group, memory, the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from serving.core.machine import detect_native_bf16
from serving.core.preflight import free_loopback_port
from serving.core.process_group import signal_group, stop_group

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ARTICLE = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
    "from 1887 to 1889 as the centerpiece of the 1889 World's Fair."
)
PROMPT = "Write two sentences about the sea."
EMBEDDED = "smollm2-135m-instruct"
TINY_T5 = "tiny-random/t5"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    return Path(os.environ.get("GSL_BENCH_CACHE") or Path.home() / ".cache" / "gsl-bench")


def bench_env(workdir: Path) -> dict:
    """Own state/log dirs; a stable model cache (converted weights reused); tiny models offline."""
    env = dict(os.environ)
    env.update(
        GRADIO_SERVE_STATE_DIR=str(workdir / "state"),
        GRADIO_SERVE_LOG_DIR=str(workdir / "logs"),
        GRADIO_SERVE_CACHE_DIR=os.environ.get("GRADIO_SERVE_CACHE_DIR") or str(cache_root() / "cache"),
        HF_HUB_CACHE=str(cache_root() / "tiny-models"),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        XDG_CONFIG_HOME=str(workdir / "xdg-config"),
        XDG_STATE_HOME=str(workdir / "xdg-state"),
        XDG_CACHE_HOME=str(workdir / "xdg-cache"),
        XDG_DATA_HOME=str(workdir / "xdg-data"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def prepare_models(env: dict) -> None:
    """Build the tiny models and convert the embedded model once (warm cache), in a subprocess."""
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from tiny_models import build_tiny_models; import os;"
        "build_tiny_models(__import__('pathlib').Path(os.environ['HF_HUB_CACHE']));"
        "from serving.replica.models import ensure_embedded_converted; print(ensure_embedded_converted())"
    )
    subprocess.run([PY, "-c", code], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    return free_loopback_port()  # never 8000, nor one an outgoing connection may take meanwhile


def http_ok(url: str, timeout: float = 2.0) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_ok(url):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered")
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def gclient(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


class Group:
    """A subprocess in its own session (so its process group is ours to end), stdout read by line on a thread:
    every line in `lines`, every JSON object among them in `events`."""

    def __init__(self, args: list[str], env: dict, log_path: Path, stdin: bool = True):
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self.events: list[dict] = []
        self.timed_events: list[tuple[float, dict]] = []  # (seconds since start, object), as they came
        self._q: queue.Queue = queue.Queue()  # (seconds since start, JSON object); None once stdout ends
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                self.events.append(obj)
                self.timed_events.append((time.monotonic() - self.t0, obj))
                self._q.put((time.monotonic() - self.t0, obj))
        self._q.put(None)

    def objects(self, timeout: float):
        """Yield (seconds since start, JSON object) for each JSON line not yet seen, until timeout;
        AssertionError (with the last events) when the process exits or the time is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                self._q.put(None)  # stays ended for the next reader
                raise AssertionError(f"process exited ({self.proc.wait()}); last events {self.events[-3:]}, "
                                     f"last lines {self.lines[-3:]}")
            yield item
        raise AssertionError(f"nothing expected within {timeout} s; last events {self.events[-3:]}")

    def wait_for(self, pred, timeout: float):
        """(seconds since start, object) of the first JSON object from now on that `pred` accepts."""
        for t, obj in self.objects(timeout):
            if pred(obj):
                return t, obj
        raise AssertionError("unreachable: objects() raises when it ends")

    @property
    def pgid(self) -> int:
        return self.proc.pid

    def pgids(self) -> set[int]:
        return {self.proc.pid}

    def stop(self, grace: float = 60) -> None:
        """Ask politely (stdin closed / SIGTERM), then SIGKILL the process group(s)."""
        if self.proc.poll() is None:
            if self.proc.stdin:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            # SIGTERM to the process alone (a supervisor ends its own group), then the group's SIGKILL.
            stop_group(self.pgid, self.proc.pid, grace, term_pid_only=True, done=lambda: self.proc.poll() is not None)
        self.kill_group()

    def kill_group(self) -> None:
        """SIGKILL the process group(s) and whatever else runs in the session; close the log."""
        for pgid in self.pgids():
            signal_group(pgid, None, signal.SIGKILL)
        # Whatever made its own process group inside our session (the launcher's supervisor).
        for p in psutil.process_iter():
            try:
                if p.pid != os.getpid() and os.getsid(p.pid) == self.proc.pid:
                    p.kill()
            except (OSError, psutil.Error):
                continue
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


class Up(Group):
    """`gradio-serve up --events`, as the launcher runs it; the tests' and the benchmarks' one helper.

    It makes its own process group; we start it in a new session too, so stop() ends everything it left."""

    def __init__(self, args: list[str], env: dict, log_path: Path):
        super().__init__([PY, "-m", "serving.cli", "up", "--events", *args], env, log_path)
        self.ready_s: float | None = None  # seconds from start to the `running` phase

    def wait_phase(self, *phases: str, timeout: float = 300) -> dict:
        """The next `phase` event naming one of `phases`."""
        _t, event = self.wait_for(lambda e: e.get("event") == "phase" and e.get("phase") in phases, timeout)
        return event

    def wait_running(self, timeout: float = 300) -> dict:
        """The `running` phase event (its time in ready_s); fails with the last events when the start ends in
        an error."""
        t, event = self.wait_for(lambda e: e.get("event") == "phase" and e.get("phase") in ("running", "error"),
                                 timeout)
        assert event["phase"] == "running", f"supervisor failed: {event.get('message')}; {self.events[-3:]}"
        self.ready_s = t
        return event

    def replica_pids(self, deployment: str) -> list[int]:
        """PIDs of this app's Serve replicas of `deployment` (model0, GradioIngress, app, ...)."""
        name = f"ServeReplica:gradio-serve:{deployment}"
        pids = []
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                title = " ".join(proc.cmdline()).split()
            except psutil.Error:
                continue
            # The title is the actor's, plus ".method" while a call runs.
            if any(t.removeprefix("ray::") == name or t.removeprefix("ray::").startswith(name + ".") for t in title):
                pids.append(proc.pid)
        return sorted(pids)

    @property
    def pgid(self) -> int:
        """The supervisor's process group, as it says in its events (its pid until it said so)."""
        return next((e["pgid"] for e in self.events if e.get("event") == "phase" and e.get("pgid")), self.proc.pid)

    def pgids(self) -> set[int]:
        return {self.proc.pid} | {e["pgid"] for e in self.events if e.get("pgid")}

    def stop(self, how: str = "stdin", timeout: float = 90) -> float:
        """Stop it ("stdin": a `stop` line, "sigterm": SIGTERM), then end its group; how long it took to exit.
        Raises TimeoutExpired if it did not exit within `timeout` (what it left is ended all the same)."""
        start = time.monotonic()
        try:
            if self.proc.poll() is None:
                if how == "stdin":
                    self.proc.stdin.write("stop\n")
                    self.proc.stdin.flush()
                else:
                    self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        finally:
            elapsed = time.monotonic() - start
            self.kill_group()
        return elapsed


def app_processes(root_pid: int) -> list[psutil.Process]:
    """Every process of a running app: the root's process group and session, plus all descendants
    (Ray workers are children of the raylet, which is the supervisor's child)."""
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(root_pid)
        found[root.pid] = root
        for c in root.children(recursive=True):
            found[c.pid] = c
    except psutil.Error:
        pass
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == root_pid or os.getsid(p.pid) == root_pid:
                found[p.pid] = p
                for c in p.children(recursive=True):
                    found[c.pid] = c
        except (OSError, psutil.Error):
            continue
    return list(found.values())


def memory_mb(procs: list[psutil.Process]) -> dict:
    """Summed RSS (counts shared pages once per process) and PSS (shares them out), in MB."""
    rss = pss = 0
    n = 0
    for p in procs:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            n += 1
        except psutil.Error:
            continue
    return {"rss_mb": round(rss / 2**20, 1), "pss_mb": round(pss / 2**20, 1), "processes": n}


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": psutil.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": model, "native_bf16": detect_native_bf16(), "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def percentile(values: list[float], q: float) -> float:
    vals = sorted(values)
    if not vals:
        return float("nan")
    k = (len(vals) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)


def process_role(p: psutil.Process) -> str:
    """A short name for one process of the app: Ray's daemons by their program, actors by title."""
    try:
        cmd = p.cmdline()
        name = p.name()
    except psutil.Error:
        return "?"
    title = " ".join(cmd)
    if title.startswith("ray::"):
        return title.split()[0].removeprefix("ray::")  # e.g. ServeReplica:gradio-serve:model0
    for needle, role in (("gcs_server", "GCS server"), ("raylet", "raylet"), ("dashboard/agent.py", "dashboard agent"),
                         ("runtime_env/agent", "runtime-env agent"), ("dashboard/dashboard.py", "dashboard"),
                         ("log_monitor.py", "log monitor"), ("monitor.py", "autoscaler monitor"),
                         ("serving.cli", "supervisor (gradio-serve up)"), ("serving.cluster.reaper", "watchdog (serving.cluster.reaper)"),
                         ("default_worker.py", "idle Ray worker")):
        if needle in title:
            return role
    return name


def memory_table(procs: list[psutil.Process]) -> list[dict]:
    """One row per live process, largest RSS first: role, pid, RSS and PSS in MB."""
    rows = []
    for p in procs:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            info = p.memory_full_info()
        except psutil.Error:
            continue
        rows.append({"role": process_role(p), "pid": p.pid, "rss_mb": round(info.rss / 2**20, 1),
                     "pss_mb": round(getattr(info, "pss", info.rss) / 2**20, 1)})
    return sorted(rows, key=lambda r: -r["rss_mb"])
