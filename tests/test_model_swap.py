"""A model swapped out by `gradio-serve apply` leaves memory: ModelDeployment's own reconfigure (the
class Serve runs, called here directly) with real tiny models, after a first load frozen as at a
replica's start (serving/replica/startup_gc.py)."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

from serving.core.catalog import resolve
from serving.core.config import Mode, ModelSlot
from serving.replica.deployments import ModelDeployment, model_user_config


def test_the_old_model_is_freed_after_a_swap(tiny_models):
    was_enabled = gc.isenabled()
    deployment = ModelDeployment.func_or_class()

    def config(kind: str) -> dict:
        return model_user_config({0: ModelSlot(model=tiny_models[kind], dtype="float32")},
                                 resolve(tiny_models[kind]), Mode.fanout)

    async def scenario():
        await deployment.reconfigure(config("causal"))
        first = deployment.runner
        assert gc.get_freeze_count() > 0  # the first load is frozen, as a replica's start
        answer = await deployment.generate("Once upon a time", 0)
        assert answer["text"]
        old = weakref.ref(first.model)
        del first
        await deployment.reconfigure(config("instruct"))
        assert (await deployment.generate("Hello", 0))["text"]
        return old

    try:
        old = asyncio.run(scenario())
        deadline = time.monotonic() + 30
        while old() is not None and time.monotonic() < deadline:
            time.sleep(0.05)  # thaw_and_collect runs in the executor once the old loop has ended
        assert old() is None, "the swapped-out model is still in memory"
        assert gc.isenabled() == was_enabled
    finally:
        gc.unfreeze()
        deployment.runner.close()
