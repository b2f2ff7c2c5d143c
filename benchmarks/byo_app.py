"""A user's own Gradio app, as `byo` measures it: served unchanged by `gradio-serve up --app`, and by
its own `demo.launch()` (python benchmarks/byo_app.py, port from GRADIO_SERVER_PORT)."""

import gradio as gr


def work(n: float) -> str:
    """CPU-bound pure Python: holds the GIL, so one process does one at a time."""
    total = 0
    for i in range(int(n)):
        total = (total + i * i) % 1_000_003
    return str(total)


def echo(text: str) -> str:
    return text


with gr.Blocks() as demo:
    n = gr.Number(15_000_000, label="work")
    result = gr.Textbox(label="result")
    gr.Button("Work").click(work, n, result, api_name="work")
    text = gr.Textbox(label="text")
    same = gr.Textbox(label="echo")
    gr.Button("Echo").click(echo, text, same, api_name="echo")

if __name__ == "__main__":
    demo.launch()
