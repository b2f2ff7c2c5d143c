"""Gradio's MCP server (launch(mcp_server=True)): two tools, each saying which process served it.

served_by is not queued: Gradio runs it in the process that holds the MCP session. add is: Gradio runs
it through its own loopback client, on whichever replica that client's session is."""

import os

import gradio as gr


def served_by(text: str) -> str:
    """Gives the text back with the id of the process that served the call.

    Args:
        text: any text
    """
    return f"{text} (pid {os.getpid()})"


def add(a: float, b: float) -> str:
    """Adds two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return f"{a + b:g} (pid {os.getpid()})"


with gr.Blocks(title="MCP tools") as demo:
    text = gr.Textbox(label="Text")
    echo = gr.Textbox(label="Served by")
    gr.Button("Who").click(served_by, text, echo, api_name="served_by", queue=False)
    a, b, total = gr.Number(label="a"), gr.Number(label="b"), gr.Textbox(label="a + b")
    gr.Button("Add").click(add, [a, b], total, api_name="add")

if __name__ == "__main__":
    demo.launch(mcp_server=True, server_port=int(os.environ.get("PORT", "7860")))
