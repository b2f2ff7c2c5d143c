"""Tiny random Hugging Face models, built on the fly in a real hub cache layout.

Nothing can be downloaded in the test environment, so the tests serve these instead.
``build_tiny_models(hub_cache)`` writes three repos under ``hub_cache``::

    models--tiny-random--gpt2/
        refs/main                       -> "<40-hex commit>"
        blobs/<sha256>                  the file contents
        snapshots/<commit>/<file>       relative symlinks into blobs/ (copies where symlinks fail)

so that, with ``HF_HUB_CACHE=hub_cache`` and ``HF_HUB_OFFLINE=1``,
``AutoModelForCausalLM.from_pretrained("tiny-random/gpt2")`` resolves the hub id through the
normal cache lookup.

- ``tiny-random/gpt2``: GPT2LMHeadModel, no chat template              (kind "causal")
- ``tiny-random/t5``:   T5ForConditionalGeneration, encoder-decoder    (kind "seq2seq")
- ``tiny-random/chat``: tiny Llama causal LM with a Jinja chat template (kind "instruct")

Each has its own byte-level BPE tokenizer trained on generated text (vocab ~800), saved as a
PreTrainedTokenizerFast with ``model_max_length=256``. Everything is seeded; the commit hash is
derived from the repo id and ``BUILD_VERSION``, so bump that when the recipe changes. Building is
idempotent: a complete repo is left alone, and each repo is written to a temporary folder and
renamed into place, so an interrupted build never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from pathlib import Path

BUILD_VERSION = "1"
MODEL_MAX_LENGTH = 256
VOCAB_SIZE = 800
SEED = 1234

# Ids 0..3 in this order: T5 expects pad=0, eos=1, unk=2.
PAD, EOS, UNK, BOS = "<pad>", "</s>", "<unk>", "<s>"
SPECIAL_TOKENS = [PAD, EOS, UNK, BOS]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<s>' + message['role'] + '\\n' + message['content'] + '</s>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<s>assistant\\n' }}{% endif %}"
)

TINY_MODELS = {
    "causal": "tiny-random/gpt2",
    "seq2seq": "tiny-random/t5",
    "instruct": "tiny-random/chat",
}

# Files every complete snapshot must have.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

_WORDS = ["the", "a", "an", "one", "some", "every", "this", "that", "my", "your", "our", "their", "cat", "dog", "bird", "fish", "river", "mountain", "city", "village", "road", "house", "garden", "tree", "flower", "stone", "cloud", "rain", "sun", "moon", "star", "night", "morning", "evening", "teacher", "student", "farmer", "doctor", "painter", "singer", "friend", "child", "king", "queen", "ship", "train", "book", "letter", "song", "story", "question", "answer", "idea", "plan", "problem", "reason", "world", "time", "day", "year", "water", "fire", "light", "runs", "walks", "sings", "reads", "writes", "builds", "finds", "sees", "hears", "knows", "thinks", "says", "makes", "takes", "gives", "opens", "closes", "carries", "follows", "helps", "likes", "loves", "wants", "needs", "keeps", "brings", "shows", "tells", "asks", "quickly", "slowly", "quietly", "loudly", "gently", "often", "never", "always", "again", "today", "tomorrow", "yesterday", "here", "there", "near", "far", "under", "over", "behind", "beside", "through", "across", "into", "from", "with", "without", "about", "red", "blue", "green", "yellow", "small", "large", "old", "new", "young", "bright", "dark", "warm", "cold", "happy", "sad", "strange", "and", "but", "or", "so", "because", "when", "while", "if", "then", "before", "after", "hello", "please", "thanks", "yes", "no", "maybe", "user", "assistant", "system", "model", "text", "translate", "summarize", "english", "french", "german", "question", "answer"]


_SYLLABLES = ["ba", "be", "bi", "bo", "ka", "ke", "ko", "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "no", "ra", "re", "ri", "ro", "sa", "se", "so", "ta", "te", "ti", "to", "va", "ve"]

# Printable ASCII plus space/newline/tab, as the byte-level pre-tokenizer spells them. Training with
# only these (not all 256 bytes) keeps decoded random output readable: no control or lone UTF-8
# bytes; anything else encodes as <unk>.
_ALPHABET = [chr(c) for c in range(33, 127)] + ["\u0120", "\u010a", "\u0109"]


def _corpus(rng: random.Random, lines: int = 600) -> list[str]:
    made_up = sorted({"".join(rng.choices(_SYLLABLES, k=rng.randint(2, 3))) for _ in range(400)})
    words = list(_WORDS) + made_up
    out = []
    for _ in range(lines):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 16)))
        sentence = sentence.capitalize() + rng.choice([".", ".", "!", "?", ","])
        if rng.random() < 0.15:
            sentence += f" {rng.randint(0, 2024)}"
        if rng.random() < 0.2:  # chat-template-like lines, so role names and newlines get tokens
            sentence = f"{rng.choice(['user', 'assistant', 'system'])}\n{sentence}\n"
        out.append(sentence)
    return out


def _train_tokenizer(seed: int, *, append_eos: bool):
    """A byte-level BPE tokenizer (any text encodes) wrapped as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=_ALPHABET,
        limit_alphabet=len(_ALPHABET),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(random.Random(seed)), trainer=trainer)
    if append_eos:  # T5 style: "... </s>"
        eos_id = tok.token_to_id(EOS)
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, eos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        model_max_length=MODEL_MAX_LENGTH,
    )


def _ids(tokenizer) -> dict:
    return {
        "pad_token_id": tokenizer.convert_tokens_to_ids(PAD),
        "eos_token_id": tokenizer.convert_tokens_to_ids(EOS),
        "bos_token_id": tokenizer.convert_tokens_to_ids(BOS),
    }


def _build_gpt2(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=MODEL_MAX_LENGTH,
        n_embd=64,
        n_layer=2,
        n_head=2,
        tie_word_embeddings=False,  # tied, a random model greedily repeats the last prompt token
        **_ids(tokenizer),
    )
    return GPT2LMHeadModel(config)


def _build_t5(tokenizer):
    from transformers import T5Config, T5ForConditionalGeneration

    ids = _ids(tokenizer)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_kv=32,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=64,
        feed_forward_proj="relu",
        is_encoder_decoder=True,
        pad_token_id=ids["pad_token_id"],
        eos_token_id=ids["eos_token_id"],
        decoder_start_token_id=ids["pad_token_id"],
        tie_word_embeddings=False,
    )
    return T5ForConditionalGeneration(config)


def _build_chat(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=MODEL_MAX_LENGTH,
        # Untied: with a tied head a random Llama greedily repeats the last prompt token ("\n").
        tie_word_embeddings=False,
        **_ids(tokenizer),
    )
    return LlamaForCausalLM(config)


_RECIPES = {
    # repo id: (model builder, tokenizer seed offset, T5-style </s> appended, chat template)
    "tiny-random/gpt2": (_build_gpt2, 0, False, None),
    "tiny-random/t5": (_build_t5, 1, True, None),
    "tiny-random/chat": (_build_chat, 2, False, CHAT_TEMPLATE),
}


def commit_hash(repo_id: str) -> str:
    return hashlib.sha1(f"{repo_id}@tiny-models-v{BUILD_VERSION}".encode()).hexdigest()


def repo_folder(hub_cache: Path, repo_id: str) -> Path:
    return Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))


def is_complete(hub_cache: Path, repo_id: str) -> bool:
    folder = repo_folder(hub_cache, repo_id)
    commit = commit_hash(repo_id)
    try:
        if (folder / "refs" / "main").read_text().strip() != commit:
            return False
    except OSError:
        return False
    snapshot = folder / "snapshots" / commit
    return all((snapshot / name).is_file() for name in REQUIRED_FILES)


def _save_repo(repo_id: str, folder: Path) -> None:
    """Write the full cache folder for one repo (blobs, snapshot links, refs/main) into ``folder``."""
    import torch

    build, seed_offset, append_eos, chat_template = _RECIPES[repo_id]
    tokenizer = _train_tokenizer(SEED + seed_offset, append_eos=append_eos)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    torch.manual_seed(SEED + seed_offset)
    model = build(tokenizer).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    commit = commit_hash(repo_id)
    with tempfile.TemporaryDirectory(dir=folder.parent) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        blobs = folder / "blobs"
        snapshot = folder / "snapshots" / commit
        blobs.mkdir(parents=True)
        snapshot.mkdir(parents=True)
        for src in sorted(Path(staging).rglob("*")):
            if not src.is_file():
                continue
            rel = src.relative_to(staging)
            blob = blobs / hashlib.sha256(src.read_bytes()).hexdigest()
            if not blob.exists():
                shutil.copyfile(src, blob)
            dst = snapshot / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                dst.symlink_to(os.path.relpath(blob, dst.parent))
            except OSError:  # no symlinks (e.g. Windows without developer mode): hub falls back to copies too
                shutil.copyfile(blob, dst)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)


def build_tiny_models(hub_cache: Path) -> dict[str, str]:
    """Build (or reuse) the tiny models under ``hub_cache``; returns {kind: repo id}."""
    hub_cache = Path(hub_cache)
    hub_cache.mkdir(parents=True, exist_ok=True)
    for repo_id in _RECIPES:
        if is_complete(hub_cache, repo_id):
            continue
        target = repo_folder(hub_cache, repo_id)
        tmp_root = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=hub_cache))
        try:
            built = tmp_root / target.name
            _save_repo(repo_id, built)
            if target.exists():  # stale or half-written by an older/interrupted build
                if is_complete(hub_cache, repo_id):  # a concurrent builder won the race
                    continue
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(built, target)
            except OSError:
                if not is_complete(hub_cache, repo_id):
                    raise
        finally:
            shutil.rmtree(tmp_root, ignore_errors=True)
    return dict(TINY_MODELS)


if __name__ == "__main__":  # python tests/tiny_models.py DIR
    import sys
    import time

    start = time.perf_counter()
    print(build_tiny_models(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-hub-cache")))
    print(f"built in {time.perf_counter() - start:.2f}s")
