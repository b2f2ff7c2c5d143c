# Ray's guide "Scale a Gradio App with Ray Serve", parallel example
# (doc_code/gradio-integration-parallel.py), with two changes: our import instead of
# `from ray.serve.gradio_integrations import GradioIngress`, and tiny local models instead of
# gpt2 / distilgpt2 (nothing can be downloaded here).
# __doc_import_begin__
from ray import serve
from ray.serve.handle import DeploymentHandle
from serving import GradioIngress

import gradio as gr

import asyncio
from transformers import pipeline

# __doc_import_end__


# __doc_models_begin__
@serve.deployment
class TextGenerationModel:
    def __init__(self, model_name):
        self.generator = pipeline("text-generation", model=model_name)

    def __call__(self, text):
        generated_list = self.generator(
            text, do_sample=True, min_length=20, max_length=100
        )
        generated = generated_list[0]["generated_text"]
        return generated


app1 = TextGenerationModel.bind("tiny-random/gpt2")
app2 = TextGenerationModel.bind("tiny-random/chat")
# __doc_models_end__


# __doc_gradio_server_begin__
@serve.deployment
class MyGradioServer(GradioIngress):
    def __init__(
        self, downstream_model_1: DeploymentHandle, downstream_model_2: DeploymentHandle
    ):
        self._d1 = downstream_model_1
        self._d2 = downstream_model_2

        super().__init__(lambda: gr.Interface(self.fanout, "textbox", "textbox"))

    async def fanout(self, text):
        [result1, result2] = await asyncio.gather(
            self._d1.remote(text), self._d2.remote(text)
        )
        return (
            f"[Generated text version 1]\n{result1}\n\n"
            f"[Generated text version 2]\n{result2}"
        )
        # __doc_gradio_server_end__


# __doc_app_begin__
app = MyGradioServer.bind(app1, app2)
# __doc_app_end__
