"""The supervisor: start (or connect to) Ray, deploy, watch, stop. A Ray driver.

It owns the Ray side for as long as it runs. It stops on SIGTERM/SIGINT, on a
"stop" line on stdin, or when stdin closes (the launcher died), and then leaves
nothing behind: Serve shut down and, if it started the cluster, the cluster too.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass, field

from serving.cluster import joining, local_cluster, reaper
from serving.cluster.app_inspection import AppInspection
from serving.cluster.changes import ChangesInPlace
from serving.cluster.cluster_checks import (
    check_address_reachable,
    check_cluster_resources,
    check_cluster_serve,
    check_local_resources,
    check_token,
    other_cluster,
)
from serving.cluster.download_records import DownloadRecords
from serving.cluster.hub_download import fetch_missing
from serving.cluster.machines import MachineWatch
from serving.cluster.metrics_reader import start_metrics
from serving.cluster.relay_feed import point_relay, replaces_replicas, steady_poll_s
from serving.cluster.reloader import Reloader
from serving.cluster.status_snapshot import UNSCHEDULABLE, failure_line, first_line, read_app_status, status_snapshot
from serving.core import paths
from serving.core.config import APP_NAME, ConfigError, LaunchConfig
from serving.core.events import EventWriter, Phase
from serving.core.preflight import StartError, check_port_free, free_loopback_port, port_taken
from serving.core.process_group import end_own_group_members
from serving.core.protocol import ApplyAnswer, StatusRecord, SupervisorRecord
from serving.core.readiness import page_answers
from serving.core.records import live_record, read_supervisor_record
from serving.core.target import app_folder, parse_target
from serving.front.port_relay import PortRelay

POLL_S = 0.2  # while it starts: the first answer waits on the poll that sees the app running (then relay_feed's)
PROXY_START_TIMEOUT_S = 60  # as serve.start waits


@dataclass
class Supervisor(ChangesInPlace):
    config: LaunchConfig
    events: EventWriter
    open_browser: bool = False
    watch_stdin: bool = False
    stop_requested: threading.Event = field(default_factory=threading.Event)
    detached: bool = False
    owns_cluster: bool = False
    deployed: bool = False  # only an app we deployed is ever deleted
    apply_pending: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)  # a stop or an apply: poll now
    _reaper: subprocess.Popen | None = None
    _announced: bool = False
    _apply: dict | None = None  # the change being deployed: request id and the config to go back to
    _deploy_error: BaseException | None = None
    _deploy_done: threading.Event = field(default_factory=threading.Event)
    _snapshot: dict = field(default_factory=dict)  # the last status written to the status record
    _applied: ApplyAnswer | None = None  # the answer to the last apply request, kept in the status record
    _started: float = field(default_factory=time.time)
    _inspection: AppInspection | None = None  # mode app: the user's app imported aside, checked before deploying
    _app_found: str = ""  # "demo · gr.Blocks"
    _serve_app: bool = False  # the user's file is a Serve application, deployed as it declares
    _slots_of: dict = field(default_factory=dict)  # model deployment name -> the slot indexes it answers
    _relay: PortRelay | None = None  # the app's port, on a cluster we started (serving/front/port_relay.py)
    _reloader: Reloader | None = None  # --reload: a save swaps the app's code in (serving/cluster/reloader.py)
    _machines: MachineWatch = field(default_factory=MachineWatch)  # the status's machines (serving/cluster/machines.py)

    # -- checks before anything starts ----------------------------------------
    def preflight(self) -> list:
        from serving.core.catalog import resolve_models

        self.phase(Phase.validating, "checking the configuration")
        if running := live_record():
            raise StartError(f"the app is already running at {running.url} (pid {running.pid})",
                             "open it, change it in place with `gradio-serve apply`, or stop it with `gradio-serve down`")
        from serving.core.embedded_model import DOWNLOAD_MB, gguf_path, is_embedded

        if any(is_embedded(s.model) for s in self.config.models) and gguf_path() is None:
            self.phase(Phase.validating, f"installing the embedded model ({DOWNLOAD_MB} MB, once)")
        entries = fetch_missing(resolve_models(self.config), self.config.models, self.events, self.stop_requested,
                                told=DownloadRecords(self.config, self._started).said)  # seen by status and down
        if self.stop_requested.is_set():
            return entries  # stopped mid-download: nothing more to check
        if not self.config.cluster.address:  # on a cluster, _deploy checks Serve's port
            check_port_free(self.config.http.host, self.config.http.port)
            if not self.config.cluster.join_address:  # what this machine lacks, one that joins may bring
                check_local_resources(self.config)
        if self.config.app:
            self._inspection = AppInspection.start(self.config.app, login_given=bool(self.config.http.username))
        return entries

    # -- the life cycle ----------------------------------------------------------
    def run(self) -> int:
        self._install_signal_handlers()
        if self.watch_stdin:
            threading.Thread(target=self._read_stdin, daemon=True).start()
        try:
            entries = self.preflight()
            if self.stop_requested.is_set():
                return 0  # stopped while a model downloaded: nothing started yet
            self._start_ray()
            self._deploy(entries)
            self._reloader = Reloader.start_for(self)
            start_metrics(self)  # what it is doing, every ~2 s, until the stop (#22)
            self._watch()
            return 0
        except (ConfigError, StartError) as exc:
            self.error(str(exc), getattr(exc, "hint", "") or "fix the configuration and start again")
            return 2
        except Exception as exc:  # noqa: BLE001 - a crash mid-start still cleans up and says so
            self.error(f"unexpected failure: {type(exc).__name__}: {exc}", f"see the log at {paths.supervisor_log()}")
            import traceback

            traceback.print_exc()
            return 1
        finally:
            self._stop()

    def _start_ray(self) -> None:
        # Serve's side of this driver (~0.5 s of imports) loads while ray.init waits on Ray's processes.
        threading.Thread(target=_import_serve_side, daemon=True).start()
        import ray

        from serving.ray_private import version_mismatch
        from serving.ray_private.tokens import use_token_if_available

        cluster = self.config.cluster
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        if mismatch := version_mismatch():
            self.events.emit("log", level="warning", message=mismatch)
        # Ray's worker logs go to stderr (fd 1 is redirected in --events mode).
        if cluster.address:
            self.phase(Phase.starting_cluster, f"connecting to the Ray cluster at {cluster.address}")
            check_address_reachable(cluster.address)
            # Your own app's folder travels to the cluster's nodes (Serve's replicas inherit it).
            app = self.config.app
            runtime_env = {"working_dir": str(app_folder(parse_target(app.target), app.app_dir))} if app else None
            check_token(cluster.address, use_token_if_available())  # `ray start`'s cluster wants its token
            try:
                ray.init(address=cluster.address, namespace=APP_NAME, log_to_driver=False, runtime_env=runtime_env)
            except Exception as exc:  # noqa: BLE001 - any failure to connect reads the same to the user
                raise StartError(f"cannot reach the Ray cluster at {cluster.address}: {exc}",
                                 "check the address and that the cluster is up (`ray status --address ...`)") from None
        else:
            self.phase(Phase.starting_cluster, "starting a local Ray cluster")
            other = other_cluster()
            if other:
                self.events.emit("log", level="info", message=f"a Ray cluster is already known here ({other}); "
                                 "this app starts its own. To deploy to that one instead: --address auto")
            self._reaper = reaper.start()  # ends our process group if we die hard
            self.owns_cluster = True
            local_cluster.start(cluster)
            if cluster.join_address:
                self.events.emit("log", level="info", message=joining.invitation(cluster.join_address))
        # Ray's core worker installs its own SIGTERM handler, which dies mid-cleanup: take it back.
        self._install_signal_handlers()
        if not cluster.join_address:
            check_cluster_resources(self.config, ray.cluster_resources())
        self._write_record()

    def _deploy(self, entries) -> None:
        from ray import serve

        from serving.ray_private import start_serve_without_waiting

        if self._inspection is not None and not self._inspection.speculative:
            self.phase(Phase.validating, f"importing {self.config.app.target}")
            if self._inspection.result(self.stop_requested) is None:
                return  # a stop asked for meanwhile
        self._take_inspection()
        if self.stop_requested.is_set():
            return
        what = self._app_found or (parse_target(self.config.app.target).short_name if self.config.app else "")
        self.phase(Phase.deploying, "deploying " + (what or ", ".join(e.name for e in entries)))
        http = self.config.http
        if self.config.cluster.address:
            check_cluster_serve(self.config)
        proxy_ready = []
        if self.owns_cluster:
            # The app's port is our relay's: to the Gradio replicas' own ports, else to Serve's
            # proxy, on a loopback port of its own. A fresh Serve: its proxy starts while the app
            # is submitted.
            proxy_port = free_loopback_port()
            self._relay = PortRelay(http.host, http.port, proxy_port, APP_NAME)
            self._relay.said = lambda line: self.events.emit("log", level="info", message=line)
            try:
                self._relay.start()
            except OSError as exc:
                self._relay = None
                raise port_taken(http.host, http.port, exc.strerror or str(exc)) from None
            proxy_ready = start_serve_without_waiting({"host": "127.0.0.1", "port": proxy_port})
        else:
            serve.start(http_options={"host": http.host, "port": http.port})
        self.deployed = True
        self._start_deploy(entries, proxy_ready)

    def _start_deploy(self, entries, proxy_ready: list = ()) -> None:
        """serve.run of the current config, aside, so status events flow meanwhile; the watch loop
        reads the app as running only after this version is submitted (until then the old one runs)
        and Serve's proxy, if it is still starting (`proxy_ready`), answers."""
        import ray

        from serving.core.catalog import resolve_models
        from serving.replica.apps import build_app, deployment_name, slot_groups

        entries = entries or ([] if self.config.app else resolve_models(self.config))
        code = self._reloader and self._reloader.code  # an apply keeps reloaded code
        app = None if self._serve_app else build_app(self.config, entries, code)
        # Which slots each model deployment answers (slots of one model share one), for the status.
        self._slots_of = {deployment_name(g[0]): g for g in slot_groups(self.config, entries)} if entries else {}
        self._deploy_error = None
        self._deploy_done = threading.Event()
        self._announced = False

        def deploy():
            try:
                self.submit(code, app)
                if proxy_ready:
                    ray.get(proxy_ready, timeout=PROXY_START_TIMEOUT_S)
            except BaseException as exc:  # noqa: BLE001 - reported by the watch loop
                self._deploy_error = exc
            finally:
                self._deploy_done.set()
                self._wake.set()

        threading.Thread(target=deploy, daemon=True).start()

    def submit(self, code: dict | None, app=None) -> None:
        """`app` (else the config, with a reload's code) to Serve; a Serve application file from a Ray task."""
        if self._serve_app:
            from serving.replica.serve_app import deploy

            return deploy(self.config.app.target, self.config.app.app_dir, (code or {}).get("files"))
        from serving.ray_private import submit_app
        from serving.replica.apps import build_app

        submit_app(app or build_app(self.config, code=code), name=APP_NAME, route_prefix="/")

    def _take_inspection(self, wait: bool = False) -> bool:
        """The app's import aside (serving/cluster/app_inspection.py), once it has ended: what it found is
        said, its error ends the start (StartError). True when a file deployed as a Gradio app turned
        out a Serve application: deployed again, as one."""
        if self._inspection is None:
            return False
        found = self._inspection.result(self.stop_requested) if wait else self._inspection.poll()
        if found is None:
            return False
        self._inspection = None
        guessed_wrong = found.serve_app and not self._serve_app and self.deployed
        self._app_found, self._serve_app = found.name_and_kind, found.serve_app
        for warning in found.warnings:
            self.events.emit("log", level="warning", message=warning)
        self.events.emit("log", level="info", message=f"found {self._app_found} in {found.file}")
        if guessed_wrong:
            self._start_deploy(None)
            if self._reloader is not None:  # it follows a Serve application file its own way
                self._reloader.stop()
                self._reloader = Reloader.start_for(self)
        return guessed_wrong

    def _watch(self) -> None:
        last = None
        while True:
            self._wake.wait(steady_poll_s(self.config) if self._announced else POLL_S)
            self._wake.clear()
            if self.stop_requested.is_set():
                break
            if self._take_inspection():
                continue
            if self.apply_pending.is_set():
                self.apply_pending.clear()
                self._take_apply_request()
            submitted = self._deploy_done.is_set()  # before the status: a RUNNING read earlier is the old version's
            status, targets = read_app_status(self._machines.placements)
            if self._relay is not None and not (self._reloader and self._reloader.swapping.is_set()):
                # Replicas that leave outside a rollout of new code were scaled down: drained for their sessions.
                rollout = status is None or bool(self._apply and replaces_replicas(self._apply["previous"], self.config))
                if said := point_relay(self._relay, self.config, rollout):
                    self.events.emit("log", level="info", message=said)
            if status is None:
                if self._deploy_error and not self._take_inspection(wait=True):  # its error says more
                    self._failed(f"deploying failed: {self._deploy_error}", getattr(self._deploy_error, "hint", ""))
                continue
            snapshot = status_snapshot(status, targets, self.config, self._app_found, self._slots_of)
            snapshot["machines"] = self._machines.poll(self.events)
            if snapshot != last:
                self.events.emit("status", **snapshot)
                self._write_status(snapshot)
                last = snapshot
            if self._announced:
                continue
            app_status = snapshot["app_status"]
            # Only this version's failure counts: one read before it was submitted is the version it replaces.
            if (app_status == "DEPLOY_FAILED" or self._deploy_error) and submitted:
                if self._take_inspection(wait=True):  # its error says more; a Serve application: redeployed
                    continue
                failed = [d for d in snapshot["deployments"] if d["message"]]
                detail = failed[0]["message"] if failed else (status.message or str(self._deploy_error))
                self._failed(f"the app failed to deploy: {failure_line(detail)}",
                             f"see the full error in {paths.supervisor_log()}")
                continue
            stuck = [d for d in snapshot["deployments"] if UNSCHEDULABLE in d["message"]]
            if stuck and not self.config.cluster.join_address:  # else it waits for a machine to join
                self._failed(f"{stuck[0]['name']} cannot be placed: {first_line(stuck[0]['message'])}",
                             "lower the CPUs/GPUs/replicas asked for, or add machines to the cluster")
                continue
            if app_status == "RUNNING" and submitted and page_answers(self.config.url):
                self._announced = True
                self.phase(Phase.running, f"ready at {self.config.url}", url=self.config.url)
                if self._apply:  # answers it in the status record too
                    self._finish_apply(self._apply["id"], ok=True, message="applied: " + self._models_text())
                else:
                    self._write_status(snapshot)
                if self.open_browser:
                    self.open_browser = False
                    webbrowser.open(self.config.url)

    def _write_status(self, snapshot: dict) -> None:
        self._snapshot = snapshot
        phase = Phase.running if self._announced else Phase.deploying
        record = StatusRecord(**snapshot, url=self.config.url, phase=phase, applied=self._applied)
        paths.write_json_atomic(paths.status_record(), record.as_json())

    # -- stopping -------------------------------------------------------------------
    def _stop(self) -> None:
        if self.detached and not self.stop_requested.is_set():
            return
        if self._inspection is not None:
            self._inspection.kill()  # a start that failed while the app was being imported
        if self._reloader is not None:
            self._reloader.stop()
        import ray

        if not ray.is_initialized():
            return self._clear_record()  # nothing else started: a download's records go
        self.phase(Phase.stopping, "stopping")
        if self._relay is not None:
            self._relay.stop()
        try:
            from ray import serve

            from serving.ray_private import shut_serve_down

            if self.owns_cluster and not shut_serve_down():
                self.events.emit("log", level="warning",
                                 message="Serve did not stop within 30 s; its replicas are ended with the cluster")
            elif not self.owns_cluster and self.deployed:
                serve.delete(APP_NAME)  # only this app; the cluster and other apps stay
            ray.shutdown()
        except Exception as exc:  # noqa: BLE001 - stopping must go on
            self.events.emit("log", level="warning", message=f"while stopping Serve: {exc}")
        if self.owns_cluster:
            end_own_group_members(grace_s=1.0)
        self._clear_record()
        self.phase(Phase.stopped, "stopped")
        if self._reaper:
            self._reaper.stdin.close()  # tells the reaper we ended cleanly

    def request_stop(self, *_args) -> None:
        self.stop_requested.set()
        self._wake.set()

    def request_apply(self, *_args) -> None:
        self.apply_pending.set()
        self._wake.set()

    def _install_signal_handlers(self) -> None:
        for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(stop, self.request_stop)
        signal.signal(signal.SIGUSR1, self.request_apply)  # see serving/core/apply_request.py

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            cmd = line.strip().lower()
            if cmd == "stop":
                break
            if cmd == "detach":
                self.detached = True
                self._detach_output()
                self.events.emit("log", level="info", message="detached: serving goes on after the launcher quits")
                return  # stdin closing no longer means stop
        if not self.detached:
            self.request_stop()

    def _detach_output(self) -> None:
        # The launcher stops reading; keep events in the log file instead of a dead pipe.
        paths.supervisor_log().parent.mkdir(parents=True, exist_ok=True)
        log = open(paths.supervisor_log(), "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as we do
        self.events.switch(log, as_json=True)
        # Ray and Python logging write to fds 1/2, which were pipes to the launcher.
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)

    # -- the record other commands read --------------------------------------------------
    def _write_record(self) -> None:
        record = SupervisorRecord(
            pid=os.getpid(), pgid=os.getpgid(0), url=self.config.url, address=self.config.cluster.address,
            owns_cluster=self.owns_cluster, started=self._started, config=self.config.model_dump(mode="json"),
            **joining.record_fields(self.config.cluster.join_address),
        )
        paths.write_json_atomic(paths.supervisor_record(), record.as_json())

    def _clear_record(self) -> None:
        record = read_supervisor_record()
        if record and record.pid == os.getpid():
            paths.supervisor_record().unlink(missing_ok=True)
            paths.status_record().unlink(missing_ok=True)

    # -- events ---------------------------------------------------------------------------
    def phase(self, phase: Phase, message: str, url: str | None = None) -> None:
        self.events.emit("phase", phase=phase.value, message=message, url=url, pid=os.getpid(), pgid=os.getpgid(0))

    def error(self, message: str, hint: str) -> None:
        self.events.emit("error", message=message, hint=hint)
        self.phase(Phase.error, message)


def _import_serve_side() -> None:
    from serving.ray_private import import_serve_without_pandas

    import_serve_without_pandas()  # ~33 MB less here
    importlib.import_module("serving.replica.apps")
