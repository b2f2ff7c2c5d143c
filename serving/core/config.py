"""The launch configuration: what to serve, with which resources, where.

Plain pydantic (no Ray, no torch) so the launcher can import it to validate
before any process starts. JSON on disk; unknown fields are refused.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EMBEDDED_MODEL = "smollm2-135m-instruct"
APP_NAME = "gradio-serve"
APP_DEPLOYMENT = "app"  # the deployment that serves your own app (mode app)
DEFAULT_PORT = 8000
MAX_MODEL_SLOTS = 8  # fan-out columns; more would not fit a page

# The weights' precision (ModelSlot.dtype): the window's Precision box and `--dtype` offer these.
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)


class ConfigError(ValueError):
    """A configuration the user must fix; the message names the field and the fix."""


class Mode(str, Enum):
    summarize = "summarize"
    fanout = "fanout"
    app = "app"  # the user's own Gradio app, served unchanged


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Generation(_Strict):
    """Decoding settings; None means the model kind's default (Ray's guide)."""

    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Longest answer, in tokens.")
    min_new_tokens: int | None = Field(None, ge=0, le=4096, description="Shortest answer, in tokens.")
    num_beams: int | None = Field(None, ge=1, le=16, description="Beam search width (1 = greedy or sampling).")
    do_sample: bool | None = Field(None, description="Sample instead of greedy/beam decoding.")
    temperature: float | None = Field(None, gt=0, le=5, description="Sampling temperature.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1,
                             description="Fixed sampling seed: the same prompt gets the same answer (one request at a time).")

    @model_validator(mode="after")
    def _min_below_max(self):
        if None not in (self.min_new_tokens, self.max_new_tokens) and self.min_new_tokens > self.max_new_tokens:
            raise ValueError("min_new_tokens must not exceed max_new_tokens")
        return self


class Autoscaling(_Strict):
    """Serve autoscaling for one model slot (replaces a fixed replica count)."""

    min_replicas: int = Field(1, ge=0, le=64, description="Fewest replicas kept running.")
    max_replicas: int = Field(2, ge=1, le=64, description="Most replicas started under load.")
    target_ongoing_requests: float = Field(2.0, gt=0, le=1000, description="Requests per replica Serve aims for.")

    @model_validator(mode="after")
    def _min_below_max(self):
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class _Replicas(_Strict):
    """What each replica of one deployment gets, and how many run."""

    num_cpus: float = Field(1.0, gt=0, le=1024, description="CPUs per replica (also the torch thread count).")
    num_gpus: float = Field(0.0, ge=0, le=64, description="GPUs per replica; fractions share one GPU.")
    replicas: int = Field(1, ge=1, le=64, description="Fixed replica count (ignored when autoscaling is set).")
    autoscaling: Autoscaling | None = Field(None, description="Scale replicas with load instead.")

    @property
    def max_replicas(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas


class AppSpec(_Replicas):
    """Your own Gradio app, served unchanged: where it is, and what each replica gets."""

    target: str = Field(..., min_length=1, description=(
        "path/to/demo.py, path/to/demo.py:NAME or package.module:NAME. NAME is a gr.Blocks "
        "(Interface, ChatInterface, ...) or a function without arguments that returns one; "
        "without NAME, the file's one top-level Blocks is served."))
    app_dir: str | None = Field(None, description=(
        "Folder the app runs in and imports from (default: the file's folder, or for a module, "
        "the folder `gradio-serve` was started in)."))
    max_ongoing_requests: int = Field(1000, ge=8, le=100_000, description=(
        "Requests one replica holds at once; each open page keeps a few streams open."))
    session_drain_s: float = Field(60.0, ge=0, le=3600, description=(
        "When scaling removes a replica, it keeps serving its sessions (their state lives in its "
        "memory) while they are in use, for at most this long; new sessions go to the others. "
        "0: it stops at once."))
    reload: bool = Field(False, description=(
        "Reload on save: a saved .py file in the app's folder is checked, then swapped into every "
        "replica; a broken one is reported and the running version goes on."))


class ModelSlot(_Replicas):
    """One model deployment: which model, its resources and decoding settings."""

    model: str = Field(EMBEDDED_MODEL, min_length=1, description="Catalog name, Hugging Face hub id, or local folder.")
    label: str | None = Field(None, max_length=80, description="Name shown above this model's answer.")
    max_ongoing_requests: int = Field(8, ge=1, le=1000, description="Requests one replica takes at once; more queue.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the model (only for models you trust).")
    dtype: Dtype = Field(
        "auto", description="Precision of the weights. auto: bfloat16 on a CPU with native support (AVX-512 "
        "BF16 or AMX: half the memory, ~1.5x sooner answers, slightly different numerics), else float32; "
        "bfloat16 (else float16) on a GPU.")
    generation: Generation = Field(default_factory=Generation)


JOIN_PORT = 6379  # Ray's own default head port


class ClusterConfig(_Strict):
    """Where Ray runs: a local cluster this app starts, or an existing one."""

    address: str | None = Field(None, description="Existing cluster: 'auto', 'host:port' or 'ray://host:port'.")
    num_cpus: int | None = Field(None, ge=1, le=4096, description="CPUs of the local cluster (default: all).")
    num_gpus: int | None = Field(None, ge=0, le=64, description="GPUs of the local cluster (default: detected).")
    include_dashboard: bool = Field(False, description="Start Ray's dashboard (127.0.0.1 only); costs ~1 GB.")
    join_address: str | None = Field(None, description=(
        "Let other machines join this one's cluster (`gradio-serve join`): the LAN address, IP or IP:PORT "
        f"(port {JOIN_PORT} by default), its Ray head listens on, with Ray's token authentication."))

    @field_validator("join_address")
    @classmethod
    def _a_lan_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, port = split_join_address(value)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address (or IP:PORT) of this machine") from None
        if ip.is_loopback or ip.is_unspecified:
            raise ValueError(f"{value!r}: other machines cannot reach it; give this machine's LAN address")
        if not 1 <= port <= 65535:
            raise ValueError(f"{value!r}: the port must be 1-65535")
        return f"[{host}]:{port}" if ip.version == 6 else f"{host}:{port}"

    @model_validator(mode="after")
    def _join_own_cluster_only(self):
        if self.join_address and self.address:
            raise ValueError("join_address opens a cluster this app starts; with address (a cluster someone "
                             "else runs) let machines join that cluster instead")
        return self


def split_join_address(value: str) -> tuple[str, int]:
    """("IP", port) of `IP`, `IP:PORT` or `[IPv6]:PORT`."""
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        return host.rstrip("]"), int(port) if port.isdigit() else JOIN_PORT
    host, colon, port = value.rpartition(":")
    if not colon or ":" in host:  # no port (IPv6 without brackets is all host)
        return value, JOIN_PORT
    return host, int(port) if port.isdigit() else -1


class HttpConfig(_Strict):
    """Where the app listens. Loopback unless the user asks, and then with a password."""

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="HTTP port of the app.")
    username: str | None = Field(None, min_length=1, description="Gradio login (required off loopback).")
    password: str | None = Field(None, min_length=1, description="Gradio password (required off loopback).")
    root_path: str | None = Field(None, description=(
        "Gradio's root_path: where a reverse proxy serves the app, e.g. /gradio or https://example.com/gradio."))

    @field_validator("root_path")
    @classmethod
    def _root_path_shape(cls, value: str | None) -> str | None:
        if value and not value.startswith(("/", "http://", "https://")):
            raise ValueError("root_path must start with / (e.g. /gradio) or be a full http(s):// URL")
        return value.rstrip("/") or None if value else value

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @model_validator(mode="after")
    def _auth_off_loopback(self):
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if not self.is_loopback and self.username is None:
            raise ValueError(
                f"listening on {self.host} exposes the app to the network; "
                "set a username and password (--username/--password) or use 127.0.0.1"
            )
        return self


class LaunchConfig(_Strict):
    """Everything `gradio-serve up` and the launcher need to start the app."""

    mode: Mode = Field(Mode.summarize, description=(
        "summarize: one model; fanout: one prompt to several; app: your own Gradio app (see `app`)."))
    models: list[ModelSlot] = Field(default_factory=lambda: [ModelSlot()], description="Model slots, in output order.")
    app: AppSpec | None = Field(None, description="Your own Gradio app (mode app).")
    ingress_cpus: float = Field(0.0, ge=0, le=64, description="CPUs reserved for the Gradio ingress replica (it mostly waits on the models).")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)

    @model_validator(mode="before")
    @classmethod
    def _no_default_models_for_app(cls, data):
        # Your own app has no model slots; the built-in modes default to the embedded model.
        if isinstance(data, dict) and data.get("mode") in (Mode.app, "app") and "models" not in data:
            data = {**data, "models": []}
        return data

    @model_validator(mode="after")
    def _slots_fit_mode(self):
        n = len(self.models)
        if self.mode is Mode.app:
            if self.app is None:
                raise ValueError("mode app serves your own Gradio app: give its file, e.g. --app demo.py "
                                 '(in a config file: "app": {"target": "demo.py"})')
            if n:
                raise ValueError("mode app serves your own Gradio app and takes no models; "
                                 "drop `models`, or use --mode summarize/fanout")
            return self
        if self.app is not None:
            raise ValueError(f"`app` is only used with mode app (this config has mode {self.mode.value}); "
                             "set mode to app, or drop `app`")
        if self.mode is Mode.summarize and n != 1:
            raise ValueError(f"summarize mode takes exactly one model, got {n}; use --mode fanout for several")
        if self.mode is Mode.fanout and n < 2:
            raise ValueError(f"fanout mode needs at least two models, got {n}; add another --model")
        if n > MAX_MODEL_SLOTS:
            raise ValueError(f"at most {MAX_MODEL_SLOTS} model slots, got {n}")
        return self

    @property
    def url(self) -> str:
        """Where a browser on this machine reaches the app (on a remote cluster: its head)."""
        host = "127.0.0.1" if self.http.host in ("0.0.0.0", "::") else self.http.host
        address = self.cluster.address
        if address and address != "auto":
            head = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
            if head not in ("127.0.0.1", "localhost", "::1", ""):
                host = head  # Serve's proxy runs on the head node
        return f"http://{host}:{self.http.port}/"

    @property
    def deployments(self) -> list[_Replicas]:
        """What runs replicas: your app, or each model slot."""
        return [self.app] if self.app else list(self.models)

    def requested_cpus(self) -> float:
        """CPUs needed when every deployment runs its most replicas (what must fit)."""
        ingress = 0 if self.app else self.ingress_cpus
        return ingress + sum(d.num_cpus * d.max_replicas for d in self.deployments)

    def requested_gpus(self) -> float:
        return sum(d.num_gpus * d.max_replicas for d in self.deployments)

    @classmethod
    def from_dict(cls, data: dict) -> LaunchConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc)) from None

    @classmethod
    def load(cls, path: str | Path) -> LaunchConfig:
        return cls.from_dict(read_config_file(path)[0])

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_defaults=True)


def read_config_file(path: str | Path) -> tuple[dict, Path]:
    """A launch configuration from JSON or YAML, also inside a Serve config file as `gradio-serve
    export` writes it; and the folder a relative app target is relative to."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML ({where}{getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object (JSON) or a mapping (YAML)")
    base = path.resolve().parent
    if "applications" in data:  # a Serve config written by `gradio-serve export`
        ours = [a for a in data["applications"] or [] if isinstance(a, dict) and a.get("import_path") == "serving.apps:builder"]
        if not ours or not isinstance((ours[0].get("args") or {}).get("config"), dict):
            raise ConfigError(f"config file {path} is a Serve config without a gradio-serve application "
                              "(import_path serving.apps:builder with args.config)")
        working_dir = (ours[0].get("runtime_env") or {}).get("working_dir")
        working_dir = working_dir.removeprefix("local://") if isinstance(working_dir, str) else None
        if working_dir and "://" not in working_dir:  # a folder on this machine (else a remote URI)
            base = (base / working_dir).resolve()
        data = ours[0]["args"]["config"]
    return data, base


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, naming the field path (e.g. models.0.num_cpus)."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check the spelling (see `gradio-serve up --help`)"
        lines.append(f"{where}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def default_config(mode: Mode | str = Mode.summarize) -> LaunchConfig:
    """The out-of-the-box app: the embedded model; in fan-out, twice with two decoding styles."""
    mode = Mode(mode)
    if mode is Mode.app:
        raise ConfigError("mode app serves your own Gradio app and has no default: give it with --app demo.py")
    if mode is Mode.summarize:
        return LaunchConfig(mode=mode)
    return LaunchConfig(
        mode=mode,
        models=[
            ModelSlot(label="precise"),
            ModelSlot(label="creative", generation=Generation(do_sample=True, temperature=0.9, top_p=0.95)),
        ],
    )


# -- bounds, read from the fields above: the one source for the window's boxes and the CLI ----------


@dataclass(frozen=True)
class Bounds:
    """A numeric field's limits as its Field declares them (ge/gt/le/lt); None: unbounded."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # gt rather than ge: the minimum itself is refused
    exclusive_maximum: bool = False

    def allows(self, value: float) -> bool:
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum):
            return False
        return self.maximum is None or (value < self.maximum if self.exclusive_maximum else value <= self.maximum)


def bounds(model: type[BaseModel], field: str) -> Bounds:
    """The bounds of `model.field`, e.g. bounds(ModelSlot, "num_cpus") == Bounds(0, 1024, True, False)."""
    found: dict = {}
    # Field(ge=..., gt=..., le=..., lt=...) keeps each as one metadata object with that attribute
    # (annotated_types.Ge and the like).
    for rule in model.model_fields[field].metadata:
        if getattr(rule, "ge", None) is not None:
            found.update(minimum=rule.ge)
        elif getattr(rule, "gt", None) is not None:
            found.update(minimum=rule.gt, exclusive_minimum=True)
        elif getattr(rule, "le", None) is not None:
            found.update(maximum=rule.le)
        elif getattr(rule, "lt", None) is not None:
            found.update(maximum=rule.lt, exclusive_maximum=True)
    return Bounds(**found)


# What the launcher's boxes need most often (per replica, for a model slot and your app alike).
MAX_CPUS_PER_REPLICA = bounds(ModelSlot, "num_cpus").maximum
MAX_GPUS_PER_REPLICA = bounds(ModelSlot, "num_gpus").maximum
MAX_REPLICAS = bounds(ModelSlot, "replicas").maximum

