"""The apps of Ray's own tests of its Gradio integration (python/ray/serve/tests/test_gradio.py),
against our drop-in: a builder, a user-defined subclass, and two replicas."""

import os

import gradio as gr
from ray import serve

from serving import GradioIngress, GradioServer


def greet(name):
    return f"Good morning {name}!"


def builder():
    return gr.Interface(fn=greet, inputs="text", outputs="text")


@serve.deployment
class UserDefinedGradioServer(GradioIngress):
    def __init__(self):
        super().__init__(builder)


def pid(*args):
    return os.getpid()


builder_app = GradioServer.bind(builder)
subclass_app = UserDefinedGradioServer.bind()
scaled_app = GradioServer.options(num_replicas=2, ray_actor_options={"num_cpus": 0}).bind(
    lambda: gr.Interface(fn=pid, inputs="text", outputs="text")
)
