"""An app with a login and hidden errors, both set in the main block, as many apps set them.

Served, it must keep both: `python login_app.py` asks for the login and hides the text of an
exception ("The upstream Gradio app has raised an exception ..."), and so must every replica.
"""

import os

import gradio as gr


def divide(a: str, b: str) -> str:
    return str(float(a) / float(b))  # b = 0: ZeroDivisionError, whose text stays hidden


demo = gr.Interface(divide, [gr.Textbox(label="a"), gr.Textbox(label="b")], gr.Textbox(label="a / b"),
                    api_name="divide", flagging_mode="never")

if __name__ == "__main__":
    queued = demo.queue(max_size=20)  # launched under another name than the app's: the login was lost here
    queued.launch(auth=("ann", "s3cret"), server_port=int(os.environ.get("PORT", "7860")))
