"""The model deployment: one class, bound once per model slot with its own options."""

from __future__ import annotations

import asyncio
import logging

from ray import serve

from .catalog import CatalogEntry
from .config import Mode, ModelSlot

log = logging.getLogger("ray.serve")

# Up to this many queued prompts are generated as one batch: on CPU a batch of 4
# costs little more than one prompt, so throughput under load roughly doubles.
MAX_BATCH_SIZE = 4
BATCH_WAIT_S = 0.02


@serve.deployment
class ModelDeployment:
    def __init__(self, slot: dict, entry: dict, mode: str):
        # Imported here, in the replica: the supervisor builds the app without torch (~1 s, ~200 MB less).
        from .models import Runner

        self.slot = ModelSlot.model_validate(slot)
        self.entry = CatalogEntry.model_validate(entry)
        self.runner = Runner(
            self.entry, Mode(mode), self.slot.generation, num_cpus=self.slot.num_cpus,
            num_gpus=self.slot.num_gpus, trust_remote_code=self.slot.trust_remote_code,
        )
        log.info("loaded %s (%s) on %s", self.entry.name, self.entry.kind, self.runner.device)

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
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()

        def pump():
            try:
                for partial in self.runner.stream(text):
                    loop.call_soon_threadsafe(queue.put_nowait, partial)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = asyncio.create_task(asyncio.to_thread(pump))
        while (item := await queue.get()) is not done:
            yield item
        await worker
