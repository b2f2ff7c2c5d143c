"""Continuous batching for decoder-only models: one decode loop, prompts join and leave between steps.

Why not `model.generate()` on a batch: it decodes until the batch's longest answer ends and
takes no newcomer meanwhile, so under load most prompts wait for a whole batch before they
start, and every row carries its own decoding settings only if all rows share them. Here each
prompt is a row with its own settings (greedy or sampling, seed, min/max tokens); a new
prompt is prefilled and joins at the next step, a finished row leaves at once. On a CPU a
decoding step reads every weight once for the whole batch, so 8 rows cost little more than 1.

Works on models whose cache is a plain DynamicCache (Llama, SmolLM, Qwen, GPT-2, ...):
`supports()` checks, and serving/replica/models.py falls back to `generate()` for the rest
(encoder-decoders, sliding-window caches) and for beam search.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    """One row's decoding settings (HF generate's meaning; top_k as the model's generation config)."""

    max_new_tokens: int
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None


class _Row:
    def __init__(self, prompt: list[int], sampling: Sampling, on_tokens: Callable[[list[int]], None] | None):
        self.prompt = prompt
        self.s = sampling
        self.on_tokens = on_tokens  # called in the loop thread with the tokens so far, after each step
        self.out: list[int] = []
        self.future: Future[list[int]] = Future()
        self.gen: torch.Generator | None = None  # made at the first sample, on the logits' device


def supports(model) -> bool:
    """A decoder-only model whose cache is DynamicCache with full-attention layers (what we splice)."""
    if model.config.is_encoder_decoder:
        return False
    try:
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([[0, 1]], device=model.device), use_cache=True)
    except Exception:  # noqa: BLE001 - any model that cannot run this way uses generate()
        return False
    cache = _cache_of(out)
    return type(cache) is DynamicCache and all(type(layer) is DynamicLayer for layer in cache.layers)


class DecodeLoop:
    """One thread per model runs every row; `submit()` is thread-safe and returns a Future of token ids.

    Each row has exactly one chosen token not yet in the cache (its last one): a step feeds
    those, one per row, and picks the next. The cache is left-padded to a common length;
    the attention mask hides the padding and position ids count only real tokens."""

    def __init__(self, model, eos_ids: set[int], pad_id: int, max_batch: int = 8):
        self.model = model
        self.eos = sorted(eos_ids)
        self.pad_id = pad_id
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Row] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        # transformers 5.2x renamed `past_key_values` to `cache` (the old name warns, then goes away).
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        # Only the last position's logits are used: a prefill otherwise keeps one row of vocabulary-sized
        # logits per prompt token (an 8k-token prompt on SmolLM2: ~1.6 GB in float32).
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self.max_positions = _max_positions(model.config)
        self.on_step: Callable[[int], None] | None = None  # rows that got a token this step; 0: idle (#22)

    def submit(self, prompt: list[int], sampling: Sampling,
               on_tokens: Callable[[list[int]], None] | None = None) -> Future[list[int]]:
        return self.submit_many([(prompt, sampling, on_tokens)])[0]

    def submit_many(self, requests: list[tuple[list[int], Sampling, Callable | None]]) -> list[Future[list[int]]]:
        """Several rows at once: they are prefilled together (one forward) rather than one by one."""
        rows = [_Row(prompt, sampling, on_tokens) for prompt, sampling, on_tokens in requests]
        fitting = []
        for row in rows:
            # Past the model's positions a forward fails (GPT-2: IndexError) and with it the whole batch.
            if self.max_positions and len(row.prompt) + row.s.max_new_tokens > self.max_positions:
                row.future.set_exception(ValueError(
                    f"the prompt ({len(row.prompt)} tokens) plus max_new_tokens ({row.s.max_new_tokens}) is more "
                    f"than this model's {self.max_positions} positions: shorten the prompt or lower max_new_tokens"))
            else:
                fitting.append(row)
        with self._cond:
            if self._closed:
                raise RuntimeError("this model was replaced; send the prompt to the new one")
            self._waiting.extend(fitting)
            self._cond.notify()
            # A thread that ended anyway (it should not) is replaced, so later prompts never wait forever.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="decode-loop", daemon=True)
                self._thread.start()
        return [row.future for row in rows]

    def close(self) -> threading.Thread | None:
        """The rows in flight finish, then the thread (returned, to join) ends, and its hold on the model."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            return self._thread

    # -- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        rows: list[_Row] = []
        cache = mask = None
        while True:
            with self._cond:
                while not self._waiting and not rows:
                    if self._closed:
                        return
                    self._cond.wait()
                room = self.max_batch - len(rows)
                new, self._waiting = self._waiting[:room], self._waiting[room:]
            new = [r for r in new if not r.future.cancelled()]
            try:
                with torch.inference_mode():
                    if new:
                        cache, mask = self._admit(new, rows, cache, mask)
                        rows = rows + new
                    else:
                        cache, mask = self._step(rows, cache, mask)
                    stepped = len(rows)  # each row got one token
                    rows, cache, mask = self._retire(rows, cache, mask)
                if self.on_step is not None:
                    self.on_step(stepped)
                    if not rows:
                        self.on_step(0)
            except BaseException as exc:  # every row in flight gets the error; the loop goes on
                log.exception("decoding failed")
                for row in rows + new:
                    _settle(row.future, error=exc)
                rows, cache, mask = [], None, None

    def _admit(self, new: list[_Row], rows: list[_Row], cache, mask):
        """Prefill the newcomers together (left-padded), pick their first tokens, splice their cache in."""
        device = self.model.device
        width = max(len(r.prompt) for r in new)
        ids = torch.full((len(new), width), self.pad_id, dtype=torch.long)
        new_mask = torch.zeros((len(new), width), dtype=torch.long)
        for i, r in enumerate(new):
            ids[i, width - len(r.prompt):] = torch.tensor(r.prompt)
            new_mask[i, width - len(r.prompt):] = 1
        ids, new_mask = ids.to(device), new_mask.to(device)
        positions = (new_mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=new_mask, position_ids=positions, use_cache=True,
                         **self._last_only)
        self._choose(new, out.logits[:, -1, :])
        if rows:
            # Rows already decoding take their next step first, so no row waits a prefill long.
            cache, mask = self._step(rows, cache, mask)
            return _splice(cache, mask, _cache_of(out), new_mask)
        return _cache_of(out), new_mask

    def _step(self, rows: list[_Row], cache, mask):
        device = self.model.device
        last = torch.tensor([[r.out[-1]] for r in rows], dtype=torch.long, device=device)
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
        positions = mask.sum(-1, keepdim=True) - 1
        out = self.model(input_ids=last, attention_mask=mask, position_ids=positions, use_cache=True,
                         **{self._cache_arg: cache}, **self._last_only)
        self._choose(rows, out.logits[:, -1, :])
        return _cache_of(out), mask

    def _choose(self, rows: list[_Row], logits: torch.Tensor) -> None:
        logits = logits.float()
        greedy = logits.argmax(-1).tolist()
        for i, r in enumerate(rows):
            s = r.s
            if len(r.out) < s.min_new_tokens and self.eos:
                row = logits[i].clone()
                row[self.eos] = float("-inf")
            elif s.do_sample:
                row = logits[i]
            else:
                r.out.append(greedy[i])
                continue
            if s.do_sample:
                if s.seed is not None and r.gen is None:
                    # multinomial wants its generator where the logits are (a CPU one fails on a GPU).
                    r.gen = torch.Generator(device=row.device).manual_seed(s.seed)
                r.out.append(_sample(row, s, r.gen))
            else:
                r.out.append(int(row.argmax()))
        for r in rows:
            if r.on_tokens is not None:
                r.on_tokens(r.out)

    def _retire(self, rows: list[_Row], cache, mask):
        """Rows that ended (end-of-sequence or max_new_tokens) answer and leave the batch."""
        keep = []
        for i, r in enumerate(rows):
            ended = r.out[-1] in self.eos or len(r.out) >= r.s.max_new_tokens or r.future.cancelled()
            if not ended:
                keep.append(i)
            else:
                _settle(r.future, r.out[:-1] if r.out[-1] in self.eos else list(r.out))
        if len(keep) == len(rows):
            return rows, cache, mask
        if not keep:
            return [], None, None
        index = torch.tensor(keep, device=mask.device)
        cache.batch_select_indices(index)
        mask = mask[index]
        # Columns that are padding for every row left: drop them (shorter attention each step).
        first = int(mask.any(0).int().argmax())
        if first:
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
            mask = mask[:, first:]
        return [rows[i] for i in keep], cache, mask


def _settle(future: Future, result=None, error: BaseException | None = None) -> None:
    """Answer a row, unless its caller cancelled it, even in another thread since any check we make."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass  # cancelled (or already answered): nobody waits for this answer


def _max_positions(config) -> int | None:
    """The most positions (prompt + answer) the model takes, if its config says; None: no known limit."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    known = [n for n in (getattr(config, a, None) for a in ("max_position_embeddings", "n_positions"))
             if isinstance(n, int) and n > 0]
    return min(known) if known else None


def _sample(logits: torch.Tensor, s: Sampling, gen: torch.Generator | None) -> int:
    logits = logits / s.temperature
    if s.top_k and s.top_k < logits.numel():
        kth = torch.topk(logits, s.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        ordered, order = logits.sort(descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative > s.top_p
        drop[1:] = drop[:-1].clone()  # keep the token that crosses top_p
        drop[0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=gen))


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _splice(cache, mask: torch.Tensor, new_cache, new_mask: torch.Tensor):
    """One cache from two batches: the shorter one left-padded to the other's length, then stacked."""
    width = max(mask.shape[1], new_mask.shape[1])

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, 0, width - t.shape[-2], 0)) if t.shape[-2] < width else t

    for layer, new_layer in zip(cache.layers, new_cache.layers, strict=True):
        layer.keys = torch.cat([pad(layer.keys), pad(new_layer.keys)], dim=0)
        layer.values = torch.cat([pad(layer.values), pad(new_layer.values)], dim=0)
    mask = torch.cat([F.pad(mask, (width - mask.shape[1], 0)), F.pad(new_mask, (width - new_mask.shape[1], 0))])
    return cache, mask
