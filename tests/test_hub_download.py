"""Hub models fetched before deploying (serving/cluster/hub_download.py), against tests/fake_hub.py: a real
HTTP server speaking the Hub's file API, real huggingface_hub, real files (a tiny GPT-2 and a tiny chat
model built with save_pretrained). No Ray: the supervisor's step is called as it calls it, and once
through `gradio-serve up --events`, killed mid-download."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_hub import FakeHub
from tiny_models import build_tiny_models, commit_hash, repo_folder

from serving.cluster import hub_download
from serving.core import catalog
from serving.core.config import ConfigError, LaunchConfig
from serving.core.events import EventWriter
from serving.core.model_cache import snapshot_complete
from serving.core.preflight import StartError

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def tiny_files(request, tmp_path_factory) -> dict[str, Path]:
    """The tiny models' snapshot folders (built once into the pytest cache, as conftest's tiny_models)."""
    cache = request.config.cache.mkdir("tiny-models")
    build_tiny_models(cache)
    return {repo: repo_folder(cache, repo) / "snapshots" / commit_hash(repo) for repo in ("tiny-random/gpt2",
                                                                                          "tiny-random/chat")}


@pytest.fixture
def hub(tiny_files, tmp_path, monkeypatch):
    """A fake Hub with org/gpt2 (plus what serving must not fetch) and org/chat, an empty cache, online."""
    from huggingface_hub import constants

    server = FakeHub()
    extra = {"pytorch_model.bin": os.urandom(50_000), "onnx/model.onnx": b"onnx", "README.md": b"# gpt2",
             "tf_model.h5": b"h5", ".gitattributes": b"*.bin filter=lfs"}
    server.add_folder("org/gpt2", tiny_files["tiny-random/gpt2"], extra)
    server.add_folder("org/chat", tiny_files["tiny-random/chat"])
    server.start()
    cache = tmp_path / "hub"
    for name, value in {"HF_HUB_CACHE": str(cache), "HF_ENDPOINT": server.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                        "GRADIO_SERVE_STATE_DIR": str(tmp_path / "state"),
                        "GRADIO_SERVE_LOG_DIR": str(tmp_path / "logs")}.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub reads these once, at import (conftest's tiny_models may have turned offline on).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    yield server
    server.die()


class Recorder(EventWriter):
    def __init__(self):
        super().__init__(io.StringIO(), as_json=True)
        self.events: list[dict] = []

    def emit(self, event, **fields):
        super().emit(event, **fields)
        self.events.append({"event": event, **fields})

    def downloads(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "download"]


def fetch(model: str, stop: threading.Event | None = None, **kw):
    """The supervisor's step: resolve the slot's model, then fetch what is missing."""
    config = LaunchConfig.from_dict({"mode": "fanout", "models": [{"model": model}, {"model": model}]})
    events = Recorder()
    entries = hub_download.fetch_missing(catalog.resolve_models(config), config.models, events,
                                         stop or threading.Event(), **kw)
    return entries, events


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_matches(snapshot: Path, source: Path) -> None:
    for f in source.iterdir():
        assert sha(snapshot / f.name) == sha(f), f.name


def stop_after(stop: threading.Event, events: Recorder, fraction: float) -> threading.Thread:
    """Set `stop` once the download events pass `fraction` of the bytes."""
    def watch():
        while not stop.is_set():
            d = events.downloads()
            if d and d[-1]["done_bytes"] >= fraction * d[-1]["total_bytes"] and not d[-1]["finished"]:
                stop.set()
            time.sleep(0.02)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def gets(server: FakeHub, name: str) -> list[str | None]:
    """The Range header of each GET of `name`."""
    return [rng for method, path, rng in server.requests if method == "GET" and path.endswith("/" + name)]


# -- what is fetched, and how it shows ---------------------------------------------------------------


def test_only_what_serving_loads_is_fetched_and_a_second_start_needs_no_network(hub, tiny_files):
    entries, events = fetch("org/gpt2")
    snapshot = Path(entries[0].path)
    assert entries[0].source == "cache" and entries[0].available_offline and snapshot_complete(snapshot)
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(p.name for p in tiny_files["tiny-random/gpt2"].iterdir())
    assert_matches(snapshot, tiny_files["tiny-random/gpt2"])
    assert not any("pytorch_model.bin" in p or "onnx" in p or ".h5" in p for _, p, _ in hub.requests)
    assert (snapshot.parent.parent / "refs" / "main").read_text() == hub.commit("org/gpt2").sha
    last = events.downloads()[-1]
    assert last["finished"] and last["done_bytes"] == last["total_bytes"] == sum(
        f.stat().st_size for f in tiny_files["tiny-random/gpt2"].iterdir())
    assert len({e["model"] for e in events.downloads()}) == 1  # two slots, one download
    hub.requests.clear()
    again, events = fetch("org/gpt2")
    assert again[0].path == str(snapshot) and hub.requests == [] and events.downloads() == []


def test_a_repo_without_safetensors_gets_its_bin_and_only_that():
    names = ["config.json", "pytorch_model.bin", "tf_model.h5", "tokenizer.json", "training_args.bin", "vocab.txt",
             "flax_model.msgpack", "onnx/model.onnx", "modeling_x.py"]
    assert hub_download.wanted_files(names) == ["config.json", "pytorch_model.bin", "tokenizer.json", "vocab.txt"]
    assert "modeling_x.py" in hub_download.wanted_files(names, trust_remote_code=True)
    sharded = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
               "pytorch_model.bin", "consolidated.safetensors", "config.json"]
    assert hub_download.wanted_files(sharded) == ["config.json", *sharded[:3]]


def test_progress_says_bytes_speed_and_time_left(hub):
    hub.bytes_per_s = 400_000
    _, events = fetch("org/gpt2")
    moving = [e for e in events.downloads() if not e["finished"] and e["bytes_per_s"] > 0]
    assert len(moving) >= 3, events.downloads()
    assert all(100_000 < e["bytes_per_s"] < 800_000 for e in moving[1:]), moving  # measured, near the server's pace
    assert all(e["eta_s"] is not None for e in moving)
    etas = [e["eta_s"] for e in moving]
    assert etas[-1] < etas[0]
    done = [e["done_bytes"] for e in events.downloads()]
    assert done == sorted(done)


def test_the_terminal_line_is_rewritten_in_place_and_a_log_gets_plain_lines():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    def run(stream):
        writer = EventWriter(stream)
        for done in range(0, 101, 5):
            writer.emit("download", model="org/gpt2", done_bytes=done * 10_000, total_bytes=1_000_000,
                        bytes_per_s=250_000.0, eta_s=(100 - done) * 0.04)
        writer.emit("download", model="org/gpt2", done_bytes=1_000_000, total_bytes=1_000_000, finished=True)
        writer.emit("log", level="info", message="next")
        return stream.getvalue()

    tty = run(Terminal())
    assert tty.count("\r") == 22 and tty.count("\n") == 2  # one line, ended when done; then the log line
    assert "Downloading org/gpt2: 45% · 450.0 kB of 1.0 MB · 250.0 kB/s · 2 s left" in tty
    plain = run(io.StringIO()).splitlines()
    assert "\r" not in "".join(plain) and len(plain) == 13  # every 10%, the end, the log line
    assert plain[-2] == "Downloaded org/gpt2: 1.0 MB"


# -- stop, kill, resume -------------------------------------------------------------------------------


def stopped_partway(hub) -> Recorder:
    """A download of org/gpt2 (asked for by two slots) at 300 kB/s, stopped after 0.4 s: its events."""
    hub.bytes_per_s = 300_000
    stop = threading.Event()
    config = LaunchConfig.from_dict({"mode": "fanout", "models": [{"model": "org/gpt2"}, {"model": "org/gpt2"}]})
    events = Recorder()
    stop_after(stop, events, 0.4)
    hub_download.fetch_missing(catalog.resolve_models(config), config.models, events, stop)
    return events


def test_stop_keeps_what_came_and_the_next_start_continues_from_there(hub, tiny_files):
    events = stopped_partway(hub)
    said = [e for e in events.events if e["event"] == "phase"]
    assert said and said[-1]["phase"] == "stopped" and "next start continues" in said[-1]["message"]
    parts = list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < (tiny_files["tiny-random/gpt2"] / WEIGHTS).stat().st_size
    kept = parts[0].stat().st_size
    hub.bytes_per_s = None
    hub.requests.clear()
    entries, events = fetch("org/gpt2")
    assert gets(hub, WEIGHTS) == [f"bytes={kept}-"]
    assert events.downloads()[0]["done_bytes"] >= kept  # the bar starts where it stopped
    assert_matches(Path(entries[0].path), tiny_files["tiny-random/gpt2"])
    assert not list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))


def test_a_supervisor_killed_mid_download_is_continued_by_the_next_start(hub, tiny_files, tmp_path):
    """`gradio-serve up --events` for a Hub model, SIGKILLed mid-file; the next start asks for the rest."""
    hub.bytes_per_s = 250_000
    size = (tiny_files["tiny-random/chat"] / WEIGHTS).stat().st_size
    proc = subprocess.Popen([sys.executable, "-m", "serving", "up", "--model", "org/chat", "--events",
                             "--port", "18931"], cwd=ROOT, env=dict(os.environ), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = []
    try:
        for line in proc.stdout:
            event = json.loads(line)
            seen.append(event)
            if event["event"] == "download" and event["done_bytes"] > 0.3 * event["total_bytes"]:
                break
            assert event["event"] != "error", event
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert any(e["event"] == "download" for e in seen), seen
    parts = list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))
    assert len(parts) == 1
    kept = parts[0].stat().st_size
    assert 0 < kept < size
    hub.bytes_per_s = None
    hub.requests.clear()
    config = LaunchConfig.from_dict({"models": [{"model": "org/chat"}]})
    entries = hub_download.fetch_missing(catalog.resolve_models(config), config.models, Recorder(), threading.Event())
    assert gets(hub, WEIGHTS) == [f"bytes={kept}-"]
    assert_matches(Path(entries[0].path), tiny_files["tiny-random/chat"])
    assert catalog.resolve("org/chat").available_offline


def test_a_file_changed_on_the_server_is_fetched_anew(hub, tiny_files):
    stopped_partway(hub)
    assert len(list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))) == 1
    old = hub.commit("org/gpt2")
    changed = dict(old.files)
    changed[WEIGHTS] = changed[WEIGHTS][:-1000] + os.urandom(1000)  # a new version, same size
    new = hub.add_repo("org/gpt2", changed)
    hub.bytes_per_s = None
    hub.requests.clear()
    entries, _ = fetch("org/gpt2")
    snapshot = Path(entries[0].path)
    assert snapshot.name == new.sha and (snapshot.parent.parent / "refs" / "main").read_text() == new.sha
    assert gets(hub, WEIGHTS) == [None]  # from the start: the old part was of another version
    assert sha(snapshot / WEIGHTS) == hashlib.sha256(changed[WEIGHTS]).hexdigest()
    assert not list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))


def test_a_file_changed_under_a_part_without_a_new_listing_is_caught_by_its_checksum(hub, tiny_files):
    """The server answers If-Range with the whole (new) file; its bytes do not match the etag planned."""
    p = hub_download.plan("org/gpt2", cache=Path(os.environ["HF_HUB_CACHE"]))
    commit = hub.commit("org/gpt2")
    commit.files[WEIGHTS] = os.urandom(len(commit.files[WEIGHTS]))  # the same commit, other bytes: a broken mirror
    progress = hub_download.Progress("org/gpt2", p.total, 0, lambda **_: None)
    with pytest.raises(StartError, match="checksum"):
        hub_download.download(p, progress, threading.Event())
    assert not list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))


def test_a_server_that_dies_mid_file(hub, tiny_files, monkeypatch):
    monkeypatch.setattr(hub_download, "RETRIES", 2)
    hub.bytes_per_s = 300_000
    config = LaunchConfig.from_dict({"models": [{"model": "org/chat"}]})
    entries = catalog.resolve_models(config)  # the config is read while the server lives
    events = Recorder()

    def kill_soon():
        while not any(e["done_bytes"] > 100_000 for e in events.downloads()):
            time.sleep(0.02)
        hub.die()

    threading.Thread(target=kill_soon, daemon=True).start()
    with pytest.raises(StartError, match=r"model.safetensors broke off at .* kB of 740.7 kB") as failed:
        hub_download.fetch_missing(entries, config.models, events, threading.Event())
    assert "continues from there" in failed.value.hint
    kept = next(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete")).stat().st_size
    assert kept > 100_000
    hub.bytes_per_s = None
    hub.requests.clear()
    hub.start(hub.port)  # back, at the same address
    done = hub_download.fetch_missing(entries, config.models, Recorder(), threading.Event())
    assert gets(hub, WEIGHTS) == [f"bytes={kept}-"]
    assert_matches(Path(done[0].path), tiny_files["tiny-random/chat"])


def test_a_connection_cut_mid_file_is_continued_in_the_same_start(hub, tiny_files):
    hub.cut_after[WEIGHTS] = 300_000
    entries, _ = fetch("org/gpt2")
    assert gets(hub, WEIGHTS) == [None, "bytes=300000-"]
    assert_matches(Path(entries[0].path), tiny_files["tiny-random/gpt2"])


# -- disk space ---------------------------------------------------------------------------------------


def test_too_little_space_is_refused_before_the_first_byte_with_both_figures(hub):
    with pytest.raises(StartError) as refused:
        fetch("org/gpt2", free=lambda _folder: 300_000)
    planned = hub_download.plan("org/gpt2", cache=Path(os.environ["HF_HUB_CACHE"]))
    need = hub_download.human_bytes(planned.total - planned.have_bytes)  # the config came first, to learn the kind
    assert f"needs {need}" in str(refused.value) and "only 300.0 kB free" in str(refused.value)
    assert "--remove" in refused.value.hint and "HF_HUB_CACHE" in refused.value.hint
    assert gets(hub, WEIGHTS) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_too_little_space_on_a_real_small_disk(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    disk = tmp_path / "small"
    disk.mkdir()
    # As root (CI is) the mount must work: a failure fails the test rather than hiding it.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], check=True)
    try:
        monkeypatch.setenv("HF_HUB_CACHE", str(disk / "hub"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(disk / "hub"))
        with pytest.raises(StartError, match=r"needs 9\d\d.\d kB in .*small/hub, which has only 5\d\d.\d kB free"):
            fetch("org/gpt2")
        assert gets(hub, WEIGHTS) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_offline_with_a_part_only_says_so(hub):
    stop = threading.Event()
    stop.set()
    fetch("org/gpt2", stop=stop)  # the config came (to learn the kind); the weights did not
    os.environ["HF_HUB_OFFLINE"] = "1"  # monkeypatch restores it (hub fixture deleted it)
    try:
        with pytest.raises(ConfigError, match="not \\(wholly\\) in the Hugging Face cache and downloads are off"):
            fetch("org/gpt2")
    finally:
        del os.environ["HF_HUB_OFFLINE"]


# -- the catalog: size on disk, remove -----------------------------------------------------------------


def test_the_catalog_shows_size_on_disk_and_models_remove_deletes_it(hub, capsys, tmp_path):
    import psutil

    from serving import cli
    from serving.core import paths
    from serving.core.protocol import SupervisorRecord

    stop = threading.Event()
    stop.set()
    fetch("org/chat", stop=stop)  # a part only: listed as partly downloaded
    fetch("org/gpt2")
    # Stopped before even its config came (killed between the plan and the first file): its bytes are listed.
    early = Path(os.environ["HF_HUB_CACHE"]) / "models--org--early" / "blobs"
    early.mkdir(parents=True)
    (early / "0123abcd.incomplete").write_bytes(b"x" * 4321)
    blobs = Path(os.environ["HF_HUB_CACHE"]) / "models--org--gpt2" / "blobs"
    size = sum(p.stat().st_size for p in blobs.iterdir())
    assert cli.main(["models", "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert listed["org/gpt2"]["size_on_disk"] == size and listed["org/gpt2"]["available_offline"]
    assert not listed["org/chat"]["available_offline"] and "partly" in listed["org/chat"]["description"]
    assert (listed["org/early"]["kind"], listed["org/early"]["size_on_disk"], listed["org/early"]["tasks"]) == (
        "unknown", 4321, [])
    assert cli.main(["models"]) == 0
    table = capsys.readouterr().out
    assert "SIZE" in table.splitlines()[0] and hub_download.human_bytes(size) in table

    # Not while it is served: a supervisor's record that names it (a live process that looks like one).
    serving_one = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "serving"])
    try:
        record = SupervisorRecord(pid=serving_one.pid, url="http://127.0.0.1:8000/", started=psutil.Process(serving_one.pid).create_time(),
                                  config={"models": [{"model": "org/gpt2"}]})
        paths.write_json_atomic(paths.supervisor_record(), record.as_json())
        assert cli.main(["models", "--remove", "org/gpt2"]) == 2
        assert "being served now" in capsys.readouterr().err
    finally:
        serving_one.kill()
        serving_one.wait()
    assert cli.main(["models", "--remove", "org/gpt2"]) == 0
    assert f"Removed org/gpt2 ({hub_download.human_bytes(size)} freed)" in capsys.readouterr().out
    assert not blobs.parent.exists()
    assert cli.main(["models", "--remove", "org/gpt2"]) == 2
    assert "not in the Hugging Face cache" in capsys.readouterr().err
    assert cli.main(["models", "--remove", "smollm2-135m-instruct"]) == 2
    assert "embedded model" in capsys.readouterr().err
    assert cli.main(["models", "--remove", "org/chat"]) == 0  # a stopped download goes too
    assert cli.main(["models", "--remove", "org/early"]) == 0
    assert not early.parent.exists()
    assert not list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))
