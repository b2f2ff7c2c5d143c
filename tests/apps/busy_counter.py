"""gr.State: a counter per browser session, which says which process served it; and `work`, a
second's wait that loads the app enough for Serve's autoscaling to add a replica."""

import os
import time

import gradio as gr


def bump(count: int) -> tuple[int, int, str]:
    count += 1
    return count, count, f"pid {os.getpid()}"


def work(text: str) -> str:
    time.sleep(1.0)
    return text


with gr.Blocks(title="Busy counter") as demo:
    count = gr.State(0)
    shown = gr.Number(label="Count", value=0, interactive=False)
    served_by = gr.Textbox(label="Served by", interactive=False)
    gr.Button("+1").click(bump, count, [count, shown, served_by], api_name="bump")
    box = gr.Textbox(label="Work")
    gr.Button("Work").click(work, box, box, api_name="work", concurrency_limit=None)

if __name__ == "__main__":
    demo.launch()
