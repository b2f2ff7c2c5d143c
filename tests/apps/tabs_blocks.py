"""gr.Blocks with gr.Tabs: three small tools, one per tab."""

from collections import Counter

import gradio as gr


def to_fahrenheit(celsius: float) -> float:
    return round(celsius * 9 / 5 + 32, 2)


def word_counts(text: str) -> dict:
    words = [w.strip(".,;:!?\"'()").lower() for w in (text or "").split()]
    counts = Counter(w for w in words if w)
    return {"words": sum(counts.values()), "unique": len(counts), "top": counts.most_common(3)}


def split_bill(total: float, people: int, tip_percent: float) -> str:
    if not people or people < 1:
        raise gr.Error("At least one person has to pay.")
    share = total * (1 + tip_percent / 100) / people
    return f"{share:.2f} each"


with gr.Blocks(title="Pocket tools") as demo:
    gr.Markdown("# Pocket tools")
    with gr.Tabs():
        with gr.Tab("Temperature", id="temperature"):
            celsius = gr.Number(label="Celsius", value=20)
            fahrenheit = gr.Number(label="Fahrenheit", elem_id="fahrenheit")
            gr.Button("Convert").click(to_fahrenheit, celsius, fahrenheit, api_name="to_fahrenheit")
        with gr.Tab("Words", id="words"):
            text = gr.Textbox(label="Text", lines=3)
            counts = gr.JSON(label="Counts", elem_id="counts")
            gr.Button("Count").click(word_counts, text, counts, api_name="word_counts")
        with gr.Tab("Split the bill", id="bill"):
            total = gr.Number(label="Total", value=90)
            people = gr.Number(label="People", value=3, precision=0)
            tip = gr.Slider(0, 30, value=10, step=1, label="Tip %")
            share = gr.Textbox(label="Each pays", elem_id="share")
            gr.Button("Split").click(split_bill, [total, people, tip], share, api_name="split_bill")

if __name__ == "__main__":
    demo.launch()
