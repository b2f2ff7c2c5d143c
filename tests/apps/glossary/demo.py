"""An app with a sibling module and a data file next to it, opened by a relative path."""

import gradio as gr
from lookup import define, load_terms  # a sibling module: the app's folder is on sys.path

TERMS = load_terms("data/terms.csv")  # relative to the app's folder (the working directory)


def lookup(term: str) -> str:
    try:
        return define(TERMS, term)
    except KeyError:
        raise gr.Error(f"Unknown term {term!r}. Try one of: {', '.join(sorted(TERMS))}.") from None


with gr.Blocks(title="Glossary") as demo:
    term = gr.Dropdown(sorted(TERMS), label="Term", allow_custom_value=True)
    definition = gr.Textbox(label="Definition", elem_id="definition")
    gr.Button("Define").click(lookup, term, definition, api_name="define")
    gr.Markdown(f"{len(TERMS)} terms loaded.")

if __name__ == "__main__":
    demo.launch()
