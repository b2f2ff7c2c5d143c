"""Reload on save: from a save to the first answer of the new code, as a new client sees it.

Ours: `gradio-serve up --app demo.py --reload --replicas 2`; beside it, Gradio's own `gradio demo.py`
(its reload mode) on a copy of the same app. Both are up at once; each save goes to one, then the
other, so they never reload together. A new client each time (no cookie): Gradio's curl recipe,
`POST /gradio_api/call/answer`, then the result, until it says the saved version. One broken save is
made in each, to see the running version go on.

    python -m benchmarks.reload [--saves N]     (one run; `make bench` runs it as its section `reload`)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import PY, Group, Up, bench_env, free_port, log, wait_http

APP = '''import gradio as gr

VERSION = "v{version}"


def answer(text: str) -> str:
    return VERSION


with gr.Blocks() as demo:
    box = gr.Textbox(label="text")
    out = gr.Textbox(label="version")
    gr.Button("Go").click(answer, box, out, api_name="answer")

if __name__ == "__main__":
    demo.launch()
'''
BROKEN = APP.replace("def answer(text: str) -> str:", "def answer(text: str) -> str\n")  # a SyntaxError
GAP_S = 2.0  # between two saves (of the two apps): a person saves seconds apart
FAILED: dict[str, int] = {}  # url -> polls that failed (an answer cut mid-way, a refused connection)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ask(url: str, timeout: float = 5.0) -> str | None:
    """The app's answer to a new client (no cookie), or None when it did not answer."""
    try:
        request = urllib.request.Request(f"{url}gradio_api/call/answer", data=json.dumps({"data": ["x"]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with _OPENER.open(request, timeout=timeout) as resp:
            event = json.loads(resp.read())["event_id"]
        with _OPENER.open(f"{url}gradio_api/call/answer/{event}", timeout=timeout) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("data:"):
                    data = json.loads(line[5:])
                    if isinstance(data, list) and data:
                        return data[0]
    except Exception:  # noqa: BLE001 - a cut or refused answer: counted, and asked again
        FAILED[url] = FAILED.get(url, 0) + 1
        return None
    return None


def save_and_time(file: Path, url: str, version: int, timeout: float = 60.0, template: str = APP) -> float:
    """Seconds from writing `version` to the first new client's answer from it."""
    file.write_text(template.format(version=version))
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ask(url) == f"v{version}":
            return time.monotonic() - t0
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer v{version} within {timeout} s of the save")


def broken_keeps_old(file: Path, url: str, version: int, wait_s: float = 3.0) -> bool:
    """A broken save: after `wait_s`, the app still answers the last good version."""
    file.write_text(BROKEN.format(version=version + 1000))
    time.sleep(wait_s)
    return all(ask(url) == f"v{version}" for _ in range(4))


# The same app for `serve run --reload`, as Ray's guide deploys a Gradio app (our drop-in GradioServer).
SERVE_APP = APP + '''
from serving import GradioServer


def build():
    return demo


app = GradioServer.options(num_replicas=2, ray_actor_options={{"num_cpus": 1}}).bind(build)
'''


def serve_run_saves(work: Path, env: dict, saves: int) -> tuple[list[float], str | None]:
    """Ray's own reload: `serve run --reload` on a cluster of its own (`ray start`, Serve's proxy on a free
    port: serve run alone takes 8000), the file saved `saves` times; seconds from each save to its answer."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from ray_cluster import RayCluster

    folder = work / "reload-serve-run"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo.py").write_text(SERVE_APP.format(version=0))
    cluster = RayCluster(env, head_cpus=2, worker_cpus=0)
    bin_dir = Path(PY).parent
    times = []
    try:
        cluster.start()
        port = free_port()
        subprocess.run([str(bin_dir / "serve"), "start", "--address", cluster.address, "--http-host", "127.0.0.1",
                        "--http-port", str(port)], check=True, env=cluster.env, capture_output=True, timeout=120)
        command = f'cd "{folder}" && exec "{bin_dir / "serve"}" run --address {cluster.address} --reload --working-dir . demo:app'
        run = Group(["bash", "-c", command], cluster.env, work / "reload-serve-run.log", stdin=False)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 300
            while ask(url) != "v0":
                if time.monotonic() > deadline or run.proc.poll() is not None:
                    raise RuntimeError(f"serve run did not answer v0; see {work / 'reload-serve-run.log'}")
                time.sleep(0.5)
            time.sleep(3)  # serve run watches only once its first deploy returned: a save before is missed
            for version in range(1, saves + 1):
                try:
                    times.append(save_and_time(folder / "demo.py", url, version, timeout=60, template=SERVE_APP))
                except TimeoutError:
                    # Measured here: it redeploys (new replicas) from the package it uploaded at its start,
                    # so they answer the old version. One such save says it; more would only wait.
                    log(f"serve run --reload save {version}: still the old version 60 s after the save")
                    return times, (f"save {version}: the redeployed replicas still answered the old version 60 s "
                                   "after the save (serve run uploads --working-dir once, at its start)")
                log(f"serve run --reload save {version}: {times[-1]:.3f} s")
                time.sleep(GAP_S)
        finally:
            run.stop(grace=30)
    finally:
        cluster.stop()
    return times, None


def measure(work: Path, env: dict, saves: int = 5, serve_run: bool = True) -> tuple[dict, dict]:
    """Ours and Gradio's own reload, `saves` saves each; `serve run --reload` after them where
    `serve_run` (reported, never a goal)."""
    ours_dir, gradio_dir = work / "reload-ours", work / "reload-gradio"
    for folder in (ours_dir, gradio_dir):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "demo.py").write_text(APP.format(version=0))
    sport, gport = free_port(), free_port()
    up = Up(["--app", str(ours_dir / "demo.py"), "--reload", "--replicas", "2", "--num-cpus", "1",
             "--port", str(sport)], env, work / "reload-ours.log")
    # `gradio FILE` wants the file under its working directory.
    gradio = Group(["bash", "-c", f'cd "{gradio_dir}" && exec "{Path(PY).with_name("gradio")}" demo.py'],
                   {**env, "GRADIO_SERVER_PORT": str(gport)}, work / "reload-gradio.log", stdin=False)
    surl, gurl = f"http://127.0.0.1:{sport}/", f"http://127.0.0.1:{gport}/"
    ours, theirs, phases = [], [], []
    try:
        up.wait_running(300)
        wait_http(gurl, 120, gradio.proc)
        assert ask(surl) == "v0" and ask(gurl) == "v0", "the apps did not answer v0"
        time.sleep(2)  # the reloader's warm check child is up
        for version in range(1, saves + 1):
            ours.append(save_and_time(ours_dir / "demo.py", surl, version))
            time.sleep(GAP_S)
            theirs.append(save_and_time(gradio_dir / "demo.py", gurl, version))
            time.sleep(GAP_S)
            said = [e["message"] for e in up.events if "reloaded" in e.get("message", "")]
            phases.append(said[-1] if said else "")
            log(f"reload save {version}: ours {ours[-1]:.3f} s, gradio {theirs[-1]:.3f} s; {phases[-1]}")
        kept = {"ours": broken_keeps_old(ours_dir / "demo.py", surl, saves),
                "gradio": broken_keeps_old(gradio_dir / "demo.py", gurl, saves)}
        said = [e["message"] for e in up.events if e.get("event") == "log" and "not reloaded" in e.get("message", "")]
    finally:
        up.stop()
        gradio.stop(grace=10)
    ray_own, ray_failed = serve_run_saves(work, env, max(3, saves // 2)) if serve_run else ([], None)
    results = {"reload_first_answer_s": round(statistics.median(ours), 3),
               "gradio_reload_first_answer_s": round(statistics.median(theirs), 3)}
    if ray_own and not ray_failed:
        results["serve_run_reload_first_answer_s"] = round(statistics.median(ray_own), 3)
    details = {
        "setup": f"a one-button app, `gradio-serve up --app demo.py --reload --replicas 2 --num-cpus 1` vs "
                 f"`gradio demo.py`; {saves} saves each, alternating; time from the write to the first answer "
                 "of the saved version to a new client (POST gradio_api/call/answer, then its result, every 20 ms)",
        "ours_s": [round(x, 3) for x in ours], "gradio_s": [round(x, 3) for x in theirs],
        **({"serve_run_reload_s": [round(x, 3) for x in ray_own], "serve_run_reload_failed": ray_failed,
            "serve_run_setup": "`serve run --reload --app-dir . demo:app` (the same app in GradioServer, 2 replicas x 1 "
                           "CPU) on a `ray start --head` cluster with `serve start --http-port P`; after ours and "
                           "Gradio's, not beside them"} if serve_run else {}),
        "ours_median_s": results["reload_first_answer_s"], "gradio_median_s": results["gradio_reload_first_answer_s"],
        "failed_polls": {"ours": FAILED.get(surl, 0), "gradio": FAILED.get(gurl, 0)},
        "ours_supervisor_says": phases, "broken_save_keeps_old_version": kept, "broken_save_reported": said[-1:] if said else [],
    }
    return results, details


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--saves", type=int, default=5)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gsl-bench-reload-"))
    results, details = measure(work, bench_env(work), args.saves)
    print(json.dumps({"results": results, "details": details}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
