"""Beyond one machine: `gradio-serve up --address`, `gradio-serve export` + `serve deploy`, and
autoscaling, on a real two-node Ray cluster that this module starts with the `ray start` CLI.

The cluster is ours alone: its own GCS/dashboard/agent ports, its own short temp dir, its own
token (Ray 2.60 token auth stays on: RAY_AUTH_MODE=token with RAY_AUTH_TOKEN_PATH pointing at a
fresh token file, so nothing here reads or writes ~/.ray/auth_token). Each `ray start --block`
runs in its own session; teardown ends those sessions by PID (never `ray stop`, which would end
every Ray on the machine) and checks that none of their processes survives.

Timings on the 2-core dev machine (shared with other test runs): cluster up 14-20 s, fan-out app
RUNNING on it 24-35 s, `serve deploy` to RUNNING 16-22 s; under load Serve's target reaches 2 after
15-36 s (handle metrics are pushed every 10 s) and the second replica runs 6-21 s later; back to 1
replica 16-44 s after the load stops (look-back 30 s, downscale delay 20 s). The module: 2.7-4.2 min.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from ray_cluster import RayCluster
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
HEAD_CPUS, WORKER_CPUS = 1, 2
ARTICLE = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower."
)

# A second Serve app, deployed before ours by another driver: it must outlive our app.
OTHER_APP = """
import sys, ray
from ray import serve
ray.init(address=sys.argv[1], namespace="other-team", log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[2])})

@serve.deployment(ray_actor_options={"num_cpus": 0})
def other():
    return "other app here"

serve.run(other.bind(), name="other", route_prefix="/other")
"""

DELETE_APP = """
import sys, ray
from ray import serve
ray.init(address=sys.argv[1], log_to_driver=False)
serve.delete(sys.argv[2])
"""


@pytest.fixture(scope="module")
def cluster(tiny_models):
    # Started after tiny_models, so the cluster's workers find the tiny models offline too.
    c = RayCluster(dict(os.environ), HEAD_CPUS, WORKER_CPUS)
    started = time.monotonic()
    try:
        c.start()
        print(f"\ncluster (2 nodes, {HEAD_CPUS + WORKER_CPUS} CPUs) up in {time.monotonic() - started:.1f} s")
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def serve_port(cluster):
    """Serve's HTTP port on the cluster, fixed by the first app deployed there (the other team's)."""
    port = free_port()
    cluster.driver(OTHER_APP, str(port))
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=30).text == "other app here"
    return port


@pytest.fixture
def env(serving_env, cluster):
    return {**serving_env, **cluster.auth_env}


def cli(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def last_status(up: Up) -> dict:
    return next(e for e in reversed(up.events) if e["event"] == "status")


def model_rows(up: Up) -> list[dict]:
    return [d for d in last_status(up)["deployments"] if d["name"].startswith("model")]


# -- autoscaling flags --------------------------------------------------------------------------------------

def test_autoscaling_flags_reach_the_config_and_the_exported_file(serving_env, tiny_models):
    import yaml

    run = cli(serving_env, "export", "--mode", "fanout", "--model", tiny_models["causal"], "--model", tiny_models["seq2seq"],
              "--min-replicas", "1", "--max-replicas", "3", "--max-replicas", "2", "--target-ongoing-requests", "1.5")
    assert run.returncode == 0, run.stderr
    deployments = yaml.safe_load(run.stdout)["applications"][0]["deployments"]
    scaling = [d["autoscaling_config"] for d in deployments if d["name"].startswith("model")]
    assert [(a["min_replicas"], a["max_replicas"], a["target_ongoing_requests"]) for a in scaling] == [
        (1, 3, 1.5), (1, 2, 1.5)]
    assert all("num_replicas" not in d for d in deployments if d["name"].startswith("model"))

    run = cli(serving_env, "up", "--model", tiny_models["seq2seq"], "--min-replicas", "3", "--max-replicas", "2")
    assert run.returncode == 2 and "models.0.autoscaling" in run.stdout and "min_replicas" in run.stdout, run.stdout
    run = cli(serving_env, "up", "--mode", "fanout", "--model", tiny_models["causal"], "--model", tiny_models["seq2seq"],
              "--max-replicas", "1", "--max-replicas", "2", "--max-replicas", "3")
    assert run.returncode == 2 and "--max-replicas was given 3 times for 2 models" in run.stdout, run.stdout


# -- errors before anything is deployed ---------------------------------------------------------------

def test_unreachable_address_is_a_clear_error(serving_env):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    run = cli(serving_env, "up", "--address", address, "--port", str(free_port()), timeout=90)
    assert run.returncode == 2, (run.stdout, run.stderr[-1000:])
    assert f"cannot reach the Ray cluster at {address}" in run.stdout
    assert time.monotonic() - started < 60  # not Ray's minutes of GCS retries


def test_cluster_errors_name_the_cluster_and_touch_nothing(cluster, serve_port, env, tiny_models):
    models = ["--model", tiny_models["causal"], "--model", tiny_models["instruct"]]
    # 2 models x 2 replicas x 2 CPUs = 8 CPUs > the cluster's 3.
    run = cli(env, "up", "--address", cluster.address, "--mode", "fanout", *models,
              "--replicas", "2", "--num-cpus", "2", "--port", str(serve_port))
    assert run.returncode == 2, (run.stdout, run.stderr[-1000:])
    assert "ask for 8 CPUs" in run.stdout and f"the Ray cluster has {HEAD_CPUS + WORKER_CPUS}" in run.stdout

    # Serve already runs there (the other app), on its own port: ours cannot pick another.
    other_port = free_port()
    run = cli(env, "up", "--address", cluster.address, "--mode", "fanout", *models,
              "--num-cpus", "0.5", "--port", str(other_port))
    assert run.returncode == 2, (run.stdout, run.stderr[-1000:])
    assert f"already listens on port {serve_port}, not {other_port}" in run.stdout
    assert f"--port {serve_port}" in run.stdout

    # Without the cluster's token, nothing gets in (token auth is on).
    assert httpx.get(f"{cluster.dashboard}/api/serve/applications/", timeout=30).status_code == 401
    assert set(cluster.serve_details()["applications"]) == {"other"}
    assert httpx.get(f"http://127.0.0.1:{serve_port}/other", timeout=30).text == "other app here"


# -- up --address ------------------------------------------------------------------------------------------

def test_up_on_cluster_spreads_replicas_and_stop_leaves_cluster_and_other_app(
        cluster, serve_port, env, tiny_models, tmp_path):
    refs = [tiny_models["causal"], tiny_models["instruct"]]
    started = time.monotonic()
    up = Up(["--address", cluster.address, "--mode", "fanout", "--model", refs[0], "--model", refs[1],
             "--replicas", "2", "--num-cpus", "0.5", "--port", str(serve_port)], env, tmp_path / "up.log")
    try:
        running = up.wait_running(timeout=240)
        print(f"\nfan-out RUNNING on the cluster in {time.monotonic() - started:.1f} s")
        assert running["url"] == f"http://127.0.0.1:{serve_port}/"

        outputs = Client(running["url"], verbose=False).predict("Once upon a time", api_name="/fanout")
        assert [o["label"].split(" · ")[0] for o in outputs] == refs
        assert all(o["value"].strip() for o in outputs)

        # Replicas of each model on both nodes (Serve spreads them; the nodes have distinct ids).
        apps = cluster.serve_details()["applications"]
        assert set(apps) == {"other", "gradio-serve"}
        nodes = cluster.node_ids()
        assert len(nodes) == 2
        for name, dep in apps["gradio-serve"]["deployments"].items():
            if name.startswith("model"):
                replica_nodes = [r["node_id"] for r in dep["replicas"] if r["state"] == "RUNNING"]
                assert len(replica_nodes) == 2 and set(replica_nodes) == nodes, (name, replica_nodes, nodes)
        for row in model_rows(up):
            assert (row["replicas_running"], row["replicas_target"]) == (2, 2), row

        status = cli(env, "status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["address"] == cluster.address
    finally:
        up.stop()
    assert up.proc.returncode == 0, up.events[-3:]
    assert up.events[-1]["phase"] == "stopped"

    # Only our app is gone: the cluster and the other app keep running.
    status = cluster.ray_status()
    assert status.returncode == 0 and status.stdout.count(" node_") == 2, status.stderr[-500:]
    deadline = time.monotonic() + 60
    while "gradio-serve" in cluster.serve_details()["applications"]:
        assert time.monotonic() < deadline, "our app was not deleted"
        time.sleep(1)
    assert set(cluster.serve_details()["applications"]) == {"other"}
    assert httpx.get(f"http://127.0.0.1:{serve_port}/other", timeout=30).text == "other app here"
    assert httpx.get(f"http://127.0.0.1:{serve_port}/", timeout=30).status_code == 404


def test_your_app_on_a_cluster_travels_as_working_dir(cluster, serve_port, env, tmp_path):
    """`up --address --app --reload`: the app's folder (a sibling module and a data file) is uploaded as Ray's
    working_dir and the replicas run in that copy, not in the original folder; a saved sibling module
    travels with the reload to that copy, and both replicas answer from it without a restart."""
    folder = tmp_path / "myapp"
    folder.mkdir()
    (folder / "words.txt").write_text("bonjour\n")
    (folder / "helpers.py").write_text("WORD = open('words.txt').read().strip()\n")
    (folder / "demo.py").write_text(
        "import os\nimport gradio as gr\nfrom helpers import WORD\n\n"
        "def greet(name):\n    return f'{WORD} {name} in {os.getcwd()}'\n\n"
        "demo = gr.Interface(greet, 'textbox', 'textbox', api_name='greet')\n")
    up = Up(["--address", cluster.address, "--app", str(folder / "demo.py"), "--replicas", "2", "--num-cpus", "0.5",
             "--port", str(serve_port), "--reload"], env, tmp_path / "up.log")
    try:
        running = up.wait_running(timeout=240)
        answer = Client(running["url"], verbose=False).predict("Ann", api_name="/greet")
        word, name, _, cwd = answer.split(" ", 3)
        assert (word, name) == ("bonjour", "Ann"), answer
        assert cwd != str(folder), "the replica ran in the original folder, not in the uploaded copy"
        replicas = cluster.serve_details()["applications"]["gradio-serve"]["deployments"]["app"]["replicas"]
        assert len([r for r in replicas if r["state"] == "RUNNING"]) == 2

        (folder / "helpers.py").write_text("WORD = 'salut'\n")  # a sibling module saved: the app reloads
        _t, said = up.wait_for(lambda e: e.get("event") == "log" and "reloaded" in e.get("message", ""), 120)
        assert "through Serve" in said["message"], said["message"]
        words = {Client(running["url"], verbose=False).predict("Ann", api_name="/greet").split()[0] for _ in range(6)}
        assert words == {"salut"}, f"a replica still answers the old module: {words}"
        after = cluster.serve_details()["applications"]["gradio-serve"]["deployments"]["app"]["replicas"]
        assert {r["replica_id"] for r in after} == {r["replica_id"] for r in replicas}, "replicas were restarted"
    finally:
        up.stop()
    assert up.proc.returncode == 0, up.events[-3:]
    deadline = time.monotonic() + 60
    while "gradio-serve" in cluster.serve_details()["applications"]:
        assert time.monotonic() < deadline, "our app was not deleted"
        time.sleep(1)
    assert httpx.get(f"http://127.0.0.1:{serve_port}/other", timeout=30).text == "other app here"


def test_a_serve_application_file_on_a_cluster_is_served_and_reloaded(cluster, serve_port, env, tmp_path):
    """`up --address --app FILE --reload` of a Serve application file (a GradioIngress subclass bound to two
    model deployments): deployed from a task on the cluster, in the uploaded copy of its folder; sessions stick
    through Serve's proxy; a save travels to that copy and new replicas of the changed deployment only serve it."""
    from test_serve_app import APP, ask

    folder = tmp_path / "fanout"
    folder.mkdir()
    (folder / "fanout.py").write_text(APP.format(version=0))
    up = Up(["--address", cluster.address, "--app", str(folder / "fanout.py"), "--port", str(serve_port), "--reload"],
            env, tmp_path / "up.log")
    try:
        url = up.wait_running(timeout=240)["url"]
        session = Client(url, verbose=False)
        answers = [ask(session) for _ in range(3)]
        assert [a[2] for a in answers] == [1, 2, 3] and {a[0] for a in answers} == {"v0"}, answers
        deployments = cluster.serve_details()["applications"]["gradio-serve"]["deployments"]
        assert {n: len(d["replicas"]) for n, d in deployments.items()} == {"app": 2, "Upper": 1, "Reverse": 1}
        models = {n: {r["replica_id"] for r in deployments[n]["replicas"]} for n in ("Upper", "Reverse")}

        (folder / "fanout.py").write_text(APP.format(version=1))
        _t, said = up.wait_for(lambda e: e.get("event") == "log" and "reloaded fanout.py" in e.get("message", ""), 180)
        assert "new replicas" in said["message"], said["message"]
        assert ask(Client(url, verbose=False))[0] == "v1"
        after = cluster.serve_details()["applications"]["gradio-serve"]["deployments"]
        assert {n: {r["replica_id"] for r in after[n]["replicas"]} for n in ("Upper", "Reverse")} == models
    finally:
        up.stop()
    assert up.proc.returncode == 0, up.events[-3:]


# -- export + serve deploy ---------------------------------------------------------------------------------

def test_exported_config_deploys_with_serve_deploy(cluster, serve_port, env, tiny_models, tmp_path):
    out = tmp_path / "serve-config.yaml"
    run = cli(env, "export", "--mode", "fanout", "--model", tiny_models["causal"], "--model", tiny_models["seq2seq"],
              "--num-cpus", "0.5", "--replicas", "2", "--replicas", "1", "--port", str(serve_port), "-o", str(out))
    assert run.returncode == 0, run.stderr

    # `serve deploy` talks to the dashboard's REST API on the head (not the GCS port), with the token.
    started = time.monotonic()
    deploy = subprocess.run([str(BIN / "serve"), "deploy", str(out), "--address", cluster.dashboard],
                            check=False, env={**env, "RAY_USAGE_STATS_ENABLED": "0"}, capture_output=True, text=True, timeout=120)
    assert deploy.returncode == 0, deploy.stderr[-2000:]
    try:
        deadline = time.monotonic() + 240
        while True:
            app = cluster.serve_details()["applications"].get("gradio-serve") or {}
            assert app.get("status") != "DEPLOY_FAILED", app.get("message")
            if app.get("status") == "RUNNING":
                break
            assert time.monotonic() < deadline, f"not RUNNING in 240 s: {app.get('status')}"
            time.sleep(1)
        print(f"\nexported app RUNNING via `serve deploy` in {time.monotonic() - started:.1f} s")
        deps = app["deployments"]
        model_deps = {n: d for n, d in deps.items() if n.startswith("model")}
        assert sorted(model_deps) == ["model0", "model1"]
        assert [model_deps[n]["target_num_replicas"] for n in sorted(model_deps)] == [2, 1]
        assert all(d["deployment_config"]["ray_actor_options"]["num_cpus"] == 0.5 for d in model_deps.values())

        outputs = Client(f"http://127.0.0.1:{serve_port}/", verbose=False).predict("Hello there", api_name="/fanout")
        assert [o["label"].split(" · ")[0] for o in outputs] == [tiny_models["causal"], tiny_models["seq2seq"]]
        assert all(o["value"].strip() for o in outputs)

        # `up` does not take over (nor, on failing, delete) an app of the same name it did not deploy.
        run = cli(env, "up", "--address", cluster.address, "--model", tiny_models["seq2seq"], "--port", str(serve_port))
        assert run.returncode == 2 and "already runs on the Ray cluster" in run.stdout, run.stdout
        assert cluster.serve_details()["applications"]["gradio-serve"]["status"] == "RUNNING"
    finally:
        cluster.driver(DELETE_APP, "gradio-serve")
    assert set(cluster.serve_details()["applications"]) == {"other"}


def test_an_exported_serve_application_file_runs_on_the_cluster(cluster, serve_port, env, tmp_path):
    """`gradio-serve export --app FILE` of a Serve application file (a GradioIngress subclass bound to two
    model deployments), run with `serve run` of the exported config: the file's deployments as it declares
    them (2 replicas of its ingress), named and sticky as `gradio-serve up` serves it."""
    import yaml
    from test_serve_app import APP, ask

    (tmp_path / "fanout.py").write_text(APP.format(version=7))
    out = tmp_path / "serve-config.yaml"
    run = cli(env, "export", "--app", str(tmp_path / "fanout.py"), "--port", str(serve_port), "-o", str(out))
    assert run.returncode == 0, run.stderr
    exported = yaml.safe_load(out.read_text())["applications"][0]
    assert exported["import_path"] == "serving.apps:serve_app_file" and exported["args"] == {"target": "fanout.py"}
    assert "deployments" not in exported, "the file's own options would be overridden"

    # The folder as a `local://` URI: the cluster's machines are this one.
    deploy = subprocess.run([str(BIN / "serve"), "run", "--non-blocking", "--address", cluster.address, str(out)],
                            check=False, env={**env, "RAY_USAGE_STATS_ENABLED": "0"}, capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert deploy.returncode == 0, deploy.stderr[-2000:]
    try:
        deadline = time.monotonic() + 240
        while (app := cluster.serve_details()["applications"].get("gradio-serve") or {}).get("status") != "RUNNING":
            assert app.get("status") != "DEPLOY_FAILED", app.get("message")
            assert time.monotonic() < deadline, f"not RUNNING in 240 s: {app.get('status')}"
            time.sleep(1)
        replicas = {name: d["target_num_replicas"] for name, d in app["deployments"].items()}
        assert replicas == {"app": 2, "Upper": 1, "Reverse": 1}, replicas
        session = Client(f"http://127.0.0.1:{serve_port}/", verbose=False)
        answers = [ask(session) for _ in range(3)]  # through Serve's proxy: its router keeps the session
        assert [a[2] for a in answers] == [1, 2, 3] and {a[0] for a in answers} == {"v7"}, answers
    finally:
        cluster.driver(DELETE_APP, "gradio-serve")


# -- autoscaling ------------------------------------------------------------------------------------------------

def test_autoscaling_adds_a_replica_under_load_and_removes_it(cluster, serve_port, env, tiny_models, tmp_path):
    up = Up(["--address", cluster.address, "--model", tiny_models["seq2seq"], "--num-cpus", "0.5",
             # A low target: most of a tiny model's request time is spent in the client and the
             # ingress, so the model replica sees few ongoing requests even under steady load.
             "--min-replicas", "1", "--max-replicas", "2", "--target-ongoing-requests", "0.25",
             "--port", str(serve_port)], env, tmp_path / "up.log")
    stop_load = threading.Event()
    answers, failures = [], []

    def load():
        client = Client(f"http://127.0.0.1:{serve_port}/", verbose=False)
        while not stop_load.is_set():
            try:
                answers.append(client.predict(ARTICLE, api_name="/summarize"))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures.append(repr(exc))

    def wait_rows(pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = model_rows(up)
            if pred(rows[0]):
                return time.monotonic()
            time.sleep(0.5)
        raise AssertionError(f"not within {timeout} s: {model_rows(up)}")

    try:
        up.wait_running(timeout=180)
        wait_rows(lambda r: (r["replicas_running"], r["replicas_target"]) == (1, 1), 30)

        workers = [threading.Thread(target=load, daemon=True) for _ in range(8)]  # 8 concurrent, loopback
        load_started = time.monotonic()
        for w in workers:
            w.start()
        try:
            targeted = wait_rows(lambda r: r["replicas_target"] == 2, 120)  # the status shows target 2 ...
            scaled = wait_rows(lambda r: r["replicas_running"] == 2, 90)  # ... then 2 running
        finally:
            stop_load.set()
            for w in workers:
                w.join(timeout=60)
        load_s = time.monotonic() - load_started
        print(f"\nunder load: target 2 after {targeted - load_started:.1f} s, 2 running after "
              f"{scaled - load_started:.1f} s; {len(answers)} answers in {load_s:.1f} s")
        assert answers and not failures, failures[:3]
        assert all(isinstance(a, str) and a.strip() for a in answers)

        idle = time.monotonic()
        down = wait_rows(lambda r: (r["status"], r["replicas_running"], r["replicas_target"]) == ("HEALTHY", 1, 1), 120)
        print(f"back to 1 replica {down - idle:.1f} s after the load stopped")
        text = cli(env, "status")
        row = next(line for line in text.stdout.splitlines() if line.startswith("model0 "))
        assert text.returncode == 0 and row.split()[1:3] == ["HEALTHY", "1/1"], text.stdout
    finally:
        stop_load.set()
        up.stop()
    assert up.proc.returncode == 0, up.events[-3:]
    assert "gradio-serve" not in cluster.serve_details()["applications"]
