"""What a target holds, learnt without importing it: `python -m serving.replica.app_target TARGET --json`
run in a child process (AppInspector, a QProcess), plus the checks that need no Python at all. The
child's verdict is serving/core/inspection.py's Inspection, the model the supervisor reads too.

The user's code, and Gradio with it, must never be imported into the launcher (it takes seconds,
and the file may do anything at import). An Inspection keeps the file's modification time, so
the window reuses it while the file is unchanged.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QProcess, QTimer, Signal

from launcher.logs import launcher_logger
from launcher.supervisor_process import child_environment
from serving.core.config import LaunchConfig
from serving.core.flags import ConfigOverrides
from serving.core.inspection import Inspection
from serving.core.target import AppLoadError, Target, parse_target, try_parse  # light

__all__ = ["AppInspector", "Inspection", "file_of", "file_stamp", "load_config", "normalize_target", "quick_check",
           "resolve_target", "short_name"]

TOO_LONG_S = 180  # an app that loads a model at import can take a while; past this it is not checked


@functools.lru_cache(maxsize=64)
def _parsed(text: str, cwd: str) -> Target | None:
    return try_parse(text, Path(cwd))


def parsed(text: str) -> Target | None:
    """The field's text parsed once (the form asks many questions of one text); None: not a target."""
    return _parsed(text.strip(), str(Path.cwd()))


def resolve_target(text: str) -> tuple[str, str | None]:
    """(target with an absolute file path, the folder a module target runs in), as `gradio-serve up
    --app` stores it: the launcher's config file lives in the state folder, and a relative target
    would be taken relative to that."""
    target = parsed(text)
    if target is None:
        return text.strip(), None
    return target.absolute, None if target.file else str(Path.cwd().resolve())


def load_config(path: str | Path, port: int | None = None) -> LaunchConfig:
    """A config file as `gradio-serve up --config` takes it (serving/core/flags.py's one merge): your app's
    relative target relative to the file, a module target run in the file's folder; `port` on top.
    Raises ConfigError."""
    try:
        return ConfigOverrides(config=str(path), port=port).over(from_environment=False)  # not a terminal's
    except AppLoadError:  # a target that is none: taken as written, and said when it is checked
        return ConfigOverrides(port=port).over(LaunchConfig.load(path), from_environment=False)


def normalize_target(text: str) -> str:
    """A file target as an absolute path (":NAME" kept), so it means the same from any folder."""
    return resolve_target(text)[0]


def file_of(text: str) -> Path | None:
    target = parsed(text)
    return target.file if target else None


def file_stamp(text: str) -> tuple[int, int] | None:
    target = parsed(text)
    return target.stamp() if target else None


def short_name(text: str) -> str:
    """demo.py for a file target, the module for a module one (what "Checking …" names)."""
    target = parsed(text)
    return target.short_name if target else text.strip().rpartition(":")[0] or text.strip()


def quick_check(text: str, app_dir: str | None = None) -> Inspection | None:
    """What can be told without running Python (no file there, a folder, ...); None: ask the inspector."""
    target = parsed(text)
    if target is None:
        try:
            parse_target(text)  # only to say why it is not a target
        except AppLoadError as exc:
            return Inspection(ok=False, target=text, app_dir=app_dir, error=str(exc), hint=exc.hint)
    if target is None or target.file is None:
        return None
    if not target.file.exists():
        return Inspection(ok=False, target=text, app_dir=app_dir, error=f"{target.file} does not exist",
                          hint="check the path of your app's .py file")
    if not target.file.is_file():
        return Inspection(ok=False, target=text, app_dir=app_dir, error=f"{target.file} is not a file",
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
            answer = Inspection.from_line(line)
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
        self._deliver(Inspection(ok=False, error=error, hint=hint, unchecked=unchecked))

    def _deliver(self, answer: Inspection) -> None:
        """The verdict, told for the target as asked (the child names it as it was given)."""
        target, app_dir, stamp = self._request or ("", None, None)
        self.cancel()
        self.finished.emit(answer.model_copy(update={"target": target, "app_dir": app_dir, "stamp": stamp}))
