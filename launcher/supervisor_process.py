"""The supervisor (`python -m serving.cli up --events`) run as a QProcess.

This is the process's life: start, output, stop, exit. Its stdout's JSON event lines
(serving/core/events.py is the contract) go to launcher/supervisor_events.py, which turns
them into Qt signals and one of five states. Start and stop are idempotent. Stop asks nicely ("stop" on stdin), then after a grace period
ends the supervisor's whole process group (it leads its own group, so Ray's
helpers go too), first with SIGTERM, then SIGKILL. Nothing here blocks the
main thread except `kill_now()`, which is only for the moment of exit.
A `deploying` phase after `running` is a change applied in place (or its
rollback): the state stays running, with `changing` set meanwhile.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from launcher.logs import launcher_logger, supervisor_logger
from launcher.serving_controller import ServingState
from launcher.supervisor_events import SupervisorEvents
from serving.core import paths
from serving.core.config import LaunchConfig
from serving.core.events import parse_line
from serving.core.process_group import group_alive, signal_group

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


class SupervisorProcess(SupervisorEvents):
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
        self.running_config = config
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
