"""The user's app checked: its file at once (missing, a syntax error), then imported in a child
process (`python -m serving.replica.app_target --json`) while Ray starts, so the user's code never
runs in the supervisor and a broken app is refused with its file, line and fix.

A file that can only be a Gradio app by its text is deployed without waiting for that import
(`speculative`): the replica imports it too, with the same checks (a login it cannot keep refuses
there as well), and importing Gradio twice, one after the other, was a quarter of the start on 2
cores. The child then runs at the lowest CPU priority and is read as the start goes on: its error
ends the start, a Serve application it finds after all is deployed again as one. A file that binds
deployments is waited for, as before."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from serving.core.config import AppSpec
from serving.core.inspection import Inspection
from serving.core.preflight import StartError
from serving.core.target import AppLoadError, check_file, parse_target

# Generous: an app may load a model at import.
APP_IMPORT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Found:
    name_and_kind: str  # "demo · gr.Blocks"
    file: str
    warnings: list[str] = field(default_factory=list)  # launch()/queue() settings that are not applied
    serve_app: bool = False  # a Serve application file, deployed as it declares (serving/replica/serve_app.py)


class AppInspection:
    def __init__(self, spec: AppSpec, proc: subprocess.Popen, speculative: bool):
        self.spec, self.proc, self.speculative = spec, proc, speculative
        self.deadline = time.monotonic() + APP_IMPORT_TIMEOUT_S
        self.found: Found | None = None

    @classmethod
    def start(cls, spec: AppSpec, login_given: bool) -> AppInspection:
        """Checks the file now (StartError before Ray starts); the import goes on in a child.
        login_given: our --username/--password replace the app's own login."""
        try:
            target = parse_target(spec.target)
            if target.file is not None:
                check_file(target.file)
        except AppLoadError as exc:
            raise StartError(str(exc), exc.hint) from None
        speculative = target.file is not None and _only_gradio(target.file)
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving.replica.app_target", spec.target, "--json"]
            + (["--app-dir", spec.app_dir] if spec.app_dir else [])
            + (["--login-given"] if login_given else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
        )
        if speculative:  # the replica's own import of the same file comes first
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, proc.pid, 19)
        return cls(spec, proc, speculative)

    def result(self, stop_requested: threading.Event) -> Found | None:
        """What the import found (waited for); StartError for a broken app; None when a stop came first."""
        while (found := self.poll()) is None:
            if stop_requested.is_set():
                self.kill()
                return None
            time.sleep(0.1)
        return found

    def poll(self) -> Found | None:
        """What the import found, once it has ended (else None); StartError for a broken app."""
        if self.found is not None:
            return self.found
        proc, target = self.proc, self.spec.target
        if proc.poll() is None:
            if time.monotonic() > self.deadline:
                self.kill()
                raise StartError(f"importing {target} took more than {APP_IMPORT_TIMEOUT_S} s",
                                 "does the app wait for input or a server at import time? "
                                 "`python FILE` should return (with `demo.launch()` under `if __name__ == \"__main__\":`)")
            return None
        answers = [found for line in proc.stdout.read().splitlines() if (found := Inspection.from_line(line))]
        if not answers:
            raise StartError(f"importing {target} crashed (exit code {proc.returncode})",
                             f"run `python {target.split(':')[0]}` to see why")
        found = answers[-1]
        if not found.ok:
            raise StartError(found.error or "the app cannot be loaded", found.hint or "fix the app and start again")
        warnings = list(found.warnings)
        if found.serve_app and (ignored := _not_for_serve_apps(self.spec)):
            warnings.append(f"{ignored}: not applied, a Serve application file's deployments ask for what the file "
                            "declares (num_replicas and ray_actor_options there)")
        self.found = Found(found.summary(), found.file or "", warnings, found.serve_app)
        return self.found

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _only_gradio(file) -> bool:
    """Whether the file, by its text, cannot be a Serve application: one binds its deployments
    (`.bind(`), in the file itself almost always. One imported from elsewhere is still found by the
    import, only later."""
    try:
        return ".bind(" not in file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _not_for_serve_apps(spec: AppSpec) -> str:
    """The app's flags given that a Serve application file does not take ("--replicas 2, --num-cpus 0.5")."""
    default = AppSpec(target=spec.target)
    given = [f"{flag} {getattr(spec, field):g}" for flag, field in (
        ("--replicas", "replicas"), ("--num-cpus", "num_cpus"), ("--num-gpus", "num_gpus"))
        if getattr(spec, field) != getattr(default, field)]
    return ", ".join(given + (["--min/--max-replicas"] if spec.autoscaling else []))
