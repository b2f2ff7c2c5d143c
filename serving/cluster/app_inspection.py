"""The user's app checked before anything is deployed: its file at once (missing, a syntax error), then
imported in a child process (`python -m serving.replica.app_target --json`) while Ray starts, so the
user's code never runs in the supervisor and a broken app is refused with its file, line and fix."""

from __future__ import annotations

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
    def __init__(self, spec: AppSpec, proc: subprocess.Popen):
        self.spec, self.proc = spec, proc

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
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving.replica.app_target", spec.target, "--json"]
            + (["--app-dir", spec.app_dir] if spec.app_dir else [])
            + (["--login-given"] if login_given else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
        )
        return cls(spec, proc)

    def result(self, stop_requested: threading.Event) -> Found | None:
        """What the import found; StartError for a broken app; None when a stop came first."""
        proc, target = self.proc, self.spec.target
        deadline = time.monotonic() + APP_IMPORT_TIMEOUT_S
        while proc.poll() is None:
            if stop_requested.is_set() or time.monotonic() > deadline:
                self.kill()
                if stop_requested.is_set():
                    return None
                raise StartError(f"importing {target} took more than {APP_IMPORT_TIMEOUT_S} s",
                                 "does the app wait for input or a server at import time? "
                                 "`python FILE` should return (with `demo.launch()` under `if __name__ == \"__main__\":`)")
            time.sleep(0.1)
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
        return Found(found.summary(), found.file or "", warnings, found.serve_app)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _not_for_serve_apps(spec: AppSpec) -> str:
    """The app's flags given that a Serve application file does not take ("--replicas 2, --num-cpus 0.5")."""
    default = AppSpec(target=spec.target)
    given = [f"{flag} {getattr(spec, field):g}" for flag, field in (
        ("--replicas", "replicas"), ("--num-cpus", "num_cpus"), ("--num-gpus", "num_gpus"))
        if getattr(spec, field) != getattr(default, field)]
    return ", ".join(given + (["--min/--max-replicas"] if spec.autoscaling else []))
