"""Builds the Serve application from a LaunchConfig.

Module-level targets work as in Ray's guide:
    serve run serving.apps:summarizer
    serve run serving.apps:fanout
    serve run serving.apps:builder mode=fanout   (args: mode, config=FILE)
"""

from __future__ import annotations

import asyncio
import re

from ray import serve
from ray.serve import Application

from .catalog import CatalogEntry, check_task, resolve
from .config import LaunchConfig, ModelSlot, default_config
from .deployments import ModelDeployment

# Gradio's queue keeps per-process state (SSE sessions), so the ingress is one replica;
# it only awaits the models, so one is plenty. Each open page/queue stream counts
# as an ongoing request, hence the high limit.
INGRESS_MAX_ONGOING = 256


@serve.deployment(num_replicas=1, max_ongoing_requests=INGRESS_MAX_ONGOING)
@serve.ingress()
class GradioIngress:
    """Serves the Gradio page; fans each prompt out to the model deployments."""

    def __init__(self, config: dict, labels: list[str], *models):
        self.config = LaunchConfig.model_validate(config)
        self.labels = labels
        self.models = models

    async def ask(self, text: str) -> list[object]:
        # All model calls are in flight together; each result (or its exception) in slot order.
        return await asyncio.gather(*(m.generate.remote(text) for m in self.models), return_exceptions=True)

    async def ask_stream(self, text: str):
        """Yield every model's state (partial dict, final dict, or exception) as tokens arrive."""
        states: list[object] = [{"text": "", "done": False} for _ in self.models]
        updates: asyncio.Queue = asyncio.Queue()

        async def follow(i, model):
            try:
                async for item in model.options(stream=True).stream.remote(text):
                    await updates.put((i, item))
            except Exception as exc:  # noqa: BLE001 - shown in that model's box
                await updates.put((i, exc))
            finally:
                await updates.put((i, None))

        tasks = [asyncio.create_task(follow(i, m)) for i, m in enumerate(self.models)]
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
        import gradio as gr
        from fastapi import FastAPI

        from .ui import build_blocks

        blocks = build_blocks(self.config.mode, self.labels, self.ask, self.ask_stream)
        blocks.queue(default_concurrency_limit=INGRESS_MAX_ONGOING)
        http = self.config.http
        auth = (http.username, http.password) if http.username else None
        return gr.mount_gradio_app(FastAPI(), blocks, path="/", auth=auth, show_error=True)


def deployment_name(index: int, entry: CatalogEntry) -> str:
    """Stable, readable Serve names: model0_smollm2-135m-instruct."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", entry.name).strip("-")[:48]
    return f"model{index}_{safe}"


def slot_labels(config: LaunchConfig, entries: list[CatalogEntry]) -> list[str]:
    return [f"{s.label} · {e.name}" if s.label else e.name for s, e in zip(config.models, entries)]


def resolve_models(config: LaunchConfig) -> list[CatalogEntry]:
    """Every slot's model, checked against the mode; ConfigError names the slot."""
    entries = []
    for i, slot in enumerate(config.models):
        entry = resolve(slot.model, slot.trust_remote_code)
        check_task(entry, config.mode, f"models.{i}.model")
        entries.append(entry)
    return entries


def _scaling(slot: ModelSlot) -> dict:
    if slot.autoscaling:
        a = slot.autoscaling
        return {"autoscaling_config": {
            "min_replicas": a.min_replicas, "max_replicas": a.max_replicas,
            "initial_replicas": max(a.min_replicas, 1),
            "target_ongoing_requests": a.target_ongoing_requests,
            "upscale_delay_s": 2, "downscale_delay_s": 20,
        }}
    return {"num_replicas": slot.replicas}


def build_app(config: LaunchConfig, entries: list[CatalogEntry] | None = None) -> Application:
    entries = entries or resolve_models(config)
    models = []
    for i, (slot, entry) in enumerate(zip(config.models, entries)):
        actor = {"num_cpus": slot.num_cpus, "num_gpus": slot.num_gpus}
        models.append(
            ModelDeployment.options(
                name=deployment_name(i, entry), ray_actor_options=actor,
                max_ongoing_requests=slot.max_ongoing_requests, **_scaling(slot),
            ).bind(slot.model_dump(mode="json"), entry.model_dump(mode="json"), config.mode.value)
        )
    ingress = GradioIngress.options(ray_actor_options={"num_cpus": config.ingress_cpus})
    return ingress.bind(config.model_dump(mode="json"), slot_labels(config, entries), *models)


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
