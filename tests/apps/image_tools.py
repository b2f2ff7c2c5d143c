"""Images in and out: flip, mirror, grayscale or invert a picture (PIL)."""

import gradio as gr
from PIL import Image, ImageOps

EFFECTS = {
    "mirror": ImageOps.mirror,
    "flip": ImageOps.flip,
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "invert": ImageOps.invert,
}


def apply_effect(image: Image.Image | None, effect: str) -> Image.Image:
    if image is None:
        raise gr.Error("Upload an image first.")
    return EFFECTS[effect](image.convert("RGB"))


with gr.Blocks(title="Image tools") as demo:
    with gr.Row():
        source = gr.Image(type="pil", label="Your image", elem_id="source")
        result = gr.Image(type="pil", format="png", label="Result", elem_id="result")
    effect = gr.Radio(list(EFFECTS), value="mirror", label="Effect")
    gr.Button("Apply", variant="primary").click(apply_effect, [source, effect], result, api_name="apply_effect")

if __name__ == "__main__":
    demo.launch()
