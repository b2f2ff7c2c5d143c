"""Changing the running app in place, and going back when a change fails to deploy: the supervisor's
answer to `gradio-serve apply` (and the launcher's Apply), read from serving/core/apply_request.py's
request. Serve reconfigures the replicas whose model alone changed; a new model, label, decoding,
replica count or CPU count needs no restart. A mixin of serving/cluster/supervisor.py's Supervisor: it
works on the supervisor's state (config, the change in flight, the events and records)."""

from __future__ import annotations

from serving.cluster.cluster_checks import check_cluster_resources
from serving.core import paths
from serving.core.config import ConfigError, LaunchConfig
from serving.core.events import Phase
from serving.core.preflight import StartError
from serving.core.protocol import ApplyAnswer


class ChangesInPlace:
    """Needs of the supervisor: config, events, phase(), _announced, _apply, _applied, _snapshot,
    _start_deploy(), _write_record(), _write_status()."""

    def _take_apply_request(self) -> None:
        from serving.core import apply_request

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
        self.config = config
        self.phase(Phase.deploying, "applying " + self._models_text())
        self._start_deploy(entries)

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
