"""gr.Progress, in an app made by a builder function (serve it as progress_app.py:build_demo)."""

import math
import time

import gradio as gr

LIMIT = 200_000


def count_primes(upto: float, progress=gr.Progress()) -> str:  # noqa: B008 - Gradio's idiom
    upto = int(upto or 0)
    if upto < 2 or upto > LIMIT:
        raise gr.Error(f"Pick a number between 2 and {LIMIT}.")
    chunks = 10
    found = 0
    for i in progress.tqdm(range(chunks), desc="Sieving"):
        lo, hi = upto * i // chunks + 1, upto * (i + 1) // chunks
        found += sum(1 for n in range(max(lo, 2), hi + 1)
                     if all(n % d for d in range(2, math.isqrt(n) + 1)))
        time.sleep(0.1)
    return f"{found} primes up to {upto}"


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Primes") as demo:
        upto = gr.Number(label="Count primes up to", value=1000, precision=0)
        answer = gr.Textbox(label="Answer", elem_id="answer")
        gr.Button("Count").click(count_primes, upto, answer, api_name="count_primes")
    return demo


if __name__ == "__main__":
    build_demo().launch()
