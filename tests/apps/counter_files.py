"""gr.State and files together: a counter per browser session, and a file read back with a file made from
it (an upload, then a `file=` download). Each answer says which process served it."""

import os
import tempfile
from pathlib import Path

import gradio as gr


def bump(count: int) -> tuple[int, int, str]:
    count += 1
    return count, count, f"pid {os.getpid()}"


def read_back(path: str | None) -> tuple[str, str, str]:
    if not path:
        raise gr.Error("Upload a file first.")
    text = Path(path).read_text(encoding="utf-8")
    out = Path(tempfile.mkdtemp()) / "upper.txt"
    out.write_text(text.upper(), encoding="utf-8")
    return text, str(out), f"pid {os.getpid()}"


with gr.Blocks(title="Counter and files") as demo:
    count = gr.State(0)
    shown = gr.Number(label="Count", value=0, interactive=False)
    served_by = gr.Textbox(label="Served by", interactive=False)
    gr.Button("+1").click(bump, count, [count, shown, served_by], api_name="bump")
    upload = gr.File(label="A text file")
    text = gr.Textbox(label="Its text")
    upper = gr.File(label="The same, upper case")
    gr.Button("Read back").click(read_back, upload, [text, upper, served_by], api_name="read_back")

if __name__ == "__main__":
    demo.launch()
