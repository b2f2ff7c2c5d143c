"""What crosses between processes, as pydantic models: the supervisor's events, the records it
leaves in the state folder, and an apply request with its answer.

The JSON is the contract between `gradio-serve up --events`, the launcher (which reads the
events through QProcess, or follows the records of a supervisor it did not start), `gradio-serve
status/apply/down` and the tests. Readers parse into these models; unknown fields are kept
(`extra="allow"`), so a newer writer does not break an older reader. Light: pydantic only.

Events, one JSON object per line on the supervisor's stdout (serving/core/events.py writes them);
every one has "event" (the discriminator) and "time" (Unix seconds):
  {"event": "phase", "phase": PHASE, "message": str, "url": str|None, "pid": int, "pgid": int}
      where the start or stop has got to; `deploying` after `running` is a change being applied.
  {"event": "status", "app_status": str, "deployments": [
       {"name": str, "label": str, "model": str, "status": STATUS,
        "replicas_running": int, "replicas_target": int, "message": str}], "machines": [Machine]}
      Serve's view of the app, sent whenever it changes; `machines`: the cluster's live machines (address,
      CPUs, GPUs, memory) and which replicas run on each (serving/cluster/machines.py), head first.
  {"event": "error", "message": str, "hint": str}
      what went wrong and what to do; a `phase` error follows.
  {"event": "log", "level": "info"|"warning"|"error", "message": str}
  {"event": "download", "model": str, "done_bytes": int, "total_bytes": int, "bytes_per_s": float,
   "eta_s": float|None, "finished": bool}
      a Hub model being fetched before deploying (serving/cluster/hub_download.py), at most twice a
      second; done_bytes counts what an earlier, stopped start left too.
  {"event": "metrics", "window_s": float, "deployments": [DeploymentFigures]}
      what each deployment is doing (requests/s, p50/p95 latency, in flight, queued, errors, tokens/s and
      batch size for models, each replica's CPU and memory), from Ray's metrics, every ~2 s while it
      runs (serving/cluster/metrics_reader.py); also the record metrics.json.
  {"event": "applied", "id": str, "ok": bool, "message": str, "hint": str[, "config": LaunchConfig]}
      the answer to the apply request `id` (serving/core/apply_request.py): ok once the new
      configuration runs, with that configuration (the supervisor record holds it already), or
      why not (a change that failed to deploy is rolled back, and `hint` says so). The same
      answer, without the config, is the status record's `applied` entry, for a reader that
      does not see the events.

Commands the supervisor reads on stdin, one per line: "stop", "detach".
Stdin closing (the launcher died) means "stop" unless "detach" came first.

Records, in the state folder (serving/core/paths.py), written atomically by the supervisor:
  supervisor.json: SupervisorRecord (who runs, where, with which configuration);
  status.json: StatusRecord (the last status event, the phase, the last apply answer); while a model
      downloads before anything starts, phase `downloading` and the last `download` event (both records
      are written from the first byte, so `gradio-serve status` and `down` see that supervisor);
  apply-request.json: ApplyRequest (a change asked for; SIGUSR1 tells the supervisor).
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class Phase(str, Enum):
    validating = "validating"
    downloading = "downloading"  # the status record's only (the events say `download`): before anything starts
    starting_cluster = "starting_cluster"
    deploying = "deploying"
    running = "running"
    stopping = "stopping"
    stopped = "stopped"
    error = "error"


# Serve's own words, reused rather than re-invented: app_status is an ApplicationStatus
# (NOT_STARTED, DEPLOYING, RUNNING, UNHEALTHY, DEPLOY_FAILED, DELETING), each deployment's
# status a DeploymentStatus (UPDATING, HEALTHY, UNHEALTHY, DEPLOY_FAILED, UPSCALING, DOWNSCALING).
# Kept as plain strings in the models: a newer Serve may add words.
APP_STATUSES = ("NOT_STARTED", "DEPLOYING", "RUNNING", "UNHEALTHY", "DEPLOY_FAILED", "DELETING")
DEPLOYMENT_STATUSES = ("UPDATING", "HEALTHY", "UNHEALTHY", "DEPLOY_FAILED", "UPSCALING", "DOWNSCALING")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")

    def as_json(self) -> dict:
        """The JSON object as it travels (what Qt signals and older readers take): the fields it
        was given, so a parsed event passes on unchanged (no defaults added)."""
        return self.model_dump(mode="json", exclude_unset=True)


# -- apply ------------------------------------------------------------------------------------------


class ApplyRequest(_Wire):
    """A change asked of a running supervisor: the whole new configuration."""

    id: str = Field(description="Chosen by the asker; the answer carries it back.")
    config: dict = Field(description="The LaunchConfig to run, as JSON.")


class ApplyAnswer(_Wire):
    """The supervisor's answer to one apply request."""

    id: str
    ok: bool
    message: str = ""
    hint: str = ""


# -- events -----------------------------------------------------------------------------------------


class _Event(_Wire):
    time: float = Field(default_factory=time.time, description="When it was said (Unix seconds).")


class PhaseEvent(_Event):
    event: Literal["phase"] = "phase"
    phase: Phase
    message: str = ""
    url: str | None = None
    pid: int | None = None
    pgid: int | None = Field(None, description="The supervisor's process group: end it all to stop for sure.")


class DeploymentStatus(_Wire):
    name: str
    label: str = ""
    model: str = ""
    status: str = Field(description="Serve's DeploymentStatus (DEPLOYMENT_STATUSES).")
    replicas_running: int = 0
    replicas_target: int = 0
    message: str = ""


class ReplicaPlace(_Wire):
    deployment: str
    replica_id: str
    state: str = Field("RUNNING", description="Serve's ReplicaState (STARTING, RUNNING, STOPPING, ...).")


class Machine(_Wire):
    """One machine (Ray node) of the cluster and the replicas of this app on it."""

    address: str = Field(description="The node's IP.")
    node_id: str = ""
    head: bool = Field(False, description="The cluster's head: the machine that serves (unless --address).")
    alive: bool = True
    cpus: float = 0.0
    gpus: float = 0.0
    memory_bytes: int = Field(0, description="What Ray may use of its memory.")
    replicas: list[ReplicaPlace] = Field(default_factory=list)


class StatusEvent(_Event):
    event: Literal["status"] = "status"
    app_status: str = Field(description="Serve's ApplicationStatus (APP_STATUSES).")
    deployments: list[DeploymentStatus] = Field(default_factory=list)
    machines: list[Machine] = Field(default_factory=list, description="Empty from a supervisor that does not say.")


class ErrorEvent(_Event):
    event: Literal["error"] = "error"
    message: str
    hint: str = ""


class LogEvent(_Event):
    event: Literal["log"] = "log"
    level: Literal["info", "warning", "error"] = "info"
    message: str


class DownloadEvent(_Event):
    event: Literal["download"] = "download"
    model: str
    done_bytes: int = 0
    total_bytes: int = 0
    bytes_per_s: float = 0.0
    eta_s: float | None = Field(None, description="Seconds left at the current speed; None until it is known.")
    finished: bool = False


class AppliedEvent(_Event, ApplyAnswer):
    event: Literal["applied"] = "applied"
    config: dict | None = Field(None, description="When ok: the LaunchConfig (JSON) that runs now.")

    def answer(self) -> ApplyAnswer:
        return ApplyAnswer(id=self.id, ok=self.ok, message=self.message, hint=self.hint)


class ReplicaFigures(_Wire):
    pid: int | None = None
    cpu_percent: float = Field(0.0, description="Of one core (100 = one core busy), as top shows it.")
    memory_bytes: int = Field(0, description="Resident memory.")


class DeploymentFigures(_Wire):
    """One deployment's figures over the last `window_s` (serving/cluster/prometheus_figures.py)."""

    name: str
    label: str = ""
    requests_per_s: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    in_flight: int = 0
    queued: int = 0
    errors: int = Field(0, description="Since the replicas started.")
    errors_per_s: float = 0.0
    replicas: int = 0
    tokens_per_s: float | None = Field(None, description="Models only.")
    batch_size: float | None = Field(None, description="Models only: the batch in use, averaged over replicas.")
    processes: list[ReplicaFigures] = Field(default_factory=list, description="Each replica's process, when seen.")


class MetricsEvent(_Event):
    event: Literal["metrics"] = "metrics"
    window_s: float = 0.0
    deployments: list[DeploymentFigures] = Field(default_factory=list)


Event = Annotated[PhaseEvent | StatusEvent | ErrorEvent | LogEvent | AppliedEvent | DownloadEvent
                  | MetricsEvent,
                  Field(discriminator="event")]
_EVENT = TypeAdapter(Event)


def event_from(data: dict) -> Event:
    """The event model for a JSON object; raises pydantic's ValidationError for anything else."""
    return _EVENT.validate_python(data)


def parse_event(data: object) -> Event | None:
    """The event model, or None for anything that is not one of ours."""
    if not isinstance(data, dict) or "event" not in data:
        return None
    try:
        return event_from(data)
    except ValidationError:
        return None


# -- records ----------------------------------------------------------------------------------------


class SupervisorRecord(_Wire):
    """supervisor.json: the supervisor that runs now. Written once Ray is up (or a model's download began),
    rewritten after an applied change, removed on a clean stop (a stale one is told by its pid: serving/core/records.py)."""

    pid: int
    pgid: int | None = None
    url: str | None = None
    address: str | None = Field(None, description="The Ray cluster's address; None: a local one it started.")
    owns_cluster: bool = False
    started: float | None = Field(None, description="When the supervisor started (tells a reused pid).")
    config: dict | None = Field(None, description="The LaunchConfig it serves, as JSON.")
    join_command: str | None = Field(None, description="With join_address: what to run on a machine that joins.")
    token_file: str | None = Field(None, description="With join_address: the cluster token's file, to copy there.")


class StatusRecord(_Wire):
    """status.json: the last status event, the phase, and the answer to the last apply request."""

    phase: Phase | None = None
    url: str | None = None
    app_status: str = "NOT_STARTED"
    deployments: list[DeploymentStatus] = Field(default_factory=list)
    machines: list[Machine] = Field(default_factory=list)
    applied: ApplyAnswer | None = None
    download: DownloadEvent | None = Field(None, description="Phase downloading: how far it has got.")
