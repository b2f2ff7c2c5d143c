"""Builds the Serve application from a LaunchConfig (the supervisor, `serve run` and `serve deploy` call
it; the deployments it defines run in Serve's replicas).

Serve's import paths stay `serving.apps:summarizer`, `serving.apps:fanout` and `serving.apps:builder`
(serving/apps.py, which forwards here).

In mode app, the user's own Gradio app is the only deployment (`app`): ServedApp
imports it inside each replica and serves it with sticky sessions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets

from ray import serve
from ray.serve import Application

from serving.core.catalog import CatalogEntry, resolve_models
from serving.core.config import APP_DEPLOYMENT, AppSpec, LaunchConfig, Mode, _Replicas, default_config
from serving.replica.app_swap import CodeSwap
from serving.replica.deployments import ModelDeployment, model_user_config
from serving.replica.gradio_server import GradioIngress as UserGradioIngress
from serving.replica.startup_gc import collector_paused
from serving.replica.sticky import session_router_config

# Gradio's queue keeps per-process state (SSE sessions), so the ingress is one replica;
# it only awaits the models, so one is plenty. Each open page/queue stream counts
# as an ongoing request, hence the high limit.
INGRESS_MAX_ONGOING = 256
GRACEFUL_SHUTDOWN_S = 20.0  # Serve's default wait for a stopping replica's requests in flight


@serve.deployment(num_replicas=1, max_ongoing_requests=INGRESS_MAX_ONGOING)
@serve.ingress()
class GradioIngress:
    """Serves the Gradio page; fans each prompt out to the model deployments."""

    def __init__(self, mode: str, auth: list[str] | None, labels: list[str], routes: list[int], *models,
                 root_path: str | None = None):
        self.mode = Mode(mode)
        self.auth = tuple(auth) if auth else None
        self.root_path = root_path
        # One list, updated in place by reconfigure(): the page reads it on every load.
        self.labels = list(labels)
        # Slot i is answered by models[routes[i]] (slots of one model share a deployment).
        self.slots = [(models[route], i) for i, route in enumerate(routes)]

    def reconfigure(self, config: dict) -> None:
        # A model swap changes only the labels; the page and this replica stay up.
        self.labels[:] = config["labels"]

    async def ask(self, text: str) -> list[object]:
        # All model calls are in flight together; each result (or its exception) in slot order.
        return await asyncio.gather(*(m.generate.remote(text, i) for m, i in self.slots), return_exceptions=True)

    async def ask_stream(self, text: str):
        """Yield every model's state (partial dict, final dict, or exception) as tokens arrive."""
        states: list[object] = [{"text": "", "done": False} for _ in self.slots]
        updates: asyncio.Queue = asyncio.Queue()

        async def follow(i, model):
            try:
                async for item in model.options(stream=True).stream.remote(text, i):
                    await updates.put((i, item))
            except Exception as exc:  # noqa: BLE001 - shown in that model's box
                await updates.put((i, exc))
            finally:
                await updates.put((i, None))

        tasks = [asyncio.create_task(follow(i, m)) for m, i in self.slots]
        try:
            remaining = len(tasks)
            while remaining:
                i, item = await updates.get()
                if item is None:
                    remaining -= 1
                    continue
                states[i] = item
                yield list(states)
        finally:
            for task in tasks:
                task.cancel()  # the page went away: stop following

    def __serve_build_asgi_app__(self):
        # Built here, inside the replica: Gradio 6 needs mount_gradio_app's set-up
        # (Ray's GradioServer skips it), and a pre-built app does not pickle.
        with collector_paused():  # importing Gradio: ~0.4 s less (serving/replica/startup_gc.py)
            import gradio as gr
            from fastapi import FastAPI

            from serving.replica.ui import build_blocks

            blocks = build_blocks(self.mode, self.labels, self.ask, self.ask_stream)
            blocks.queue(default_concurrency_limit=INGRESS_MAX_ONGOING)
            return gr.mount_gradio_app(FastAPI(), blocks, path="/", auth=self.auth, show_error=True,
                                       root_path=self.root_path)


class ServedApp(CodeSwap, UserGradioIngress):
    """`gradio-serve up --app`: the user's Gradio app, imported in this replica, served unchanged (and
    swapped for its new code on a reload: serving/replica/app_swap.py)."""

    def __init__(self, target: str, app_dir: str | None, auth: list[str] | None, root_path: str | None = None):
        self._target, self._app_dir, self._auth, self._root_path = target, app_dir, auth, root_path
        super().__init__(self._build)

    def _build(self):
        from serving.replica.app_target import load_app
        from serving.replica.launch_settings import apply

        app = load_app(self._target, self._app_dir, login_given=bool(self._auth))
        # Every launch()/queue() setting of the app is kept (serving/replica/launch_settings.py); our flags win.
        overrides = {"auth": tuple(self._auth) if self._auth else None, "root_path": self._root_path}
        self._gradio_mount_kwargs = apply(app.blocks, app.settings, overrides)
        return app.blocks

    def _app_folder(self):
        from serving.core.target import app_folder, parse_target

        return app_folder(parse_target(self._target), self._app_dir)


def deployment_name(index: int) -> str:
    """model0, model1, ...: stable across model changes, so a new model reuses the slot's replicas."""
    return f"model{index}"


# Serve restarts a deployment's replicas when its version changes, and only calls
# reconfigure() when just its user_config does. Left to itself, Serve picks a random
# version on every serve.run, so each redeploy would restart everything. One version
# per process that builds the app (the supervisor), plus what the constructor holds.
_BUILDER_RUN = secrets.token_hex(8)


def _pinned(deployment, *constructor_identity):
    from serving.ray_private import with_version  # `version` is private since Ray 2.x

    digest = hashlib.sha256(json.dumps([_BUILDER_RUN, *constructor_identity]).encode()).hexdigest()[:16]
    return with_version(deployment, digest)


def slot_labels(config: LaunchConfig, entries: list[CatalogEntry]) -> list[str]:
    return [f"{s.label} · {e.name}" if s.label else e.name for s, e in zip(config.models, entries, strict=True)]


def _scaling(slot: _Replicas) -> dict:
    if slot.autoscaling:
        a = slot.autoscaling
        return {"autoscaling_config": {
            "min_replicas": a.min_replicas, "max_replicas": a.max_replicas,
            "initial_replicas": max(a.min_replicas, 1),
            "target_ongoing_requests": a.target_ongoing_requests,
            "upscale_delay_s": 2, "downscale_delay_s": 20,
        }}
    return {"num_replicas": slot.replicas}


def user_app_options(spec: AppSpec) -> dict:
    """The deployment options of the user's app (also what `export` writes)."""
    return {
        "name": APP_DEPLOYMENT, "max_ongoing_requests": spec.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus},
        # A replica that scaling removes may be held that long for its sessions (serving/front/draining.py);
        # one replica alone is never scaled down (and a rollout waits less for open streams).
        "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S + (spec.session_drain_s if spec.max_replicas > 1 else 0),
        **_scaling(spec),
    }


def build_user_app(config: LaunchConfig, code: dict | None = None) -> Application:
    """`code`: the reloaded code's stamp (and files) as user_config (serving/replica/app_swap.py)."""
    spec, http = config.app, config.http
    auth = [http.username, http.password] if http.username else None
    target, app_dir = spec.target, spec.app_dir
    if config.cluster.address:
        # On a cluster the replicas run in a copy of the app's folder (the driver's working_dir).
        from serving.replica.app_target import portable_target

        target, app_dir = portable_target(spec.target, spec.app_dir)[0], None
    # A reload swaps the code in every replica at once (Serve's default updates a fifth at a time).
    rollout = {"rolling_update_percentage": 1.0} if spec.reload else {}
    deployment = serve.deployment(ServedApp, **rollout).options(
        request_router_config=session_router_config(), **user_app_options(spec),
        **({"user_config": code} if spec.reload else {}))
    # A new target (or login) starts fresh replicas; replicas and resources alone do not.
    return _pinned(deployment, *user_app_identity(config)).bind(target, app_dir, auth, http.root_path)


def user_app_identity(config: LaunchConfig) -> tuple:
    """What your app's replicas are made of: a change starts new ones (a rollout), anything else
    (replicas, resources) changes the running ones."""
    spec, http = config.app, config.http
    return spec.target, spec.app_dir, http.username, http.password, http.root_path


def slot_groups(config: LaunchConfig, entries: list[CatalogEntry]) -> list[list[int]]:
    """Which slots share one model deployment, by slot index; the first names it (model<first>).

    Slots of the same model with the same resources and scaling share one: its replicas hold
    the weights once and decode all those slots' prompts in one batch, each with its own
    settings (serving/replica/decoding.py). For the default fan-out that is one process instead of two,
    ~1 GB less, and its two answers come out of one batch of 2. Encoder-decoders, beam search
    and GPUs keep a deployment per slot: they decode with generate(), one settings per batch."""
    groups: dict[tuple, list[int]] = {}
    for i, (slot, entry) in enumerate(zip(config.models, entries, strict=True)):
        shareable = slot.num_gpus == 0 and entry.kind != "seq2seq" and (slot.generation.num_beams or 1) == 1
        key = (entry.model_dump_json(), slot.dtype, slot.trust_remote_code, slot.replicas,
               slot.autoscaling.model_dump_json() if slot.autoscaling else None) if shareable else ("own", i)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def group_options(config: LaunchConfig, group: list[int]) -> dict:
    """A shared deployment's options: the sum of its slots' CPUs and requests (what they would have had apart)."""
    slots = [config.models[i] for i in group]
    return {
        "name": deployment_name(group[0]),
        "max_ongoing_requests": sum(s.max_ongoing_requests for s in slots),
        "ray_actor_options": {"num_cpus": sum(s.num_cpus for s in slots), "num_gpus": sum(s.num_gpus for s in slots)},
        **_scaling(slots[0]),
    }


def build_app(config: LaunchConfig, entries: list[CatalogEntry] | None = None, code: dict | None = None) -> Application:
    if config.app:
        return build_user_app(config, code)
    entries = entries or resolve_models(config)
    models, routes = [], [0] * len(config.models)
    for group in slot_groups(config, entries):
        slots = {i: config.models[i] for i in group}
        deployment = ModelDeployment.options(
            user_config=model_user_config(slots, entries[group[0]], config.mode), **group_options(config, group))
        for i in group:
            routes[i] = len(models)
        models.append(_pinned(deployment).bind())
    http = config.http
    auth = [http.username, http.password] if http.username else None
    labels = slot_labels(config, entries)
    ingress = GradioIngress.options(ray_actor_options={"num_cpus": config.ingress_cpus},
                                    user_config={"labels": labels})
    # The labels are left out of the version: a new one reconfigures the running ingress.
    ingress = _pinned(ingress, config.mode.value, auth, routes, http.root_path)
    return ingress.bind(config.mode.value, auth, labels, routes, *models, root_path=http.root_path)


def builder(args: dict) -> Application:
    """`serve run serving.apps:builder mode=fanout` or `config=path/to/config.json`."""
    config = args.get("config")
    if isinstance(config, dict):  # inline, as `gradio-serve export` writes it
        return build_app(LaunchConfig.from_dict(config))
    if config:
        return build_app(LaunchConfig.load(config))
    return build_app(default_config(args.get("mode", "summarize")))


def __getattr__(name: str) -> Application:
    # Ray's guide style, `serve run serving.apps:summarizer` / `serving.apps:fanout`;
    # built on first access so importing this module stays cheap.
    if name in ("summarizer", "fanout"):
        return build_app(default_config("summarize" if name == "summarizer" else "fanout"))
    raise AttributeError(name)
