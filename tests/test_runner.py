"""serving.models.Runner on a tiny model: seeded sampling repeats, and new decoding
settings (what a warm apply of the same model sends) take effect without a reload."""

from __future__ import annotations

from serving.catalog import resolve
from serving.config import Generation, Mode
from serving.models import Runner

PROMPT = "Once upon a time"


def test_a_seed_makes_sampling_repeat_and_configure_needs_no_reload(tiny_models):
    sampling = Generation(do_sample=True, temperature=1.5, min_new_tokens=20, max_new_tokens=20, seed=11)
    runner = Runner(resolve(tiny_models["causal"]), Mode.fanout, sampling)
    first, again = runner.generate([PROMPT])[0].text, runner.generate([PROMPT])[0].text
    assert first and first == again

    model = runner.model
    runner.configure(Mode.fanout, sampling.model_copy(update={"seed": 12}))
    assert runner.model is model  # same weights, new decoding settings
    assert runner.generation.seed == 12
    assert runner.generate([PROMPT])[0].text != first

    streamed = list(runner.stream(PROMPT))
    assert streamed[-1]["done"] and streamed[-1]["text"] == runner.generate([PROMPT])[0].text
