"""serving.replica.models.Runner on a tiny model: seeded sampling repeats, new decoding settings
(what a warm apply of the same model sends) take effect without a reload, and the
weights' precision follows the slot's dtype."""

from __future__ import annotations

import argparse

import pytest
import torch

from serving.cli import _parser, config_from_args
from serving.core.catalog import resolve
from serving.core.config import Generation, Mode
from serving.core.machine import detect_native_bf16
from serving.replica.models import Runner

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


# auto: bfloat16 where the CPU has it natively (half the memory, faster), else float32.
AUTO = torch.bfloat16 if detect_native_bf16() else torch.float32


@pytest.mark.parametrize("dtype, expected", [("auto", AUTO), ("float32", torch.float32), ("bfloat16", torch.bfloat16)])
def test_dtype_sets_the_weights_precision(tiny_models, dtype, expected):
    runner = Runner(resolve(tiny_models["causal"]), Mode.fanout, Generation(max_new_tokens=8), dtype=dtype)
    assert runner.model.dtype == expected
    assert runner.generate([PROMPT])[0].text
    assert runner.generation.min_new_tokens == 8  # the default minimum (20) gives way to a shorter maximum


def test_dtype_flag_per_model():
    args: argparse.Namespace = _parser().parse_args(
        ["up", "--mode", "fanout", "--model", "a", "--model", "b", "--dtype", "bfloat16", "--dtype", "float32"])
    assert [s.dtype for s in config_from_args(args).models] == ["bfloat16", "float32"]
