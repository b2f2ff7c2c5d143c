"""The tiny random models load by hub id, offline, and generate text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tiny_models import build_tiny_models, is_complete
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, BatchEncoding

LONG_TEXT = "the quick brown fox jumps over the lazy dog " * 100  # well over 256 tokens


def _load(repo_id, model_cls):
    tokenizer = AutoTokenizer.from_pretrained(repo_id)
    model = model_cls.from_pretrained(repo_id).eval()
    return tokenizer, model


def test_env_and_layout(tiny_models):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["HF_HUB_CACHE"] == tiny_models["hub_cache"]
    for kind in ("causal", "seq2seq", "instruct"):
        assert is_complete(Path(tiny_models["hub_cache"]), tiny_models[kind])
    # A second build is a no-op on a complete cache.
    assert build_tiny_models(Path(tiny_models["hub_cache"]))["causal"] == tiny_models["causal"]


def test_causal_generates(tiny_models):
    tokenizer, model = _load(tiny_models["causal"], AutoModelForCausalLM)
    assert tokenizer.chat_template is None
    assert tokenizer.model_max_length == 256
    inputs = tokenizer(LONG_TEXT, return_tensors="pt", truncation=True)
    assert inputs["input_ids"].shape[1] == 256
    inputs = tokenizer("Hello, the cat", return_tensors="pt")
    for do_sample in (False, True):
        torch.manual_seed(0)
        out = model.generate(**inputs, min_new_tokens=20, max_new_tokens=100, do_sample=do_sample)
        new = out[0, inputs["input_ids"].shape[1]:]
        assert len(new) >= 20
        assert tokenizer.decode(new, skip_special_tokens=True).strip()


def test_seq2seq_generates(tiny_models):
    tokenizer, model = _load(tiny_models["seq2seq"], AutoModelForSeq2SeqLM)
    assert model.config.is_encoder_decoder
    assert model.config.decoder_start_token_id == tokenizer.pad_token_id
    assert tokenizer.chat_template is None
    inputs = tokenizer(LONG_TEXT, return_tensors="pt", truncation=True)
    assert inputs["input_ids"].shape[1] == 256
    assert inputs["input_ids"][0, -1].item() == tokenizer.eos_token_id
    inputs = tokenizer("translate english to french: the dog runs", return_tensors="pt")
    out = model.generate(**inputs, num_beams=4, max_new_tokens=40)
    assert tokenizer.decode(out[0], skip_special_tokens=True).strip()


def test_instruct_generates(tiny_models):
    tokenizer, model = _load(tiny_models["instruct"], AutoModelForCausalLM)
    assert tokenizer.chat_template
    messages = [{"role": "user", "content": "Hello, who are you?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<s>assistant\n")
    # transformers 5: tokenize=True returns a BatchEncoding (return_dict defaults to True).
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    assert isinstance(enc, BatchEncoding)
    out = model.generate(**enc, max_new_tokens=30, min_new_tokens=5, do_sample=False)
    text = tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert text.strip()
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=False)
    assert isinstance(ids, torch.Tensor) and ids.ndim == 2


@pytest.mark.parametrize("kind", ["causal", "instruct"])
def test_truncated_max_length_input_runs(tiny_models, kind):
    tokenizer, model = _load(tiny_models[kind], AutoModelForCausalLM)
    inputs = tokenizer(LONG_TEXT, return_tensors="pt", truncation=True, max_length=tokenizer.model_max_length - 8)
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] <= tokenizer.model_max_length
