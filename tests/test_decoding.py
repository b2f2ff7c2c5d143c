"""serving/replica/decoding.py, the continuous batch, on real (tiny) models: it answers exactly what
`generate()` answers one prompt at a time, whether prompts come together or join mid-way;
each row keeps its own settings; a failure reaches every caller and the loop goes on."""

from __future__ import annotations

import functools
import threading
from concurrent.futures import Future

import pytest
import torch

from serving.core.catalog import resolve
from serving.core.config import Generation, Mode
from serving.replica import decoding
from serving.replica.models import Runner

PROMPTS = ["Once upon a time", "The", "A long long prompt with many words in it, to pad the others", "Hello there"]


def runner_for(tiny_models, kind: str, **generation) -> Runner:
    # float32: answers equal generate()'s to the token. In bfloat16 (auto on CPUs that have it), a padded
    # batch rounds differently from a lone prompt, so a near-tie can go the other way.
    return Runner(resolve(tiny_models[kind]), Mode.fanout, Generation(**generation), max_batch=8, dtype="float32")


def one_by_one_with_generate(runner: Runner, prompts: list[str]) -> list[str]:
    loop, runner.loop = runner.loop, None  # the reference: transformers' generate(), batch of 1
    try:
        return [runner.generate([p])[0].text for p in prompts]
    finally:
        runner.loop = loop


@pytest.mark.parametrize("kind", ["causal", "instruct"])
def test_greedy_answers_match_generate_together_and_joining_midway(tiny_models, kind):
    runner = runner_for(tiny_models, kind, max_new_tokens=24, min_new_tokens=24)
    assert runner.continuous
    expected = one_by_one_with_generate(runner, PROMPTS)

    assert [a.text for a in runner.generate(PROMPTS)] == expected  # all four in one batch

    # Staggered: each prompt joins when the one before it has decoded a few tokens.
    answers: list = [None] * len(PROMPTS)
    started = [threading.Event() for _ in PROMPTS]

    def follow(i: int):
        def on_text(text: str):
            if len(text) > 3:
                started[i].set()
        return on_text

    for i, prompt in enumerate(PROMPTS):
        answers[i] = runner.submit(prompt, follow(i))
        assert started[i].wait(30)
    assert [a.result(60).text for a in answers] == expected


def test_rows_keep_their_own_settings(tiny_models):
    runner = runner_for(tiny_models, "causal", max_new_tokens=30)
    short = decoding.Sampling(max_new_tokens=5)
    long_ = decoding.Sampling(max_new_tokens=30, min_new_tokens=30)
    seeded = decoding.Sampling(max_new_tokens=20, min_new_tokens=20, do_sample=True, temperature=1.5, top_k=50,
                               top_p=0.9, seed=3)
    prompt = runner._prompt_ids(["Once upon a time"], runner.generation)[0][0]
    futures = [runner.loop.submit(prompt, s) for s in (short, long_, seeded, seeded)]
    out = [f.result(60) for f in futures]
    assert len(out[0]) <= 5 and len(out[1]) == 30 and len(out[2]) == 20
    assert out[1][:len(out[0])] == out[0]  # greedy: the short answer is the long one's beginning
    assert out[2] == out[3]  # the same seed in one batch: the same answer
    alone = runner.loop.submit(prompt, seeded).result(60)
    assert alone == out[2]  # and the same answer alone
    other = runner.loop.submit(prompt, decoding.Sampling(**{**seeded.__dict__, "seed": 4})).result(60)
    assert other != out[2]


def test_a_failing_step_fails_its_rows_and_the_loop_goes_on(tiny_models, monkeypatch):
    runner = runner_for(tiny_models, "causal", max_new_tokens=8)
    model = runner.model
    real_forward = model.forward
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("out of memory (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        runner.generate(["Once upon a time"])
    assert runner.generate(["Once upon a time"])[0].text  # the next prompt is answered


def test_a_cancelled_answer_leaves_the_batch(tiny_models):
    runner = runner_for(tiny_models, "causal", max_new_tokens=200, min_new_tokens=200)  # < 256 positions
    first_tokens = threading.Event()
    answer = runner.submit("Once upon a time", lambda text: first_tokens.set())
    assert first_tokens.wait(30)
    answer.cancel()
    # The loop is free again: a short answer comes back long before 200 tokens could have.
    quick = runner_for(tiny_models, "causal", max_new_tokens=4)
    quick.loop = runner.loop
    assert quick.generate(["The"])[0].text


def test_encoder_decoders_and_beam_search_use_generate(tiny_models):
    t5 = Runner(resolve(tiny_models["seq2seq"]), Mode.summarize, Generation(max_new_tokens=8))
    assert t5.loop is None and not t5.continuous
    assert t5.generate(["some text to summarize"])[0].text is not None
    beams = runner_for(tiny_models, "causal", num_beams=2, max_new_tokens=8)
    assert beams.loop is not None and not beams.continuous
    assert beams.generate(["Once upon a time"])[0].text


def test_streaming_goes_through_the_batch_and_ends_with_the_answer(tiny_models):
    runner = runner_for(tiny_models, "instruct", max_new_tokens=16, min_new_tokens=16)
    items = list(runner.stream("Hello there"))
    assert items[-1]["done"] and items[-1]["text"] == runner.generate(["Hello there"])[0].text
    assert len([i for i in items if not i["done"]]) > 3  # it streamed, token by token


def test_a_closed_loop_finishes_its_rows_refuses_new_ones_and_ends(tiny_models):
    runner = runner_for(tiny_models, "causal", max_new_tokens=20, min_new_tokens=20)
    in_flight = runner.submit("Once upon a time")
    thread = runner.close()
    assert in_flight.result(60).text  # answered, not dropped
    thread.join(10)
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="replaced"):
        runner.submit("The")


def test_a_prefill_keeps_only_the_last_positions_logits(tiny_models, monkeypatch):
    runner = runner_for(tiny_models, "causal", max_new_tokens=4, min_new_tokens=4)
    model, real_forward = runner.model, runner.model.forward
    seen: list[tuple[int, tuple]] = []  # (input length, logits shape) of each forward

    def recording(*args, **kwargs):
        out = real_forward(*args, **kwargs)
        seen.append((kwargs["input_ids"].shape[1], tuple(out.logits.shape)))
        return out

    monkeypatch.setattr(model, "forward", recording)
    assert runner.generate(["A long long prompt with many words in it"])[0].text
    assert seen[0][0] > 1  # the prefill
    assert all(shape[1] == 1 for _, shape in seen)  # not one vocabulary-sized row per prompt token


def test_a_row_past_the_models_positions_fails_alone(tiny_models):
    runner = runner_for(tiny_models, "causal", max_new_tokens=16)
    limit = runner.model.config.n_positions
    assert runner.loop.max_positions == limit
    prompt = runner._prompt_ids(["Once upon a time"], runner.generation)[0][0]
    long_prompt = (prompt * limit)[:limit - 10]
    normal = decoding.Sampling(max_new_tokens=16, min_new_tokens=16)
    alone = runner.loop.submit(prompt, normal).result(60)
    # The long row would pass the last position a few steps in, while the other rows still decode.
    futures = runner.loop.submit_many([(prompt, normal, None), (long_prompt, decoding.Sampling(max_new_tokens=20),
                                                                None), (prompt, normal, None)])
    with pytest.raises(ValueError, match=rf"\({limit - 10} tokens\).*\(20\).*{limit} positions.*shorten the prompt"):
        futures[1].result(60)
    assert futures[0].result(60) == futures[2].result(60) == alone
    # Through the Runner: a clear error for that answer, not an IndexError.
    with pytest.raises(ValueError, match="lower max_new_tokens"):
        runner.generate(["Once upon a time"], Generation(max_new_tokens=limit + 10))
    assert runner.generate(["Once upon a time"])[0].text


def test_a_seeded_rows_generator_is_on_the_logits_device(tiny_models, monkeypatch):
    # A CPU generator fails torch.multinomial on CUDA logits; no GPU here, so check where it is made.
    runner = runner_for(tiny_models, "causal")
    real_generator, devices = torch.Generator, []

    def recording(*args, **kwargs):
        devices.append(kwargs.get("device", args[0] if args else None))
        return real_generator(*args, **kwargs)

    monkeypatch.setattr(torch, "Generator", recording)
    prompt = runner._prompt_ids(["Once upon a time"], runner.generation)[0][0]
    seeded = decoding.Sampling(max_new_tokens=4, do_sample=True, seed=3)
    assert len(runner.loop.submit(prompt, seeded).result(60)) <= 4
    assert devices and all(d is not None and torch.device(d) == runner.model.device for d in devices)


def test_a_cancel_racing_the_answer_fails_no_other_row_and_the_loop_goes_on(tiny_models, monkeypatch):
    runner = runner_for(tiny_models, "causal")

    class CancelledJustBefore(Future):
        """The caller cancels in another thread right after the loop checked, before it answers."""

        def set_result(self, result):
            self.cancel()
            super().set_result(result)

        def set_exception(self, exception):
            self.cancel()
            super().set_exception(exception)

    def racy(tokens):  # marks the rows whose caller cancels at the worst moment
        pass

    class Row(decoding._Row):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.on_tokens is racy:
                self.future = CancelledJustBefore()

    monkeypatch.setattr(decoding, "_Row", Row)
    prompt = runner._prompt_ids(["Once upon a time"], runner.generation)[0][0]
    short, long_ = decoding.Sampling(max_new_tokens=4, min_new_tokens=4), decoding.Sampling(max_new_tokens=12,
                                                                                          min_new_tokens=12)
    alone = runner.loop.submit(prompt, long_).result(60)
    first, second, other = runner.loop.submit_many([(prompt, short, racy), (prompt, short, racy),
                                                     (prompt, long_, None)])
    assert other.result(30) == alone  # the rest of the batch answers
    assert first.cancelled() and second.cancelled()
    assert runner.loop.submit(prompt, long_).result(30) == alone  # and so does a later prompt


@pytest.mark.parametrize("kind", ["causal", "instruct"])
def test_packed_prefills_and_a_growing_cache_answer_as_generate_does(tiny_models, kind, monkeypatch):
    # Small packs (several prefills per admission) and one step of room (the cache moves at every step),
    # with rows of different lengths leaving at different steps: eight rows, greedy, as generate() one by one.
    monkeypatch.setattr(decoding, "PACK_TOKENS", 24)
    monkeypatch.setattr(decoding._Layer, "ROOM", 1)
    runner = runner_for(tiny_models, kind, max_new_tokens=20, min_new_tokens=20)
    assert runner.loop._can_pack
    prompts = PROMPTS + ["Why", "Tell me about the sea and the sky and the stars above it", "Hi", "Hello"]
    limits = [Generation(max_new_tokens=n, min_new_tokens=n) for n in (20, 5, 12, 20, 3, 16, 8, 20)]
    expected = []
    loop, runner.loop = runner.loop, None
    try:
        expected = [runner.generate([p], g)[0].text for p, g in zip(prompts, limits, strict=True)]
    finally:
        runner.loop = loop
    answers = [runner.submit(p, generation=g) for p, g in zip(prompts, limits, strict=True)]
    assert [a.result(60).text for a in answers] == expected


def test_a_model_that_ignores_a_packed_mask_prefills_each_prompt_alone(tiny_models, monkeypatch):
    runner = runner_for(tiny_models, "causal", max_new_tokens=12, min_new_tokens=12)
    expected = one_by_one_with_generate(runner, PROMPTS)
    model, real_forward = runner.model, runner.model.forward

    @functools.wraps(real_forward)  # the loop reads forward's parameters
    def ignoring_masks(*args, **kwargs):
        kwargs.pop("attention_mask", None)
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", ignoring_masks)
    loop = decoding.DecodeLoop(model, runner.loop.eos, runner.loop.pad_id)
    assert not loop._can_pack
    assert [len(p) for p in loop._packs([decoding._Row([1] * 3, decoding.Sampling(1), None)] * 3)] == [1, 1, 1]
    monkeypatch.setattr(model, "forward", real_forward)  # the steps need their padding mask
    runner.loop = loop
    assert [a.text for a in runner.generate(PROMPTS)] == expected
