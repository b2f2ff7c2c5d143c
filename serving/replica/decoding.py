"""Continuous batching for decoder-only models: one decode loop, prompts join and leave between steps.

Why not `model.generate()` on a batch: it decodes until the batch's longest answer ends and
takes no newcomer meanwhile, so under load most prompts wait for a whole batch before they
start, and every row carries its own decoding settings only if all rows share them. Here each
prompt is a row with its own settings (greedy or sampling, seed, min/max tokens); a new
prompt is prefilled (newcomers packed into one sequence, not padded) and joins at the next step,
a finished row leaves at once. On a CPU a decoding step reads every weight once for the whole
batch, so 8 rows cost little more than 1.

Works on models whose cache is a plain DynamicCache (Llama, SmolLM, Qwen, GPT-2, ...):
`supports()` checks, and serving/replica/models.py falls back to `generate()` for the rest
(encoder-decoders, sliding-window caches) and for beam search.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

log = logging.getLogger(__name__)

PACK_TOKENS = 512  # one prefill's prompt tokens; attention in a pack costs its length squared

_loops: weakref.WeakSet[DecodeLoop] = weakref.WeakSet()  # weak: a replaced model is not kept alive


@atexit.register
def _end_loops_at_exit() -> None:
    """Each loop's thread ends before the interpreter does: a decode thread that ran torch and was still
    alive at exit ended the process in SIGABRT ("terminate called without an active exception") in 5 of
    6 runs of a script that generated and returned."""
    threads = [loop.close() for loop in list(_loops)]
    for thread in threads:
        if thread is not None:
            thread.join(timeout=5)


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
        self._eos_t: torch.Tensor | None = None
        self._can_pack = self._packing_works()
        _loops.add(self)

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
        """Prefill the newcomers, pick their first tokens, splice their cache in."""
        blocks: list[list[tuple[torch.Tensor, torch.Tensor]]] = []  # per layer: each newcomer's keys, values
        logits = []
        for pack in self._packs(new):
            pack_logits, pack_blocks = self._prefill(pack)
            logits.append(pack_logits)
            blocks = pack_blocks if not blocks else [a + b for a, b in zip(blocks, pack_blocks, strict=True)]
        self._choose(new, torch.cat(logits))
        if rows:
            # Rows already decoding take their next step first, so no row waits a prefill long.
            cache, mask = self._step(rows, cache, mask)
        return _splice(cache, mask, blocks, [len(r.prompt) for r in new])

    def _packing_works(self) -> bool:
        """Whether this model honours a packed prefill's mask and positions (it answers as two prefills would);
        a model that ignored them would answer wrongly, not fail."""
        a, b = _Row([1, 2, 3, 4, 5], Sampling(1), None), _Row([6, 7, 8], Sampling(1), None)
        try:
            with torch.inference_mode():
                packed = self._prefill([a, b])[0].float()
                alone = torch.cat([self._prefill([a])[0], self._prefill([b])[0]]).float()
        except Exception:  # one row per prefill then
            log.info("this model cannot prefill packed prompts; each prompt is prefilled alone", exc_info=True)
            return False
        return bool((packed - alone).abs().max() <= 0.02 * alone.abs().max())

    def _packs(self, new: list[_Row]) -> list[list[_Row]]:
        """Newcomers in packs of up to PACK_TOKENS prompt tokens (one row each if this model cannot pack)."""
        packs: list[list[_Row]] = []
        size = 0
        for r in new:
            if packs and self._can_pack and size + len(r.prompt) <= PACK_TOKENS:
                packs[-1].append(r)
                size += len(r.prompt)
            else:
                packs.append([r])
                size = len(r.prompt)
        return packs

    def _prefill(self, pack: list[_Row]):
        """The pack's prompts one after another in a single row, each seeing only itself (a block-diagonal
        causal mask, positions from 0 for each): no padding computed, where a left-padded batch of 8 of this
        benchmark's prompts ran 768 positions for 434 tokens. Returns the last logits and the cache blocks."""
        device = self.model.device
        lengths = [len(r.prompt) for r in pack]
        ids = torch.tensor([[t for r in pack for t in r.prompt]], device=device)
        positions = torch.cat([torch.arange(n) for n in lengths])[None].to(device)
        ends = torch.tensor(lengths).cumsum(0)
        extra: dict = {}
        if len(pack) > 1:
            seg = torch.repeat_interleave(torch.arange(len(pack)), torch.tensor(lengths)).to(device)
            col = torch.arange(len(seg), device=device)
            extra["attention_mask"] = ((seg[:, None] == seg[None, :]) & (col[None, :] <= col[:, None]))[None, None]
        if self._last_only:
            extra["logits_to_keep"] = (ends - 1).to(device)
        out = self.model(input_ids=ids, position_ids=positions, use_cache=True, **extra)
        logits = out.logits[0] if self._last_only else out.logits[0, (ends - 1).to(device)]
        starts = [0, *ends[:-1].tolist()]
        blocks = [[(layer.keys[:, :, a:b], layer.values[:, :, a:b]) for a, b in zip(starts, ends.tolist(), strict=True)]
                  for layer in _cache_of(out).layers]
        return logits, blocks

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
        # Rows under their min_new_tokens may not end yet: one masked write and one argmax for the
        # whole batch (per-row clones and argmaxes cost ~2% of a batch-8 step).
        short = [i for i, r in enumerate(rows) if len(r.out) < r.s.min_new_tokens]
        if short and self.eos:
            if self._eos_t is None or self._eos_t.device != logits.device:
                self._eos_t = torch.tensor(self.eos, device=logits.device)
            logits[torch.tensor(short, device=logits.device)[:, None], self._eos_t] = float("-inf")
        greedy = logits.argmax(-1).tolist()
        for i, r in enumerate(rows):
            s = r.s
            if not s.do_sample:
                r.out.append(greedy[i])
                continue
            if s.seed is not None and r.gen is None:
                # multinomial wants its generator where the logits are (a CPU one fails on a GPU).
                r.gen = torch.Generator(device=logits.device).manual_seed(s.seed)
            r.out.append(_sample(logits[i].float(), s, r.gen))  # argmax alone needs no float copy
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


class _Layer(DynamicLayer):
    """A DynamicLayer that writes each step into room kept after its keys, where DynamicLayer's torch.cat
    copied the whole cache every step (~11% of a batch-8 step here). keys/values are views of what is filled."""

    ROOM = 64  # steps between two copies

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, filled: int):
        super().__init__()
        self.device, self.is_initialized = keys.device, True
        self._k, self._v = keys, values
        self._show(filled)

    def _show(self, n: int) -> None:
        self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]
        self._shown = self.keys

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        n, m = self.keys.shape[-2], key_states.shape[-2]
        # keys replaced from outside (rows left, columns dropped) or no room left: move to a new buffer.
        if self.keys is not self._shown or n + m > self._k.shape[-2]:
            self._k, self._v = _with_room(self.keys, m + self.ROOM), _with_room(self.values, m + self.ROOM)
        self._k[:, :, n:n + m] = key_states
        self._v[:, :, n:n + m] = value_states
        self._show(n + m)
        return self.keys, self.values


def _with_room(t: torch.Tensor, room: int) -> torch.Tensor:
    out = t.new_empty((*t.shape[:-2], t.shape[-2] + room, t.shape[-1]))
    out[..., :t.shape[-2], :] = t
    return out


def _splice(cache, mask: torch.Tensor | None, blocks, lengths: list[int]):
    """One cache of _Layers: the rows decoding (if any), then each newcomer's block, all left-padded to one width."""
    old = mask.shape[0] if mask is not None else 0
    width = max(lengths + ([mask.shape[1]] if mask is not None else []))
    layers = []
    for i, row_blocks in enumerate(blocks):
        kv = []
        for j, first in enumerate(row_blocks[0]):  # keys, then values
            buf = first.new_zeros((old + len(lengths), first.shape[1], width + _Layer.ROOM, first.shape[-1]))
            if old:
                held = (cache.layers[i].keys, cache.layers[i].values)[j]
                buf[:old, :, width - held.shape[-2]:width] = held
            for r, block in enumerate(row_blocks):
                buf[old + r, :, width - block[j].shape[-2]:width] = block[j][0]
            kv.append(buf)
        layers.append(_Layer(*kv, width))
    new_mask = torch.zeros((len(lengths), width), dtype=torch.long, device=blocks[0][0][0].device)
    for r, n in enumerate(lengths):
        new_mask[r, width - n:] = 1
    mask = new_mask if mask is None else torch.cat([F.pad(mask, (width - mask.shape[1], 0)), new_mask])
    return Cache(layers=layers), mask
