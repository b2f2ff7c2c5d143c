"""What a target holds, learnt without importing it: `python -m serving.replica.app_target TARGET --json`
run in a child process (AppInspector, a QProcess), plus the checks that need no Python at all.

The user's code, and Gradio with it, must never be imported into the launcher (it takes seconds,
and the file may do anything at import). An Inspection keeps the file's modification time, so
the window reuses it while the file is unchanged.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QProcess, QTimer, Signal

from launcher.logs import launcher_logger
from launcher.supervisor_process import child_environment
from serving.core.config import LaunchConfig
from serving.core.target import AppLoadError, absolute_target, parse_target  # light: Gradio stays in the child

TOO_LONG_S = 180  # an app that loads a model at import can take a while; past this it is not checked


@dataclass(frozen=True)
class Inspection:
    """What `serving.replica.app_target --json` said about one target (and when the file looked like what)."""

    ok: bool
    target: str
    app_dir: str | None = None
    name: str | None = None
    kind: str | None = None
    file: str | None = None
    folder: str | None = None
    error: str | None = None
    hint: str | None = None
    stamp: tuple[int, int] | None = None  # the file's (mtime_ns, size) when it was checked
    unchecked: bool = False  # the check gave no verdict (too slow): Start is left to the supervisor's own check

    @property
    def refuses_start(self) -> bool:
        return not self.ok and not self.unchecked

    def summary(self) -> str:
        if self.ok:
            return f"{self.name} · {self.kind}"
        return self.error or "the app cannot be loaded"


def resolve_target(text: str) -> tuple[str, str | None]:
    """(target with an absolute file path, the folder a module target runs in), as `gradio-serve up
    --app` stores it: the launcher's config file lives in the state folder, and a relative target
    would be taken relative to that."""
    try:
        return absolute_target(text.strip())
    except AppLoadError:
        return text.strip(), None


def load_config(path: str | Path) -> LaunchConfig:
    """LaunchConfig.load, your app's relative target taken relative to the file, as `gradio-serve up
    --config` takes it (a module target then runs in the file's folder). Raises ConfigError."""
    config = LaunchConfig.load(path)
    if config.app is None:
        return config
    try:
        target, module_dir = absolute_target(config.app.target, Path(path).resolve().parent)
    except AppLoadError:
        return config  # said when it is checked
    app = config.app.model_copy(update={"target": target, "app_dir": config.app.app_dir or module_dir})
    return config.model_copy(update={"app": app})


def normalize_target(text: str) -> str:
    """A file target as an absolute path (":NAME" kept), so it means the same from any folder."""
    return resolve_target(text)[0]


def file_of(text: str) -> Path | None:
    try:
        return parse_target(text).file if text.strip() else None
    except AppLoadError:
        return None


def file_stamp(text: str) -> tuple[int, int] | None:
    path = file_of(text)
    try:
        st = path.stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st else None


def short_name(text: str) -> str:
    """demo.py for a file target, the module for a module one (what "Checking …" names)."""
    path = file_of(text)
    return path.name if path else text.strip().rpartition(":")[0] or text.strip()


def quick_check(text: str, app_dir: str | None = None) -> Inspection | None:
    """What can be told without running Python (no file there, a folder, ...); None: ask the inspector."""
    try:
        target = parse_target(text)
    except AppLoadError as exc:
        return Inspection(False, text, app_dir, error=str(exc), hint=exc.hint)
    if target.file is None:
        return None
    if not target.file.exists():
        return Inspection(False, text, app_dir, error=f"{target.file} does not exist",
                          hint="check the path of your app's .py file")
    if not target.file.is_file():
        return Inspection(False, text, app_dir, error=f"{target.file} is not a file",
                          hint="give the app's .py file, e.g. path/to/demo.py")
    return None


class AppInspector(QObject):
    """Runs `python -m serving.replica.app_target TARGET --json` in a child process; one check at a time.

    A new check cancels the one in flight (the user typed on). The answer is taken as soon as
    its JSON line arrives and the child is then ended: an app that leaves a thread running at
    import would otherwise keep the child alive.
    """

    finished = Signal(object)  # Inspection

    timeout_s = TOO_LONG_S

    def __init__(self, parent: QObject | None = None, command: list[str] | None = None):
        super().__init__(parent)
        self.command = command or [sys.executable, "-m", "serving.replica.app_target"]
        self._proc: QProcess | None = None
        self._request: tuple[str, str | None, tuple[int, int] | None] | None = None
        self._out = b""
        self._err = b""
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._on_timeout)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def busy(self) -> bool:
        return self._proc is not None

    def busy_with(self, target: str, app_dir: str | None) -> bool:
        return self._proc is not None and self._request is not None and self._request[:2] == (target, app_dir)

    def inspect(self, target: str, app_dir: str | None = None) -> None:
        self.cancel()
        proc = QProcess(self)
        proc.setProcessEnvironment(child_environment())
        proc.readyReadStandardOutput.connect(lambda p=proc: self._on_stdout(p))
        proc.readyReadStandardError.connect(lambda p=proc: self._on_stderr(p))
        proc.finished.connect(lambda code, status, p=proc: self._on_finished(p, code, status))
        proc.errorOccurred.connect(lambda error, p=proc: self._on_error(p, error))
        proc.finished.connect(proc.deleteLater)
        self._proc, self._out, self._err = proc, b"", b""
        self._request = (target, app_dir, file_stamp(target))
        args = self.command[1:] + [target, "--json"] + (["--app-dir", app_dir] if app_dir else [])
        self._timer.start(int(self.timeout_s * 1000))
        proc.start(self.command[0], args)

    def cancel(self) -> None:
        """Forget the check in flight (its answer, if it comes, is ignored) and end its child."""
        proc, self._proc = self._proc, None
        self._timer.stop()
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            proc.kill()  # finished() follows, and deleteLater with it

    def shutdown(self) -> None:
        """Cancel, and reap the child now (quitting: Qt would otherwise complain and do it itself)."""
        proc = self._proc
        self.cancel()
        if proc is not None and shiboken6.isValid(proc):
            proc.waitForFinished(1000)  # SIGKILLed just before: milliseconds

    def _on_stdout(self, proc: QProcess) -> None:
        if proc is not self._proc or not shiboken6.isValid(proc):
            return
        self._out += bytes(proc.readAllStandardOutput())
        for line in self._out.splitlines():
            answer = _parse_answer(line)
            if answer is not None:
                self._deliver(answer)
                if proc.state() != QProcess.ProcessState.NotRunning:
                    proc.kill()  # said what it had to say
                return

    def _on_stderr(self, proc: QProcess) -> None:
        if proc is self._proc and shiboken6.isValid(proc):
            self._err = (self._err + bytes(proc.readAllStandardError()))[-8000:]

    def _on_finished(self, proc: QProcess, code: int, status: QProcess.ExitStatus) -> None:
        if proc is not self._proc or not shiboken6.isValid(proc) or not shiboken6.isValid(self):
            return  # cancelled, or ended by the window going away
        self._on_stdout(proc)  # whatever was left unread
        if proc is not self._proc:
            return  # answered
        tail = self._err.decode("utf-8", "replace").strip()
        launcher_logger().warning("checking the app gave no answer (exit %s): %s", code, tail[-2000:])
        last = tail.splitlines()[-1] if tail else ""
        self._fail(f"checking the app failed (the checker exited with code {code}"
                   + (f": {last}" if last else "") + ")", "the log has the checker's output")

    def _on_error(self, proc: QProcess, error: QProcess.ProcessError) -> None:
        if proc is self._proc and error == QProcess.ProcessError.FailedToStart:
            self._fail(f"could not run {self.command[0]} to check the app",
                       "check that the launcher's Python environment is intact")

    def _on_timeout(self) -> None:
        if self._proc is None:
            return
        target = self._request[0] if self._request else ""
        self._fail(f"{short_name(target)} was still loading after {self.timeout_s} s, so it was not checked",
                   "it is checked again when it starts; an app that loads a model at import is slow to check",
                   unchecked=True)

    def _fail(self, error: str, hint: str, unchecked: bool = False) -> None:
        self._deliver({"ok": False, "error": error, "hint": hint}, unchecked=unchecked)

    def _deliver(self, answer: dict, unchecked: bool = False) -> None:
        target, app_dir, stamp = self._request or ("", None, None)
        self.cancel()
        result = Inspection(
            ok=bool(answer.get("ok")), target=target, app_dir=app_dir, stamp=stamp, unchecked=unchecked,
            **{k: _str_or_none(answer.get(k)) for k in ("name", "kind", "file", "folder", "error", "hint")},
        )
        self.finished.emit(result)


def _parse_answer(line: bytes) -> dict | None:
    line = line.strip()
    if not line.startswith(b"{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "ok" in data else None


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)
