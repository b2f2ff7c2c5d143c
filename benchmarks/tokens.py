"""Generated tokens per second inside one model replica, at batch sizes 1, 2, 4 and 8.

One torch thread (a replica with 1 CPU), the embedded model at the default precision, every row
made to decode exactly 64 tokens (same work at every size), prompts of different lengths. The
continuous decode loop (serving/replica/decoding.py, what replicas run) vs transformers' generate() on the
same batch (what they ran before), each the best of 2 runs.

    python -m benchmarks.tokens              # prints one JSON object
    python -m benchmarks.tokens --loop-only  # the decode loop alone (make bench's later repetitions)
"""

from __future__ import annotations

import json
import sys
import time

from benchmarks.common import ARTICLE, EMBEDDED, PROMPT

PROMPTS = [ARTICLE, PROMPT, "Name three colours of the rainbow and say why the sky is blue.",
           "Give a short tip for learning a new language."]
NEW_TOKENS = 64


def main(loop_only: bool = False) -> None:
    from serving.core.catalog import resolve
    from serving.core.config import Generation, Mode
    from serving.replica.models import Runner

    runner = Runner(resolve(EMBEDDED), Mode.fanout, Generation(min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS),
                    num_cpus=1, max_batch=8)
    loop = runner.loop
    runner.generate(PROMPTS[:2])  # warm up

    def best_of(n: int, prompts: list[str]) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            runner.generate(prompts)
            times.append(time.perf_counter() - t0)
        return min(times)

    rows = []
    for size in (1, 2, 4, 8):
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(size)]
        runner.loop = loop
        t_loop = best_of(2, prompts)
        row = {"batch": size, "loop_s": round(t_loop, 3), "loop_tokens_per_s": round(size * NEW_TOKENS / t_loop, 1)}
        if not loop_only:
            runner.loop = None  # generate() on the whole batch
            t_generate = best_of(2, prompts)
            row.update(generate_s=round(t_generate, 3), generate_tokens_per_s=round(size * NEW_TOKENS / t_generate, 1))
        rows.append(row)
    runner.loop = loop
    print(json.dumps({"model": EMBEDDED, "dtype": str(runner.model.dtype).removeprefix("torch."), "threads": 1,
                      "new_tokens_per_row": NEW_TOKENS, "rows": rows}))


if __name__ == "__main__":
    main(loop_only="--loop-only" in sys.argv[1:])
