"""A streaming gr.ChatInterface: the bot answers word by word and knows which turn it is."""

import time

import gradio as gr


def reply(message: str, history: list) -> str:
    turn = 1 + sum(1 for m in history if m.get("role") == "user")
    words = f"Turn {turn}: you said {message!r} ({len(message)} characters).".split(" ")
    answer = ""
    for word in words:
        answer = f"{answer} {word}" if answer else word
        time.sleep(0.05)
        yield answer


demo = gr.ChatInterface(reply, title="Echo bot", api_name="chat")

if __name__ == "__main__":
    demo.launch()
