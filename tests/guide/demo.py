# Ray's guide "Scale a Gradio App with Ray Serve", quickstart (doc_code/gradio-integration.py),
# with two changes: our import instead of `from ray.serve.gradio_integrations import GradioServer`,
# and a tiny local model, because nothing can be downloaded here and transformers 5 removed the
# "summarization" pipeline (a text-generation pipeline stands in for it).
# __doc_import_begin__
from serving import GradioServer

import gradio as gr

from transformers import pipeline

# __doc_import_end__


# __doc_gradio_app_begin__
example_input = (
    "HOUSTON -- Men have landed and walked on the moon. "
    "Two Americans, astronauts of Apollo 11, steered their fragile "
    "four-legged lunar module safely and smoothly to the historic landing "
    "yesterday at 4:17:40 P.M., Eastern daylight time."
)


def gradio_summarizer_builder():
    summarizer = pipeline("text-generation", model="tiny-random/gpt2")

    def model(text):
        summary_list = summarizer(text, max_new_tokens=8)
        summary = summary_list[0]["generated_text"]
        return summary

    return gr.Interface(
        fn=model,
        inputs=[gr.Textbox(value=example_input, label="Input prompt")],
        outputs=[gr.Textbox(label="Model output")],
    )
    # __doc_gradio_app_end__


# __doc_app_begin__
app = GradioServer.options(ray_actor_options={"num_cpus": 4}).bind(
    gradio_summarizer_builder
)
# __doc_app_end__
