"""gr.State: a counter per browser session. It also says which process served it."""

import os

import gradio as gr


def bump(count: int) -> tuple[int, int, str]:
    count += 1
    return count, count, f"pid {os.getpid()}"


def reset() -> tuple[int, int, str]:
    return 0, 0, f"pid {os.getpid()}"


with gr.Blocks(title="Counter") as demo:
    count = gr.State(0)
    shown = gr.Number(label="Count", value=0, elem_id="count", interactive=False)
    served_by = gr.Textbox(label="Served by", elem_id="served-by", interactive=False)
    with gr.Row():
        gr.Button("+1", elem_id="bump").click(bump, count, [count, shown, served_by], api_name="bump")
        gr.Button("Reset", elem_id="reset").click(reset, None, [count, shown, served_by], api_name="reset")

if __name__ == "__main__":
    demo.launch()
