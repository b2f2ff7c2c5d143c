"""A gr.Interface, text in and text out: turn a title into a URL slug."""

import re
import unicodedata

import gradio as gr


def slugify(title: str, separator: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    if not words:
        raise gr.Error("Nothing to slugify: type a title with letters or digits.")
    return (separator or "-").join(words)


demo = gr.Interface(
    fn=slugify,
    inputs=[gr.Textbox(label="Title", placeholder="Crème Brûlée: 10 Tips!"),
            gr.Radio(["-", "_"], value="-", label="Separator")],
    outputs=gr.Textbox(label="Slug"),
    title="Slugify",
    api_name="slugify",
    flagging_mode="never",
)

if __name__ == "__main__":
    demo.launch()
