"""Changing the running app in place, and going back when a change fails to deploy: the supervisor's
answer to `gradio-serve apply` (and the launcher's Apply), read from serving/core/apply_request.py's
request. Serve reconfigures the replicas whose model alone changed; a new model, label, decoding,
replica count or CPU count needs no restart. A Hub model that is not whole in the cache is downloaded
first, with its progress, as at a start, while the running app goes on. A mixin of serving/cluster/supervisor.py's Supervisor: it
works on the supervisor's state (config, the change in flight, the events and records)."""

from __future__ import annotations

import threading
import time

from serving.cluster.cluster_checks import check_cluster_resources
from serving.cluster.hub_download import fetch_missing, needs_download
from serving.core import paths
from serving.core.config import ConfigError, LaunchConfig
from serving.core.events import Phase
from serving.core.preflight import StartError
from serving.core.protocol import ApplyAnswer, DownloadEvent, StatusRecord


class ChangesInPlace:
    """Needs of the supervisor: config, events, phase(), _announced, _apply, _applied, _snapshot, apply_pending,
    _wake, stop_requested, _start_deploy(), _write_record(), _write_status()."""

    _fetched: tuple | None = None  # a change whose models were downloaded: deployed by the watch loop

    def _take_apply_request(self) -> None:
        from serving.core import apply_request

        if self._fetched is not None:
            (config, entries), self._fetched = self._fetched, None
            self._deploy_change(config, entries)
        request = apply_request.take_request()
        if request:
            self.apply(request.config, request.id)

    def apply(self, wanted: dict, request_id: str) -> None:
        """Redeploy on the running cluster: Serve reconfigures replicas whose model alone changed."""
        from serving.core import apply_request
        from serving.core.catalog import resolve_models

        def refuse(message: str, hint: str) -> None:
            self._finish_apply(request_id, ok=False, message=message, hint=hint)

        if not self._announced or self._apply:
            return refuse("the app is still starting or changing", "wait until it is running, then apply again")
        try:
            config = LaunchConfig.from_dict(wanted)
            restart = apply_request.restart_needed(self.config.model_dump(mode="json"), config.model_dump(mode="json"))
            if restart:
                return refuse(f"changing {' and '.join(restart)} settings needs a restart",
                              "stop the app and start it again with the new settings")
            import ray

            check_cluster_resources(config, ray.cluster_resources())
            entries = resolve_models(config)
        except (ConfigError, StartError) as exc:
            return refuse(str(exc), getattr(exc, "hint", "") or "fix the configuration and apply again")
        self._apply = {"id": request_id, "previous": self.config}
        if any(needs_download(e) for e in entries):
            # A Hub model not whole here is fetched first, with its progress, while the running app goes on.
            threading.Thread(target=self._fetch_then_deploy, args=(config, entries, request_id), daemon=True,
                             name="apply-download").start()
            return None
        return self._deploy_change(config, entries)

    def _deploy_change(self, config: LaunchConfig, entries: list) -> None:
        self.config = config
        self.phase(Phase.deploying, "applying " + self._models_text())
        self._start_deploy(entries)

    def _fetch_then_deploy(self, config: LaunchConfig, entries: list, request_id: str) -> None:
        """On a thread of its own; the deploy itself is started by the watch loop (_take_apply_request)."""
        try:
            entries = fetch_missing(entries, config.models, self.events, self.stop_requested, told=self._download_said)
        except (ConfigError, StartError) as exc:
            return self._finish_apply(request_id, ok=False, message=str(exc),
                                      hint=getattr(exc, "hint", "") or "the running app goes on unchanged")
        except Exception as exc:  # noqa: BLE001 - the running app goes on; the change is refused with why
            return self._finish_apply(request_id, ok=False, message=f"downloading failed: {type(exc).__name__}: {exc}",
                                      hint="the running app goes on unchanged; apply again to continue the download")
        finally:
            self._write_status(self._snapshot)  # without the download
        if not self.stop_requested.is_set():
            self._fetched = (config, entries)
            self.apply_pending.set()
            self._wake.set()

    def _download_said(self, fields: dict) -> None:
        """The status record, as the running app's, with the change's download (`gradio-serve status` shows it)."""
        if fields.get("finished"):
            return
        record = StatusRecord(**self._snapshot, url=self.config.url, phase=Phase.running, applied=self._applied,
                              download=DownloadEvent(time=time.time(), **fields))
        paths.write_json_atomic(paths.status_record(), record.as_json())

    def _finish_apply(self, request_id: str, ok: bool, message: str, hint: str = "") -> None:
        """Answer an apply request: an `applied` event and the status record's `applied` entry."""
        if ok:
            # First, so whoever hears the answer finds the new config in the record already.
            self._write_record()
        self._applied = ApplyAnswer(id=request_id, ok=ok, message=message, hint=hint)
        # With the new config, so the launcher takes it from the answer (no waiting for the record).
        running = {"config": self.config.model_dump(mode="json")} if ok else {}
        self.events.emit("applied", **self._applied.as_json(), **running)
        self._write_status(self._snapshot)
        if self._apply and self._apply["id"] == request_id:
            self._apply = None

    def _models_text(self) -> str:
        if self.config.app:
            return self.config.app.target
        return ", ".join(slot.model for slot in self.config.models)

    def _failed(self, message: str, hint: str) -> None:
        """A deploy failed: after a change, go back to what ran before; at start, give up."""
        if not self._apply:
            raise StartError(message, hint)
        previous = self._apply["previous"]
        self._finish_apply(self._apply["id"], ok=False, message=message,
                           hint="the previous models are being restored; " + (hint or f"see {paths.supervisor_log()}"))
        self.config = previous  # should restoring fail too, _failed gives up
        self.phase(Phase.deploying, "restoring " + self._models_text())
        self._start_deploy(None)
