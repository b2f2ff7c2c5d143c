"""Bad input is refused before anything starts, with a message naming the field and the fix.

Each CLI case runs the real `gradio-serve` in a subprocess and checks that no Ray cluster
was started (no supervisor record written, exit code 2, fast).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
import yaml
from supervisor_run import ROOT, free_port

from serving.core.catalog import list_models, resolve
from serving.core.config import ConfigError, LaunchConfig, Mode, default_config
from serving.replica.ui import InputError, clean_input, describe_failure


def cli(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=timeout)


# -- the configuration model ------------------------------------------------------------

@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"modle": "x"}, "modle", "unknown field"),
        ({"models": [{"num_cpus": -1}]}, "models.0.num_cpus", "greater than 0"),
        ({"models": [{"num_gpus": -0.5}]}, "models.0.num_gpus", "greater than or equal to 0"),
        ({"mode": "fanout", "models": [{}]}, "config", "at least two models"),
        ({"mode": "summarize", "models": [{}, {}]}, "config", "exactly one model"),
        ({"mode": "translate"}, "mode", "summarize"),
        ({"http": {"port": 70000}}, "http.port", "less than or equal to 65535"),
        ({"http": {"host": "0.0.0.0"}}, "http", "username and password"),
        ({"models": [{"generation": {"min_new_tokens": 50, "max_new_tokens": 10}}]}, "models.0.generation", "exceed"),
        ({"models": [{"autoscaling": {"min_replicas": 3, "max_replicas": 2}}]}, "models.0.autoscaling", "exceed"),
        ({"models": [{"dtype": "int4"}]}, "models.0.dtype", "'bfloat16'"),
        ({"models": [{"generation": {"seed": -1}}]}, "models.0.generation.seed", "greater than or equal to 0"),
    ],
)
def test_bad_config_names_the_field(data, field, words):
    with pytest.raises(ConfigError) as err:
        LaunchConfig.from_dict(data)
    assert f"{field}:" in str(err.value) and words in str(err.value)


def test_network_host_with_a_password_is_allowed_and_loopback_is_default():
    assert LaunchConfig().http.host == "127.0.0.1"
    cfg = LaunchConfig.from_dict({"http": {"host": "0.0.0.0", "username": "u", "password": "p"}})
    assert cfg.url == f"http://127.0.0.1:{cfg.http.port}/"


def test_defaults_fit_two_cores_and_need_no_network():
    for mode in (Mode.summarize, Mode.fanout):  # mode app has no default: it serves the user's file
        cfg = default_config(mode)
        assert cfg.requested_cpus() <= 2 and cfg.requested_gpus() == 0
        assert all(resolve(s.model).available_offline for s in cfg.models)
        assert all(not s.trust_remote_code for s in cfg.models)


def test_mode_app_has_no_default_and_a_clear_error():
    with pytest.raises(ConfigError, match="--app demo.py"):
        default_config(Mode.app)
    cfg = LaunchConfig.from_dict({"mode": "app", "app": {"target": "/x/demo.py", "replicas": 2, "num_cpus": 0.5}})
    assert cfg.models == [] and cfg.requested_cpus() == 1.0 and cfg.deployments == [cfg.app]
    with pytest.raises(ConfigError, match="takes no models"):
        LaunchConfig.from_dict({"mode": "app", "app": {"target": "demo.py"}, "models": [{"model": "gpt2"}]})
    with pytest.raises(ConfigError, match="only used with mode app"):
        LaunchConfig.from_dict({"mode": "fanout", "app": {"target": "demo.py"}})
    with pytest.raises(ConfigError, match="app.max_ongoing_requests"):
        LaunchConfig.from_dict({"mode": "app", "app": {"target": "demo.py", "max_ongoing_requests": 2}})


def test_config_file_round_trip(tmp_path):
    cfg = default_config("fanout")
    path = tmp_path / "c.json"
    path.write_text(cfg.to_json())
    assert LaunchConfig.load(path) == cfg
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        LaunchConfig.load(path)


def test_catalog_knows_kinds_of_cached_models(tiny_models):
    kinds = {e.name: e.kind for e in list_models()}
    assert kinds[tiny_models["causal"]] == "causal"
    assert kinds[tiny_models["seq2seq"]] == "seq2seq"
    assert kinds[tiny_models["instruct"]] == "instruct"
    assert kinds["smollm2-135m-instruct"] == "instruct"
    assert resolve(tiny_models["causal"]).tasks == ["fanout"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None, "\x00\x01\x02"])
def test_empty_input_is_a_clear_message(text):
    with pytest.raises(InputError, match="enter some text"):
        clean_input(text)


def test_input_is_cleaned_not_refused():
    assert clean_input("a\x00b\u200fc 🙂") == "a b\u200fc 🙂"
    with pytest.raises(InputError, match="limit"):
        clean_input("x" * 300_000)


def test_model_failures_are_one_short_line():
    class Wrapped(Exception):
        cause = RuntimeError("CUDA out of memory.\nTraceback (most recent call last): ...")

    msg = describe_failure(Wrapped())
    assert "RuntimeError: CUDA out of memory." in msg and "Traceback" not in msg


# -- the CLI refuses before starting ----------------------------------------------------

def _refused(result, *words):
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    for w in words:
        assert w in out, out
    assert "Started a local Ray instance" not in out


def test_cli_unknown_model(serving_env, tiny_models):
    start = time.monotonic()
    r = cli(serving_env, "up", "--model", "no-such-org/no-such-model", "--port", str(free_port()))
    _refused(r, "unknown model 'no-such-org/no-such-model'", "gradio-serve models")
    assert time.monotonic() - start < 30


def test_cli_wrong_task_for_model(serving_env, tiny_models):
    r = cli(serving_env, "up", "--model", tiny_models["causal"], "--port", str(free_port()))
    _refused(r, "models.0.model", "cannot summarize", "--mode fanout")


def test_cli_fanout_with_one_model(serving_env):
    _refused(cli(serving_env, "up", "--mode", "fanout", "--model", "smollm2-135m-instruct"), "at least two models")


def test_cli_negative_cpus(serving_env):
    _refused(cli(serving_env, "up", "--num-cpus", "-2"), "models.0.num_cpus")


def test_cli_unknown_field_in_config_file(serving_env, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"mode": "summarize", "models": [{"model": "smollm2-135m-instruct", "cpus": 1}]}))
    _refused(cli(serving_env, "up", "--config", str(path)), "models.0.cpus", "unknown field")


def test_cli_port_in_use(serving_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _refused(cli(serving_env, "up", "--port", str(port)), f"port {port}", "already in use", "--port")


def test_cli_more_cpus_than_the_machine(serving_env):
    _refused(cli(serving_env, "up", "--num-cpus", "64", "--port", str(free_port())), "64 CPUs", "lower")


def test_cli_gpu_on_a_machine_without_one(serving_env):
    _refused(cli(serving_env, "up", "--num-gpus", "0.5", "--port", str(free_port())), "GPU", "num_gpus")


def test_cli_network_host_needs_a_password(serving_env):
    _refused(cli(serving_env, "up", "--host", "0.0.0.0"), "username and password")


def test_cli_status_and_down_when_nothing_runs(serving_env):
    status = cli(serving_env, "status")
    assert status.returncode == 3 and "Nothing is running" in status.stdout
    assert json.loads(cli(serving_env, "status", "--json").stdout) == {"running": False}
    down = cli(serving_env, "down")
    assert down.returncode == 0 and "Nothing is running" in down.stdout


def test_cli_models_lists_the_embedded_model_offline(serving_env, tiny_models):
    r = cli(serving_env, "models", "--json")
    assert r.returncode == 0, r.stderr
    entries = {e["name"]: e for e in json.loads(r.stdout)}
    emb = entries["smollm2-135m-instruct"]
    assert emb["available_offline"] and emb["source"] == "embedded" and emb["memory_mb"] > 500
    assert entries[tiny_models["seq2seq"]]["tasks"] == ["summarize", "fanout"]
    assert "smollm2-135m-instruct" in cli(serving_env, "models").stdout


def test_export_is_a_valid_serve_config(serving_env, tmp_path):
    from ray.serve.schema import ServeDeploySchema

    out = tmp_path / "serve-config.yaml"
    r = cli(serving_env, "export", "--mode", "fanout", "--replicas", "2", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(out.read_text())
    schema = ServeDeploySchema.model_validate(doc) if hasattr(ServeDeploySchema, "model_validate") else \
        ServeDeploySchema.parse_obj(doc)
    app = schema.applications[0]
    assert app.import_path == "serving.apps:builder"
    models = [d for d in doc["applications"][0]["deployments"] if d["name"].startswith("model")]
    # The default fan-out's two slots use one model: one deployment answers both (weights held once),
    # with the CPUs and requests of both slots.
    assert [(d["name"], d["num_replicas"], d["ray_actor_options"]["num_cpus"], d["max_ongoing_requests"])
            for d in models] == [("model0", 2, 2.0, 16)]
    assert LaunchConfig.from_dict(doc["applications"][0]["args"]["config"]).mode is Mode.fanout


@pytest.mark.parametrize(
    "address, url",
    [(None, "http://127.0.0.1:8000/"), ("auto", "http://127.0.0.1:8000/"), ("127.0.0.1:6379", "http://127.0.0.1:8000/"),
     ("head.lan:6379", "http://head.lan:8000/"), ("ray://10.0.0.5:10001", "http://10.0.0.5:8000/")],
)
def test_url_points_at_the_cluster_head(address, url):
    assert LaunchConfig.from_dict({"cluster": {"address": address}}).url == url


def test_unusable_cache_folder_falls_back_to_the_gguf(tmp_path, monkeypatch):
    """A cache path that cannot be created (read-only, or not a folder) is not fatal."""
    from serving.replica import models

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRADIO_SERVE_CACHE_DIR", str(blocker / "cache"))
    assert models.ensure_embedded_converted() is None


def test_disk_full_during_conversion_leaves_no_broken_cache(tmp_path, monkeypatch):
    import errno

    import transformers

    from serving.replica import models

    monkeypatch.setenv("GRADIO_SERVE_CACHE_DIR", str(tmp_path / "cache"))

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", full)
    assert models.ensure_embedded_converted() is None
    target = models.converted_embedded_dir()
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == []


def test_serving_never_imports_qt_and_the_supervisor_skips_torch():
    """serving/ is Qt-free; the supervisor builds the app without loading torch (replicas do)."""
    code = (
        "import sys, serving.cli, serving.cluster.supervisor, serving.replica.apps, serving.cluster.export, serving.core.catalog\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'torch', 'transformers'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_slots_of_one_model_share_a_deployment_unless_they_cannot():
    from serving.core.catalog import CatalogEntry
    from serving.core.config import Generation, ModelSlot
    from serving.replica.apps import slot_groups

    def entry(name, kind="instruct"):
        return CatalogEntry(name=name, kind=kind, source="folder", available_offline=True, path=f"/m/{name}")

    slots = [ModelSlot(model="a", label="greedy"),
             ModelSlot(model="a", label="sampling", generation=Generation(do_sample=True, seed=1)),
             ModelSlot(model="b"),
             ModelSlot(model="a", dtype="float32"),  # other weights in memory
             ModelSlot(model="a", replicas=2),  # other scaling
             ModelSlot(model="a", generation=Generation(num_beams=2)),  # beam search: generate(), one setting
             ModelSlot(model="a", num_gpus=0.5),  # GPUs: one per slot, as asked
             ModelSlot(model="a", label="third")]
    entries = [entry("a"), entry("a"), entry("b"), entry("a"), entry("a"), entry("a"), entry("a"), entry("a")]
    config = LaunchConfig(mode=Mode.fanout, models=slots)
    assert slot_groups(config, entries) == [[0, 1, 7], [2], [3], [4], [5], [6]]
    t5 = [entry("t", "seq2seq"), entry("t", "seq2seq")]
    assert slot_groups(LaunchConfig(mode=Mode.fanout, models=[ModelSlot(model="t")] * 2), t5) == [[0], [1]]
