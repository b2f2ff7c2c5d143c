"""`gradio-serve status` and `down` while `gradio-serve up` still downloads its Hub model (before any Ray):
real CLI processes against tests/fake_hub.py, slowed down so the download lasts. `down` finds the supervisor,
it exits, the part stays, and the next start asks only for the rest."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import test_hub_download as hub_tests
from supervisor_run import Up, free_port

from serving.core import paths

ROOT = Path(__file__).resolve().parent.parent
hub, tiny_files = hub_tests.hub, hub_tests.tiny_files  # the fake Hub's fixtures, shared


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, check=False)


def start(port: int, out: Path) -> subprocess.Popen:
    with open(out, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "serving", "up", "--model", "org/chat", "--port", str(port)],
                                cwd=ROOT, env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT)


def downloading_past(proc: subprocess.Popen, done_bytes: int, out: Path) -> dict:
    """The status record's download once it has passed `done_bytes`."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, out.read_text()
        download = (paths.read_json(paths.status_record()) or {}).get("download") or {}
        if download.get("done_bytes", 0) > done_bytes:
            return download
        time.sleep(0.1)
    raise AssertionError(f"no download past {done_bytes} bytes: {out.read_text()}")


def parts() -> list[Path]:
    return list(Path(os.environ["HF_HUB_CACHE"]).rglob("*.incomplete"))


def test_down_stops_a_start_that_is_downloading_and_the_next_start_continues(hub, tiny_files, tmp_path):
    size = (tiny_files["tiny-random/chat"] / hub_tests.WEIGHTS).stat().st_size
    hub.bytes_per_s = 60_000  # ~12 s for the weights: time to look and stop
    port = free_port()
    taken = socket.create_server(("127.0.0.1", port))  # a start that finishes its download stops there: no Ray
    first = start(port, tmp_path / "up-1.txt")
    try:
        downloading_past(first, 100_000, tmp_path / "up-1.txt")
        shown = cli("status", "--json")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        said = json.loads(shown.stdout)
        assert said["running"] and said["pid"] == first.pid and said["phase"] == "downloading"
        assert said["download"]["model"] == "org/chat" and said["download"]["total_bytes"] > size * 0.9
        text = cli("status").stdout
        assert text.startswith("downloading: Downloading org/chat: ") and f"pid {first.pid}" in text, text

        down = cli("down")
        assert down.returncode == 0 and "Stopped." in down.stdout and "downloading org/chat" in down.stdout, \
            down.stdout + down.stderr
        assert first.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert "Nothing is running" in cli("status").stdout
    assert len(parts()) == 1
    kept = parts()[0].stat().st_size
    assert 100_000 < kept < size

    hub.requests.clear()
    second = start(port, tmp_path / "up-2.txt")
    try:
        again = downloading_past(second, kept, tmp_path / "up-2.txt")
        assert hub_tests.gets(hub, hub_tests.WEIGHTS) == [f"bytes={kept}-"]  # only the rest was asked for
        assert again["total_bytes"] == said["download"]["total_bytes"]
        assert cli("down").returncode == 0
        assert second.wait(30) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert len(parts()) == 1 and parts()[0].stat().st_size > kept
    taken.close()


@pytest.mark.slow
def test_apply_of_a_model_not_here_downloads_it_first_with_progress_while_the_app_answers(hub, tiny_files, tmp_path):
    """`gradio-serve apply --model HUB_ID` of a model not in the cache: the supervisor downloads it before the
    change is deployed (as `up` does), `apply` and `status` show its progress, and the running app answers
    meanwhile; then the change is applied."""
    port = free_port()
    up = Up(["--mode", "fanout", "--model", "org/chat", "--model", "org/chat", "--num-cpus", "0.5", "--port", str(port)],
            dict(os.environ),
            tmp_path / "up.log")
    try:
        url = up.wait_running(300)["url"]
        hub.bytes_per_s = 60_000  # ~12 s for the weights: time to look
        apply = subprocess.Popen([sys.executable, "-m", "serving", "apply", "--model", "org/chat", "--model", "org/gpt2"],
                                 cwd=ROOT,
                                 env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _t, said = up.wait_for(lambda e: e.get("event") == "download" and e.get("done_bytes", 0) > 100_000, 90)
            assert said["model"] == "org/gpt2", said
            shown = cli("status").stdout
            assert shown.startswith("running: ") and "downloading for the change being applied: " in shown, shown
            assert httpx.get(url, timeout=10, trust_env=False).status_code == 200  # the running app goes on
            out, _ = apply.communicate(timeout=240)
        finally:
            if apply.poll() is None:
                apply.kill()
                apply.wait()
        assert apply.returncode == 0, out
        assert "Downloading org/gpt2" in out and "Done in" in out, out
        assert next(e for e in reversed(up.events) if e.get("event") == "applied")["ok"]
        assert "downloading for" not in cli("status").stdout
        models = [d["model"] for d in next(e for e in reversed(up.events) if e["event"] == "status")["deployments"]
                  if d["name"].startswith("model")]
        assert models == ["org/chat", "org/gpt2"], models
        assert not parts()
    finally:
        up.stop()
