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

from .batcher import Batcher
from .catalog import CatalogEntry
from .config import Mode, ModelSlot

log = logging.getLogger("ray.serve")

# Decoder-only models decode all of a replica's prompts in one continuous batch (serving/decoding.py):
# a prompt joins at the next step, streamed or not. For the others (encoder-decoders, beam search),
# prompts that wait while the model is busy run as one generate() batch (serving/batcher.py).
# Either way at most the slot's max_ongoing_requests (what a replica holds at once) and at most
# MAX_BATCH_SIZE: decoding on CPU reads every weight once per token for the whole batch. An idle
# model waits up to BATCH_WAIT_S for company before a generate() batch; a lone prompt pays 50 ms.
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
        self._batcher = Batcher(self._generate_batch, MAX_BATCH_SIZE, BATCH_WAIT_S)

    async def reconfigure(self, config: dict) -> None:
        slot = ModelSlot.model_validate(config["slot"])
        entry = CatalogEntry.model_validate(config["entry"])
        mode = Mode(config["mode"])
        self._batcher.max_size = min(slot.max_ongoing_requests, MAX_BATCH_SIZE)
        weights_key = (entry.model_dump_json(), slot.trust_remote_code, slot.dtype)
        if self.runner is not None and weights_key == self._weights_key:
            self.runner.configure(mode, slot.generation)  # same weights: new decoding settings only
            if self.runner.loop is not None:
                self.runner.loop.max_batch = self._batcher.max_size
            return
        # In a thread, so the replica's event loop keeps answering health checks meanwhile.
        # In-flight requests finish on the old model; the swap is one assignment.
        self.runner = await asyncio.to_thread(self._load, slot, entry, mode)
        self._weights_key = weights_key

    @staticmethod
    def _load(slot: ModelSlot, entry: CatalogEntry, mode: Mode):
        # Imported here, in the replica: the supervisor builds the app without torch (~1 s, ~200 MB less).
        from .models import Runner

        runner = Runner(entry, mode, slot.generation, num_cpus=slot.num_cpus, num_gpus=slot.num_gpus,
                        trust_remote_code=slot.trust_remote_code, dtype=slot.dtype,
                        max_batch=min(slot.max_ongoing_requests, MAX_BATCH_SIZE))
        log.info("loaded %s (%s) on %s", entry.name, entry.kind, runner.device)
        return runner

    def _generate_batch(self, texts: list[str]) -> list[dict]:
        runner = self.runner  # a swap mid-batch does not change the model under this batch
        answers = runner.generate(texts)
        log.info("generated a batch of %d in %.2f s", len(texts), answers[0].latency_s)
        return [a.as_dict() for a in answers]

    async def generate(self, text: str) -> dict:
        """One prompt in; {"text", "latency_s", "truncated_to"} out."""
        runner = self.runner
        if runner.continuous:  # joins the running batch at the next step (serving/decoding.py)
            return (await asyncio.wrap_future(runner.submit(text))).as_dict()
        return await self._batcher.submit(text)

    async def stream(self, text: str):
        """Yield {"text": so far, "done": False} while generating, then the answer with "done": True."""
        runner = self.runner  # a swap mid-stream does not change the model under this answer
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()
        if runner.continuous:
            # No thread per stream: the decode loop calls back with the text so far after each step.
            answer = runner.submit(text, lambda so_far: loop.call_soon_threadsafe(queue.put_nowait, so_far))
            answer.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, done))
            shown = ""
            try:
                while (so_far := await queue.get()) is not done:
                    if so_far and so_far != shown:
                        shown = so_far
                        yield {"text": so_far, "done": False}
                yield {**(await asyncio.wrap_future(answer)).as_dict(), "done": True}
            finally:
                answer.cancel()  # the page went away: its row leaves the batch at the next step
            return

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
