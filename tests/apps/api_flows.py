"""Gradio's multi-request APIs in one app: a gr.State counter, a call with keyword arguments, a file
uploaded and a file given back, and a streamed answer. Each answer says which process served it."""

import os
import tempfile
import time
from pathlib import Path

import gradio as gr


def served_by() -> str:
    return f"pid {os.getpid()}"


def bump(count: int) -> tuple[int, int, str]:
    count += 1
    return count, count, served_by()


def shout(text: str, times: float = 1) -> str:
    return " ".join([text.upper()] * int(times)) + f" ({served_by()})"


def reverse_lines(path: str | None) -> tuple[str, str]:
    if not path:
        raise gr.Error("Upload a text file first.")
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    out = Path(tempfile.mkdtemp()) / f"reversed-{Path(path).name}"
    out.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    return str(out), f"{len(lines)} lines; {served_by()}"


def count_up(n: float):
    for i in range(1, int(n) + 1):
        time.sleep(0.05)
        yield f"{i} of {int(n)}; {served_by()}"


with gr.Blocks(title="API flows") as demo:
    count = gr.State(0)
    with gr.Row():
        shown = gr.Number(label="Count", value=0, elem_id="count", interactive=False)
        who = gr.Textbox(label="Served by", elem_id="served-by", interactive=False)
        gr.Button("+1", elem_id="bump").click(bump, count, [count, shown, who], api_name="bump")
    with gr.Row():
        text = gr.Textbox(label="Text", value="hi")
        times = gr.Number(label="Times", value=2)
        loud = gr.Textbox(label="Shouted")
        gr.Button("Shout").click(shout, [text, times], loud, api_name="shout")
    with gr.Row():
        upload = gr.File(label="A text file", elem_id="upload")
        reversed_file = gr.File(label="Its lines reversed", elem_id="reversed")
        summary = gr.Textbox(label="Summary", elem_id="summary")
        gr.Button("Reverse").click(reverse_lines, upload, [reversed_file, summary], api_name="reverse_lines")
    with gr.Row():
        n = gr.Number(label="Up to", value=4)
        counted = gr.Textbox(label="Counted", elem_id="counted")
        gr.Button("Count").click(count_up, n, counted, api_name="count_up")

if __name__ == "__main__":
    demo.launch()
