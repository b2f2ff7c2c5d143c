"""A user's Serve application file (Ray's guide's way: `class MyServer(GradioIngress)` bound to model
deployments) served by `gradio-serve up --app FILE`, and reloaded on save: the inspector's verdicts, then
end to end with two replicas of the ingress and two model deployments of the file's own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client
from supervisor_run import Up, free_port

GUIDE = Path(__file__).parent / "guide"

APP = '''import asyncio
import os

import gradio as gr
from ray import serve

from serving import GradioIngress

VERSION = "v{version}"


@serve.deployment(ray_actor_options={{"num_cpus": 0.25}})
class Upper:
    def __call__(self, text):
        return text.upper()


@serve.deployment(ray_actor_options={{"num_cpus": 0.25}})
class Reverse:
    def __call__(self, text):
        return text[::-1]


@serve.deployment(num_replicas=2, ray_actor_options={{"num_cpus": 0.25}})
class FanOut(GradioIngress):
    def __init__(self, upper, reverse):
        self._upper, self._reverse = upper, reverse
        super().__init__(self.build)

    def build(self):
        with gr.Blocks() as demo:
            count = gr.State(0)
            box, out, n = gr.Textbox(), gr.Textbox(), gr.Number()
            gr.Button().click(self.fanout, [box, count], [out, count, n], api_name="fanout")
        return demo

    async def fanout(self, text, count):
        up, back = await asyncio.gather(self._upper.remote(text), self._reverse.remote(text))
        return f"{{VERSION}} {{up}} {{back}} {{os.getpid()}}", count + 1, count + 1


app = FanOut.bind(Upper.bind(), Reverse.bind())
'''
BROKEN_LINE = 37  # `async def fanout(self, text, count)` without its colon


def inspect(target: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "serving.replica.app_target", target, "--json"],
                         check=False, capture_output=True, text=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_inspector_finds_the_guides_serve_application():
    found = inspect(str(GUIDE / "demo_parallel.py"))  # no NAME: the one application with a Gradio ingress
    assert found["ok"] and found["serve_app"], found
    assert (found["name"], found["kind"]) == ("app", "Serve app: MyGradioServer + 2 deployments"), found


def test_the_inspector_refuses_what_it_cannot_serve_and_says_what_to_do():
    model_only = inspect(f"{GUIDE / 'demo_parallel.py'}:app1")
    assert not model_only["ok"], model_only
    assert "ingress TextGenerationModel is not a Gradio app" in model_only["error"], model_only
    assert "serve run" in model_only["hint"], model_only
    several = inspect(str(GUIDE / "ray_gradio_tests.py"))
    assert not several["ok"] and "builder_app, subclass_app, scaled_app" in several["error"], several
    assert several["hint"].endswith("ray_gradio_tests.py:builder_app"), several


def ask(client: Client) -> tuple[str, int, int]:
    """(the answer's version and text, its replica pid, the session's count)."""
    text, count = client.predict("abc", api_name="/fanout")
    version, up, back, pid = text.split()
    assert (up, back) == ("ABC", "cba"), text  # both of the file's model deployments answered
    return version, int(pid), int(count)


@pytest.mark.slow
def test_a_serve_application_file_is_served_sticky_and_reloaded_on_save(serving_env, tmp_path):
    app = tmp_path / "fanout.py"
    app.write_text(APP.format(version=0))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    up = Up(["--app", str(app), "--reload", "--num-cpus", "0.5", "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        up.wait_running(300)
        status = [e for e in up.events if e.get("event") == "status"][-1]
        assert {d["name"]: d["replicas_target"] for d in status["deployments"]} == {"app": 2, "Upper": 1, "Reverse": 1}
        warned = [e["message"] for e in up.events if e.get("event") == "log" and e.get("level") == "warning"]
        assert any(w.startswith("--num-cpus 0.5: not applied") for w in warned), warned

        # One session keeps its replica and its gr.State (the router the file did not set is ours).
        session = Client(url, verbose=False)
        answers = [ask(session) for _ in range(3)]
        assert [a[2] for a in answers] == [1, 2, 3], answers
        assert len({a[1] for a in answers}) == 1 and answers[0][0] == "v0", answers
        # New sessions take turns over the file's 2 replicas of its ingress.
        assert len({ask(Client(url, verbose=False))[1] for _ in range(4)}) == 2

        app.write_text(APP.format(version=1).replace("def fanout(self, text, count):", "def fanout(self, text, count)"))
        _t, said = up.wait_for(lambda e: e.get("event") == "log" and "not reloaded" in e.get("message", ""), 60)
        assert f"{app}, line {BROKEN_LINE}" in said["message"], said["message"]
        assert ask(session)[::2] == ("v0", 4), "the broken save replaced the running version"

        models = up.replica_pids("Upper") + up.replica_pids("Reverse")
        app.write_text(APP.format(version=2))
        saved = time.monotonic()
        _t, said = up.wait_for(lambda e: e.get("event") == "log" and "reloaded fanout.py" in e.get("message", ""),
                               180)
        assert "new replicas" in said["message"], said["message"]
        assert len(models) == 2, models
        fresh = Client(url, verbose=False)
        assert ask(fresh)[::2] == ("v2", 1), "a new client did not get the saved code"
        # Only the deployment whose code changed has new replicas: the models' code did not.
        assert up.replica_pids("Upper") + up.replica_pids("Reverse") == models
        print(f"save to the new code answering: {time.monotonic() - saved:.1f} s; {said['message']}")
    finally:
        up.stop()


@pytest.mark.slow
def test_a_serve_application_imported_from_a_sibling_file_is_found_and_served(serving_env, tmp_path):
    """main.py binds nothing itself, so it is deployed as a Gradio app while it is imported aside
    (serving/cluster/app_inspection.py); the import finds the Serve application it imports, which is then
    deployed as one, its deployments' code going by value from the folder's modules."""
    (tmp_path / "fanout.py").write_text(APP.format(version=0))
    main = tmp_path / "main.py"
    main.write_text("from fanout import app  # noqa: F401\n")
    port = free_port()
    up = Up(["--app", str(main), "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        up.wait_running(300)
        found = [e["message"] for e in up.events if e.get("event") == "log" and e["message"].startswith("found ")]
        assert found and "Serve app: FanOut + 2 deployments" in found[0], found
        status = [e for e in up.events if e.get("event") == "status"][-1]
        assert {d["name"]: d["replicas_target"] for d in status["deployments"]} == {"app": 2, "Upper": 1, "Reverse": 1}
        assert ask(Client(f"http://127.0.0.1:{port}/", verbose=False))[::2] == ("v0", 1)
    finally:
        up.stop()
