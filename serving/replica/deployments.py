"""The model deployment: one class, bound once per model with its own options.

Slots that use the same model with the same resources share one deployment (serving/replica/apps.py
groups them): its replicas hold the weights once and decode every slot's prompts in one batch,
each prompt with its slot's decoding settings. The model and the slots arrive as the
deployment's `user_config`, so Serve calls
`reconfigure()` on the running replica when only the model or its decoding
settings change: torch stays imported and the process stays up (a warm swap).
CPUs/GPUs live in the actor options, so changing those starts fresh replicas.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from ray import serve

from serving.core.catalog import CatalogEntry
from serving.core.config import Generation, Mode, ModelSlot
from serving.replica.batcher import Batcher
from serving.replica.serve_figures import ModelFigures
from serving.replica.startup_gc import collector_paused, thaw_and_collect

log = logging.getLogger("ray.serve")

# Decoder-only models decode all of a replica's prompts in one continuous batch (serving/replica/decoding.py):
# a prompt joins at the next step, streamed or not. For the others (encoder-decoders, beam search),
# prompts that wait while the model is busy run as one generate() batch (serving/replica/batcher.py).
# Either way at most the slot's max_ongoing_requests (what a replica holds at once) and at most
# MAX_BATCH_SIZE: decoding on CPU reads every weight once per token for the whole batch. An idle
# model waits up to BATCH_WAIT_S for company before a generate() batch; a lone prompt pays 50 ms.
MAX_BATCH_SIZE = 8
BATCH_WAIT_S = 0.05
# After a model swap, the full collection that frees the old model waits this long (serving/replica/startup_gc.py).
THAW_AFTER_S = 5.0


def model_user_config(slots: dict[int, ModelSlot], entry: CatalogEntry, mode: Mode) -> dict:
    """What a replica needs to load and run its model for its slots (JSON, as Serve stores user_config)."""
    return {"slots": {str(i): slot.model_dump(mode="json") for i, slot in slots.items()},
            "entry": entry.model_dump(mode="json"), "mode": mode.value}


@serve.deployment
class ModelDeployment:
    def __init__(self):
        self.runner = None
        self._weights_key = None
        self._settings: dict[int, Generation] = {}  # each slot's decoding settings
        self._batchers: dict[int | None, Batcher] = {}  # per slot, for models that use generate()
        self._max_batch = MAX_BATCH_SIZE
        self._figures = ModelFigures()  # tokens/s and the batch in use, for the status

    async def reconfigure(self, config: dict) -> None:
        slots = {int(i): ModelSlot.model_validate(s) for i, s in config["slots"].items()}
        entry = CatalogEntry.model_validate(config["entry"])
        mode = Mode(config["mode"])
        first = slots[min(slots)]
        self._max_batch = min(sum(s.max_ongoing_requests for s in slots.values()), MAX_BATCH_SIZE)
        for batcher in self._batchers.values():
            batcher.max_size = self._max_batch
        weights_key = (entry.model_dump_json(), first.trust_remote_code, first.dtype)
        if self.runner is not None and weights_key == self._weights_key:
            self.runner.configure(mode, first.generation)  # same weights: new decoding settings only
            if self.runner.loop is not None:
                self.runner.loop.max_batch = self._max_batch
        else:
            # In a thread, so the replica's event loop keeps answering health checks meanwhile.
            # In-flight requests finish on the old model; the swap is one assignment.
            # Torch threads: one slot's CPUs, not the sum the replica holds. Its slots run in parallel
            # as rows of one batch; more threads per matmul only cost here (2 slots of 1 CPU: a batch of 2
            # took 41-52 ms a step on 2 threads, ~32 ms on 1, the threads waiting on each other while
            # Serve's other processes took a core).
            threads = max(s.num_cpus for s in slots.values())
            old = self.runner
            self.runner = await asyncio.to_thread(self._load, first, entry, mode, threads, self._max_batch,
                                                  old is None)
            if old is not None:
                # The old weights go once their last answers are out (serving/replica/startup_gc.py).
                asyncio.get_running_loop().run_in_executor(None, thaw_and_collect, old.close(), THAW_AFTER_S)
            self._weights_key = weights_key
            if self.runner.loop is not None:
                self.runner.loop.on_step = self._figures.step
        self._settings = {i: s.generation for i, s in slots.items()}

    @staticmethod
    def _load(slot: ModelSlot, entry: CatalogEntry, mode: Mode, num_cpus: float, max_batch: int, first: bool):
        # Without the cyclic collector's passes over a growing heap (serving/replica/startup_gc.py): ~1 s less.
        with collector_paused(freeze=first):
            # Imported here, in the replica: the supervisor builds the app without torch (~1 s, ~200 MB less).
            from serving.replica.models import Runner

            runner = Runner(entry, mode, slot.generation, num_cpus=num_cpus, num_gpus=slot.num_gpus,
                            trust_remote_code=slot.trust_remote_code, dtype=slot.dtype, max_batch=max_batch)
        log.info("loaded %s (%s) on %s", entry.name, entry.kind, runner.device)
        return runner

    def _generate_batch(self, slot: int | None, texts: list[str]) -> list[dict]:
        runner = self.runner  # a swap mid-batch does not change the model under this batch
        answers = runner.generate(texts, self._settings.get(slot))
        log.info("generated a batch of %d in %.2f s", len(texts), answers[0].latency_s)
        self._figures.batch(len(texts), sum(len(ids) for ids in runner.tokenizer([a.text for a in answers])["input_ids"]))
        return [a.as_dict() for a in answers]

    def _batcher(self, slot: int | None) -> Batcher:
        if slot not in self._batchers:
            self._batchers[slot] = Batcher(partial(self._generate_batch, slot), self._max_batch, BATCH_WAIT_S)
        return self._batchers[slot]

    async def generate(self, text: str, slot: int | None = None) -> dict:
        """One prompt in, answered with `slot`'s settings; {"text", "latency_s", "truncated_to"} out."""
        runner, generation = self.runner, self._settings.get(slot)
        if runner.continuous_for(generation):  # joins the running batch at the next step
            return (await asyncio.wrap_future(runner.submit(text, generation=generation))).as_dict()
        return await self._batcher(slot).submit(text)

    async def stream(self, text: str, slot: int | None = None):
        """Yield {"text": so far, "done": False} while generating, then the answer with "done": True."""
        runner, generation = self.runner, self._settings.get(slot)  # a swap mid-stream changes neither
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()
        if runner.continuous_for(generation):
            # No thread per stream: the decode loop calls back with the text so far after each step.
            answer = runner.submit(text, lambda so_far: loop.call_soon_threadsafe(queue.put_nowait, so_far),
                                   generation)
            answer.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, done))
            try:
                while (so_far := await queue.get()) is not done:
                    yield {"text": so_far, "done": False}
                yield {**(await asyncio.wrap_future(answer)).as_dict(), "done": True}
            finally:
                answer.cancel()  # the page went away: its row leaves the batch at the next step
            return

        def pump():
            try:
                for partial_answer in runner.stream(text, generation):
                    loop.call_soon_threadsafe(queue.put_nowait, partial_answer)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = asyncio.create_task(asyncio.to_thread(pump))
        while (item := await queue.get()) is not done:
            yield item
        await worker
