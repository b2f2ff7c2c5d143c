"""gr.Timer: a per-session tick counter that updates twice a second, with Pause and Resume."""

import gradio as gr


def tick(ticks: int) -> tuple[int, str]:
    ticks += 1
    return ticks, f"{ticks} ticks"


with gr.Blocks(title="Ticker") as demo:
    ticks = gr.State(0)
    shown = gr.Textbox(label="Ticks", value="0 ticks", elem_id="ticks")
    timer = gr.Timer(0.5)
    timer.tick(tick, ticks, [ticks, shown], api_name="tick")
    with gr.Row():
        gr.Button("Pause").click(lambda: gr.Timer(active=False), None, timer, api_name="pause")
        gr.Button("Resume").click(lambda: gr.Timer(active=True), None, timer, api_name="resume")

if __name__ == "__main__":
    demo.launch()
