"""The model deployment: one class, bound once per model slot with its own options.

The model itself arrives as the deployment's `user_config`, so Serve calls
`reconfigure()` on the running replica when only the model or its decoding
settings change: torch stays imported and the process stays up (a warm swap).
CPUs/GPUs live in the actor options, so changing those starts fresh replicas.
"""

from __future__ import annotations

import asyncio
import logging

from ray import serve

from .catalog import CatalogEntry
from .config import Mode, ModelSlot

log = logging.getLogger("ray.serve")

# Queued prompts are generated as one batch, up to the slot's max_ongoing_requests (what a
# replica holds at once) and at most MAX_BATCH_SIZE: decoding on CPU reads every weight once
# per token for the whole batch. A batch waits up to BATCH_WAIT_S for company: clients answered
# together send their next prompts tens of ms apart, and 50 ms gathered them (16 clients,
# 2 replicas: 1.29-1.31 requests/s at 50 ms vs 1.12-1.15 at 5 ms); a lone prompt pays 50 ms
# on a ~2 s answer. Streaming (the page) is not batched and does not wait.
MAX_BATCH_SIZE = 8
BATCH_WAIT_S = 0.05


def model_user_config(slot: ModelSlot, entry: CatalogEntry, mode: Mode) -> dict:
    """What a replica needs to load and run its model (JSON, as Serve stores user_config)."""
    return {"slot": slot.model_dump(mode="json"), "entry": entry.model_dump(mode="json"), "mode": mode.value}


@serve.deployment
class ModelDeployment:
    def __init__(self):
        self.runner = None
        self._weights_key = None

    async def reconfigure(self, config: dict) -> None:
        slot = ModelSlot.model_validate(config["slot"])
        entry = CatalogEntry.model_validate(config["entry"])
        mode = Mode(config["mode"])
        self._generate_batch.set_max_batch_size(min(slot.max_ongoing_requests, MAX_BATCH_SIZE))
        weights_key = (entry.model_dump_json(), slot.trust_remote_code, slot.dtype)
        if self.runner is not None and weights_key == self._weights_key:
            self.runner.configure(mode, slot.generation)  # same weights: new decoding settings only
            return
        # In a thread, so the replica's event loop keeps answering health checks meanwhile.
        # In-flight requests finish on the old model; the swap is one assignment.
        self.runner = await asyncio.to_thread(self._load, slot, entry, mode)
        self._weights_key = weights_key

    @staticmethod
    def _load(slot: ModelSlot, entry: CatalogEntry, mode: Mode):
        # Imported here, in the replica: the supervisor builds the app without torch (~1 s, ~200 MB less).
        from .models import Runner

        runner = Runner(entry, mode, slot.generation, num_cpus=slot.num_cpus,
                        num_gpus=slot.num_gpus, trust_remote_code=slot.trust_remote_code, dtype=slot.dtype)
        log.info("loaded %s (%s) on %s", entry.name, entry.kind, runner.device)
        return runner

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _generate_batch(self, texts: list[str]) -> list[dict]:
        # In a thread, so the replica's event loop keeps answering health checks.
        answers = await asyncio.to_thread(self.runner.generate, texts)
        return [a.as_dict() for a in answers]

    async def generate(self, text: str) -> dict:
        """One prompt in; {"text", "latency_s", "truncated_to"} out."""
        return await self._generate_batch(text)

    async def stream(self, text: str):
        """Yield {"text": so far, "done": False} while generating, then the answer with "done": True."""
        runner = self.runner  # a swap mid-stream does not change the model under this answer
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()

        def pump():
            try:
                for partial in runner.stream(text):
                    loop.call_soon_threadsafe(queue.put_nowait, partial)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = asyncio.create_task(asyncio.to_thread(pump))
        while (item := await queue.get()) is not done:
            yield item
        await worker
