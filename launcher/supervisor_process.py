"""The supervisor (`python -m serving.cli up --events`) run as a QProcess.

It parses the JSON event lines (serving/core/events.py is the contract) into Qt
signals and turns them into one of five states. Start and stop are
idempotent. Stop asks nicely ("stop" on stdin), then after a grace period
ends the supervisor's whole process group (it leads its own group, so Ray's
helpers go too), first with SIGTERM, then SIGKILL. Nothing here blocks the
main thread except `kill_now()`, which is only for the moment of exit.
A `deploying` phase after `running` is a change applied in place (or its
rollback): the state stays running, with `changing` set meanwhile.
"""

from __future__ import annotations

import enum
import importlib.util
import os
import re
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from launcher.logs import launcher_logger, supervisor_logger
from serving.core import paths
from serving.core.config import LaunchConfig
from serving.core.events import Phase, parse_line
from serving.core.process_group import group_alive, signal_group
from serving.core.protocol import (
    AppliedEvent,
    ErrorEvent,
    Event,
    LogEvent,
    PhaseEvent,
    StatusEvent,
    parse_event,
)
from serving.core.records import read_supervisor_record

# Ray colours its log prefixes; the log view and file want plain text.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_RAY_PREFIX = re.compile(r"^\([^)]*pid=\d+\)\s*")


def clean_line(raw: bytes) -> str:
    """Plain text of one output line: no colour codes, and only the last of \\r-overwritten progress bars."""
    text = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
    if "\r" in text:
        prefix = _RAY_PREFIX.match(text)  # "(ServeReplica:... pid=123) " names the process: keep it
        last = next((part for part in reversed(text.split("\r")) if part.strip()), "")
        text = (prefix.group(0) if prefix and not last.startswith(prefix.group(0)) else "") + last
    return text


def child_environment() -> QProcessEnvironment:
    """The environment of a `python -m serving...` child: this launcher's `serving` package, unbuffered."""
    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")  # events and logs arrive as they happen
    # Run the same `serving` package this launcher imports, installed or not.
    spec = importlib.util.find_spec("serving")
    if spec and spec.submodule_search_locations:
        root = str(Path(next(iter(spec.submodule_search_locations))).resolve().parent)
        current = env.value("PYTHONPATH", "")
        if root not in current.split(os.pathsep):
            env.insert("PYTHONPATH", root + (os.pathsep + current if current else ""))
    return env


class ServingState(str, enum.Enum):
    stopped = "stopped"
    starting = "starting"
    running = "running"
    stopping = "stopping"
    error = "error"


_PHASE_STATE = {
    Phase.validating.value: ServingState.starting,
    Phase.starting_cluster.value: ServingState.starting,
    Phase.deploying.value: ServingState.starting,
    Phase.running.value: ServingState.running,
    Phase.stopping.value: ServingState.stopping,
    Phase.stopped.value: ServingState.stopped,
    Phase.error.value: ServingState.error,
}


def state_for_phase(phase: str | None) -> ServingState | None:
    return _PHASE_STATE.get(phase or "")


class ServingController(QObject):
    """What the window needs from whatever runs the app (owned process or a detached one)."""

    state_changed = Signal(str)  # ServingState value
    status_changed = Signal(dict)  # the latest "status" event
    message_changed = Signal(str)  # the latest phase message, for the status line
    phase_changed = Signal(str, str)  # (phase, message) as the supervisor says it (serving/core/events.py)
    error_reported = Signal(str, str)  # message, hint
    url_changed = Signal(str)
    changing_changed = Signal(bool)  # a change (an apply, or its rollback) is being deployed
    applied = Signal(dict)  # the supervisor's answer to an apply request (serving/core/apply_request.py)
    running_config_changed = Signal(dict, dict)  # (before, after): what the app serves changed

    owned = True  # False for a supervisor another launcher left running

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._state = ServingState.stopped
        self.url: str | None = None
        self.pid: int | None = None
        self.pgid: int | None = None
        self.last_status: dict | None = None
        self.last_error: tuple[str, str] | None = None
        self.changing = False
        self.running_config: dict | None = None  # the LaunchConfig (as JSON) the app serves now

    @property
    def state(self) -> ServingState:
        return self._state

    def is_active(self) -> bool:
        """Something is running (or on its way up or down)."""
        return self._state in (ServingState.starting, ServingState.running, ServingState.stopping)

    def _set_state(self, state: ServingState) -> None:
        if state is not ServingState.running:
            self._set_changing(False)
        if state is not self._state:
            self._state = state
            self.state_changed.emit(state.value)

    def _follow_phase(self, state: ServingState) -> None:
        """Take the state a phase names. `deploying` after `running` is a change being applied
        (or rolled back): the app keeps answering meanwhile, so it stays running, marked changing."""
        if state is ServingState.starting and self._state is ServingState.running:
            self._set_changing(True)
            return
        if state is ServingState.running:
            self._set_changing(False)
        self._set_state(state)

    def _set_changing(self, changing: bool) -> None:
        if changing != self.changing:
            self.changing = changing
            self.changing_changed.emit(changing)

    def set_running_config(self, config: dict | None) -> None:
        if config and config != self.running_config:
            before, self.running_config = self.running_config, config
            self.running_config_changed.emit(before or {}, config)

    def reload_running_config(self) -> None:
        """Take the config from the supervisor record (rewritten after an apply, e.g. `gradio-serve apply`)."""
        record = read_supervisor_record()  # one small file
        if record and record.pid == self.pid and record.config is not None:
            self.set_running_config(record.config)

    def _set_url(self, url: str | None) -> None:
        if url and url != self.url:
            self.url = url
            self.url_changed.emit(url)

    # One interface for the owned supervisor and one found running, so no caller asks which it is.

    def start(self, config: LaunchConfig) -> bool:
        """Start serving `config`; False (and nothing done) if this controller cannot or is already running."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the app (gracefully, then forcefully after a grace period); idempotent."""
        raise NotImplementedError

    def detach(self) -> bool:
        """Leave the app serving after this launcher exits; False if it is stopping already."""
        raise NotImplementedError

    def shutdown_now(self, wait_s: float = 10.0) -> None:
        """Exit path: end what this launcher owns now (blocks up to wait_s); what it does not own lives on."""
        raise NotImplementedError


class SupervisorProcess(ServingController):
    """Owns one `gradio-serve up --events` child at a time."""

    stop_grace_ms = 45_000  # Serve + Ray shutdown takes ~10 s on 2 cores; give it room
    term_grace_ms = 5_000  # after SIGTERM to the group, before SIGKILL
    finished = Signal(int)  # exit code, after the state settled

    def __init__(self, parent: QObject | None = None, command: list[str] | None = None):
        super().__init__(parent)
        # The command up to "up"; tests may put a fake supervisor here.
        self.command = command or [sys.executable, "-m", "serving.cli"]
        self.process: QProcess | None = None
        self.detached = False
        self._stdout_buf = b""
        self._stderr_buf = b""
        self._stop_requested = False
        self._final_phase: ServingState | None = None
        self._grace = QTimer(self, singleShot=True)
        self._grace.timeout.connect(self._on_grace_over)
        self._reaper = QTimer(self, singleShot=True)
        self._reaper.timeout.connect(self._reap_group)
        self._reap_signal = signal.SIGTERM

    # ---- starting -------------------------------------------------------

    def config_file(self) -> Path:
        return paths.state_dir() / "launcher-config.json"

    def start(self, config: LaunchConfig, extra_args: list[str] | None = None) -> bool:
        """Start serving `config`; False (and nothing done) if already running."""
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            return False
        path = self.config_file()
        try:
            paths.write_json_atomic(path, config.model_dump(mode="json"))
        except OSError as exc:
            self._fail(
                f"Could not write the launch configuration to {path}: {exc.strerror}.",
                "Check that the folder is writable and has free space.",
            )
            return False

        if self._reaper.isActive():
            # The last run's leftovers are still being reaped: finish now, before self.pgid
            # names the new supervisor's group (a pending timer would kill that instead).
            self._reaper.stop()
            self._reap_group_now()
        self.url = None
        self.pid = self.pgid = None
        self.last_status = None
        self.last_error = None
        self.running_config = config.model_dump(mode="json")
        self.detached = False
        self._stop_requested = False
        self._final_phase: ServingState | None = None
        self._stdout_buf = self._stderr_buf = b""

        proc = QProcess(self)
        proc.setProcessEnvironment(self._environment())
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_process_error)
        self.process = proc
        args = self.command[1:] + ["up", "--events", "--config", str(path)] + list(extra_args or [])
        launcher_logger().info("starting the supervisor: %s %s", self.command[0], " ".join(args))
        self._set_state(ServingState.starting)
        self.message_changed.emit("Starting…")
        proc.start(self.command[0], args)
        return True

    def _environment(self) -> QProcessEnvironment:
        return child_environment()

    # ---- stopping -------------------------------------------------------

    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self) -> None:
        """Ask the supervisor to stop; escalate after a grace period. Idempotent."""
        if not self.running():
            return
        if self._stop_requested:
            return
        self._stop_requested = True
        self._set_state(ServingState.stopping)
        self.message_changed.emit("Stopping…")
        self._write(b"stop\n")
        self._grace.start(self.stop_grace_ms)

    def detach(self) -> bool:
        """Leave the supervisor serving after this launcher exits ("Quit, keep serving")."""
        if not self.running() or self._stop_requested:
            return False
        self.detached = True
        self._write(b"detach\n")
        self.process.waitForBytesWritten(2000)  # a few bytes to a pipe; must land before we exit
        launcher_logger().info("detached: the supervisor (pid %s) keeps serving %s", self.pid, self.url or "")
        return True

    def shutdown_now(self, wait_s: float = 10.0) -> None:
        if self.running() and not self.detached:
            launcher_logger().info("stopping the supervisor before exit")
            self.kill_now(wait_s)

    def kill_now(self, wait_s: float = 10.0) -> None:
        """Exit path: end the whole group now (SIGTERM, then SIGKILL). Blocks up to wait_s."""
        if not self.running() or self.detached:
            return
        self._write(b"stop\n")
        if self.process.waitForFinished(int(wait_s * 1000 / 2)):
            self._reap_group_now()
            return
        pid = self.pid or self.process.processId()
        signal_group(self.pgid, pid, signal.SIGTERM)
        if not self.process.waitForFinished(int(wait_s * 1000 / 2)):
            signal_group(self.pgid, pid, signal.SIGKILL)
            self.process.kill()
            self.process.waitForFinished(2000)
        self._reap_group_now()

    def _write(self, data: bytes) -> None:
        if self.running():
            self.process.write(data)

    def _on_grace_over(self) -> None:
        if not self.running():
            return
        launcher_logger().warning(
            "the supervisor did not stop within %d s; ending its process group", self.stop_grace_ms // 1000
        )
        signal_group(self.pgid, self.pid or self.process.processId(), signal.SIGTERM)
        self._grace.timeout.disconnect(self._on_grace_over)
        self._grace.timeout.connect(self._on_term_grace_over)
        self._grace.start(self.term_grace_ms)

    def _on_term_grace_over(self) -> None:
        self._grace.timeout.disconnect(self._on_term_grace_over)
        self._grace.timeout.connect(self._on_grace_over)
        if self.running():
            signal_group(self.pgid, self.pid or self.process.processId(), signal.SIGKILL)
            self.process.kill()

    def _reap_group(self) -> None:
        """Whatever of the group outlived the supervisor (Ray agents can) is ended."""
        if not group_alive(self.pgid):
            return
        launcher_logger().info("ending leftover processes of group %s (signal %s)", self.pgid, self._reap_signal)
        signal_group(self.pgid, None, self._reap_signal)
        if self._reap_signal == signal.SIGTERM:
            self._reap_signal = signal.SIGKILL
            self._reaper.start(3000)

    def _reap_group_now(self) -> None:
        if group_alive(self.pgid):
            signal_group(self.pgid, None, signal.SIGKILL)

    # ---- output ---------------------------------------------------------

    def _read_stdout(self) -> None:
        self._stdout_buf += bytes(self.process.readAllStandardOutput())
        *lines, self._stdout_buf = self._stdout_buf.split(b"\n")
        for raw in lines:
            self._handle_stdout_line(clean_line(raw))

    def _read_stderr(self) -> None:
        self._stderr_buf += bytes(self.process.readAllStandardError())
        *lines, self._stderr_buf = self._stderr_buf.split(b"\n")
        log = supervisor_logger()
        for raw in lines:
            text = clean_line(raw)
            if text:
                log.info(text)

    def _flush_buffers(self) -> None:
        if self.process is not None:
            self._read_stdout()
            self._read_stderr()
        if self._stdout_buf.strip():
            self._handle_stdout_line(clean_line(self._stdout_buf))
        if self._stderr_buf.strip():
            supervisor_logger().info(clean_line(self._stderr_buf))
        self._stdout_buf = self._stderr_buf = b""

    def _handle_stdout_line(self, line: str) -> None:
        event = parse_line(line)
        if event is None:
            if line.strip():
                supervisor_logger().info(line.rstrip())  # not an event: still worth seeing
            return
        self.handle_event(event)

    def handle_event(self, event: Event | dict) -> None:
        """One event from the supervisor (a model, or its JSON as the tests' fakes send it)."""
        log = supervisor_logger()
        if isinstance(event, dict):
            parsed = parse_event(event)
            if parsed is None:
                log.info("%s", event)  # not one of ours: still worth seeing
                return
            event = parsed
        if isinstance(event, PhaseEvent):
            if event.pid:
                self.pid = event.pid
            if event.pgid:
                self.pgid = event.pgid
            self._set_url(event.url)
            message = event.message or event.phase.value
            log.info("[%s] %s", event.phase.value, message)
            self.message_changed.emit(message)
            self.phase_changed.emit(event.phase.value, message)
            state = state_for_phase(event.phase.value)
            if state in (ServingState.stopped, ServingState.error):
                # Final only once the process has exited (it still cleans up after saying so);
                # until then it is stopping. _on_finished settles the state.
                self._final_phase = state
                state = ServingState.stopping
            if state is not None and not (
                self._stop_requested and state in (ServingState.running, ServingState.starting)
            ):
                self._follow_phase(state)
        elif isinstance(event, StatusEvent):
            status = event.as_json()
            self.last_status = status
            self.status_changed.emit(status)
        elif isinstance(event, ErrorEvent):
            self.last_error = (event.message, event.hint)
            log.error("error: %s%s", event.message, f" (hint: {event.hint})" if event.hint else "")
            self.error_reported.emit(event.message, event.hint)
        elif isinstance(event, LogEvent):
            level = {"warning": 30, "error": 40}.get(event.level, 20)
            log.log(level, "%s", event.message)
        elif isinstance(event, AppliedEvent):
            ok, message, hint = event.ok, event.message, event.hint
            log.log(20 if ok else 30, "%s%s", message if ok else f"not applied: {message}", f" ({hint})" if hint else "")
            self.applied.emit(event.as_json())
            if ok and event.config is not None:
                self.set_running_config(event.config)  # what runs now, said with the answer
            elif ok:
                # A supervisor that does not say it (the tests' fakes) rewrites its record just after
                # answering: read it once that is done.
                QTimer.singleShot(1000, self, self.reload_running_config)

    # ---- end ------------------------------------------------------------

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._fail(
                f"Could not start the supervisor ({self.command[0]} {' '.join(self.command[1:])}).",
                "Check that the gradio-serve-launcher package is installed in this Python environment.",
            )

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._flush_buffers()
        self._grace.stop()
        crashed = status == QProcess.ExitStatus.CrashExit
        launcher_logger().info("the supervisor exited (%s)", "crashed" if crashed else f"code {code}")
        # Ray helpers may outlive the supervisor; end them (the detached case never gets here alive).
        self._reap_signal = signal.SIGTERM
        self._reaper.start(1000)
        if self._stop_requested:
            self._set_state(ServingState.stopped)
            self.message_changed.emit("Stopped")
        elif code != 0 or crashed or self._final_phase is ServingState.error:
            if self.last_error is None:
                self._fail(
                    f"The supervisor {'crashed' if crashed else f'exited with code {code}'} before it finished.",
                    "The log view (Open logs folder) has its output; fix what it names and start again.",
                )
            self._set_state(ServingState.error)
        else:
            self._set_state(ServingState.stopped)
            self.message_changed.emit("Stopped")
        self.finished.emit(-1 if crashed else code)

    def _fail(self, message: str, hint: str) -> None:
        self.last_error = (message, hint)
        self.error_reported.emit(message, hint)
        self._set_state(ServingState.error)
