"""Every benchmark, one entry point: `python -m benchmarks.run` (what `make bench` runs).

Writes benchmarks/results/latest.json and docs/benchmarks.md. Each sub-benchmark is ratio-based:
the Serve app and its plain-Gradio baseline are measured in the same run (interleaved where both
can be up at once), so machine noise partly cancels. `--only NAME ...` reruns some sections and
merges them into the existing results.

Every process started here runs in its own session and is ended by its process group; ports are
free ephemeral ones on 127.0.0.1 (never 8000); state and logs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import load, relay_tail, reload, starts, streaming
from benchmarks.common import (
    ARTICLE,
    EMBEDDED,
    PROMPT,
    PY,
    ROOT,
    TINY_T5,
    Group,
    Up,
    app_processes,
    bench_env,
    free_port,
    gclient,
    log,
    machine,
    memory_mb,
    memory_table,
    percentile,
    prepare_models,
    wait_http,
)
from benchmarks.report import GOALS, write_doc
from serving.core.config import default_config

RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
FANOUT_PROMPTS = [PROMPT, "Name three colours of the rainbow and say why the sky is blue.",
                  "Give a short tip for learning a new language."]
FANOUT_SEED = 7
class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.env = bench_env(work)
        self.results: dict = {}
        self.details: dict = {}
        # Which repetition runs (0-based): a baseline shown only in the notes, never a goal, is
        # measured in the first one alone, so that three repetitions fit in the time asked for.
        self.rep = 0

    def _carried(self, section: str, keys: tuple[str, ...]) -> dict:
        """A notes-only baseline's details from the first repetition, for a later one that skips it."""
        before = self.details.get(section, {})
        return {k: before[k] for k in keys if k in before}

    def logfile(self, name: str) -> Path:
        return self.work / f"{name}.log"

    # -- cold start and first answer: `gradio-serve up`, embedded model, warm cache ------------
    def cold(self) -> None:
        """Ours and the same model's plain app, one after the other (the order alternating), each from
        the command to its first answer."""
        self._colds = getattr(self, "_colds", 0) + 1
        plain_first = self._colds % 2 == 0
        if plain_first:
            plain = starts.plain_first_answer(self.env, self.logfile("cold-plain"), EMBEDDED)
        port = free_port()
        up = Up(["--model", EMBEDDED, "--port", str(port)], self.env, self.logfile("cold"))
        try:
            up.wait_running(300)
            ready = up.ready_s
            gclient(f"http://127.0.0.1:{port}/").predict(ARTICLE, api_name="/summarize")
            first = time.monotonic() - up.t0
        finally:
            up.stop()
        if not plain_first:
            plain = starts.plain_first_answer(self.env, self.logfile("cold-plain"), EMBEDDED)
        self.results["cold_start_s"] = round(ready, 2)
        self.results["first_answer_s"] = round(first, 2)
        self.results["first_answer_vs_plain_ratio"] = round(first / plain, 3)
        self.details["cold"] = {"command": f"gradio-serve up --events --model {EMBEDDED} --port N",
                                "ready_s": round(ready, 2), "first_answer_s": round(first, 2),
                                "plain_first_answer_s": round(plain, 2),
                                "plain": f"python -m benchmarks.plain_app --mode summarize --model {EMBEDDED} "
                                         "(demo.launch()), command to its first answer; run "
                                         + ("before" if plain_first else "after") + " ours",
                                "profile": start_profile(up.timed_events, ready, first)}

    # -- warm redeploy vs cold, and time to first token ------------------------------------------
    def redeploy(self, streams: int = 5) -> None:
        """`gradio-serve apply` of a new model on the running app (what the launcher's Apply does),
        until the first answer; then the page's time to first token on that app."""
        if "first_answer_s" not in self.results:
            self.cold()
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        up = Up(["--model", TINY_T5, "--port", str(port)], self.env, self.logfile("redeploy"))
        try:
            up.wait_running(300)
            gclient(url).predict(ARTICLE, api_name="/summarize")
            t0 = time.monotonic()
            applied = subprocess.run([PY, "-m", "serving.cli", "apply", "--model", EMBEDDED], check=False, cwd=ROOT,
                                     env=self.env, capture_output=True, text=True, timeout=600)
            if applied.returncode != 0:
                raise RuntimeError(f"gradio-serve apply failed: {applied.stderr.strip()[-300:]}")
            t_applied = time.monotonic() - t0
            gclient(url).predict(ARTICLE, api_name="/summarize")
            t_answer = time.monotonic() - t0
            page = [streaming.page_ttft(url, ARTICLE) for _ in range(streams)]
        finally:
            up.stop()
        ttft_s = statistics.median(r["ttft_s"] for r in page)
        full_s = statistics.median(r["full_answer_s"] for r in page)
        self.results["warm_redeploy_vs_cold_ratio"] = round(t_answer / self.results["first_answer_s"], 3)
        self.results["time_to_first_token_ms"] = round(ttft_s * 1000, 1)
        self.details["redeploy"] = {
            "change": f"summarizer {TINY_T5} -> {EMBEDDED} with `gradio-serve apply --model {EMBEDDED}` on the "
                      "running app (the model replica is reconfigured in place; the ingress keeps running)",
            "warm_redeploy_running_s": round(t_applied, 3),
            "warm_redeploy_first_answer_s": round(t_answer, 3),
            "cold_first_answer_s": self.results["first_answer_s"],
        }
        self.details["ttft"] = {
            "level": "page: gradio_client on the page's streaming endpoint /summarize_stream (first non-empty "
                     "partial answer) vs the whole-answer endpoint /summarize; embedded model",
            "ttft_ms_median": round(ttft_s * 1000, 1), "full_answer_ms_median": round(full_s * 1000, 1),
            "ttft_over_full_answer": round(ttft_s / full_s, 3), "runs": page,
        }

    # -- fan-out vs the guide's sequential app; idle memory of both ----------------------------
    def fanout(self, rounds: int = 1) -> None:
        # The default fan-out with the creative slot's sampling seeded, so both apps generate the
        # same answers and the comparison is of the same work (unseeded, its length varies 30-75 words).
        config = default_config("fanout")
        config.models[1].generation.seed = FANOUT_SEED
        config_file = self.work / "fanout.json"
        config_file.write_text(config.to_json())
        sport, pport = free_port(), free_port()
        up = Up(["--config", str(config_file), "--port", str(sport)], self.env, self.logfile("fanout-serve"))
        plain = Group([PY, "-m", "benchmarks.plain_app", "--mode", "fanout", "--config", str(config_file),
                       "--port", str(pport)], self.env, self.logfile("fanout-plain"), stdin=False)
        # A second baseline, tuned: the same plain app with one torch thread (no oversubscription);
        # for the notes, so in the first repetition only.
        tuned = self.rep == 0
        p1port = free_port()
        plain1 = Group([PY, "-m", "benchmarks.plain_app", "--mode", "fanout", "--config", str(config_file),
                        "--port", str(p1port), "--num-cpus", "1"], self.env, self.logfile("fanout-plain1"),
                       stdin=False) if tuned else None
        try:
            up.wait_running(300)
            urls = {"serve": f"http://127.0.0.1:{sport}/", "plain": f"http://127.0.0.1:{pport}/"}
            wait_http(urls["plain"], 300, plain.proc)
            if plain1:
                urls["plain_1thread"] = f"http://127.0.0.1:{p1port}/"
                wait_http(urls["plain_1thread"], 300, plain1.proc)
            # One answer each (models loaded, caches warm), then idle memory.
            for url in urls.values():
                gclient(url).predict(PROMPT, api_name="/fanout")
            time.sleep(5)
            sprocs = app_processes(up.proc.pid)
            smem, stable = memory_mb(sprocs), memory_table(sprocs)
            pmem = memory_mb(app_processes(plain.proc.pid))
            lat: dict[str, list[float]] = {k: [] for k in urls}
            for prompt in FANOUT_PROMPTS:
                got = load.interleaved(urls, "/fanout", prompt, rounds, warmup=0)
                for k, v in got.items():
                    lat[k] += v
        finally:
            up.stop()
            plain.stop(grace=10)
            if plain1:
                plain1.stop(grace=10)
        # The same calls in both apps (prompts x rounds): the ratio is of their total times.
        s, p = (sum(lat[k]) / len(lat[k]) for k in ("serve", "plain"))
        if tuned:
            p1 = sum(lat["plain_1thread"]) / len(lat["plain_1thread"])
            tuned_said = {"plain_1thread_latency_s": [round(x, 3) for x in lat["plain_1thread"]],
                          "plain_1thread_mean_s": round(p1, 3), "ratio_vs_plain_1thread": round(s / p1, 3)}
        else:
            tuned_said = self._carried("fanout", ("plain_1thread_latency_s", "plain_1thread_mean_s",
                                                  "ratio_vs_plain_1thread"))
        per_prompt = [round(sum(lat["serve"][i:i + rounds]) / sum(lat["plain"][i:i + rounds]), 3)
                      for i in range(0, len(lat["serve"]), rounds)]
        self.results["fanout_vs_sequential_ratio"] = round(s / p, 3)
        self.results["idle_rss_mb"] = smem["rss_mb"]
        self.details["fanout"] = {
            "models": "default fan-out: smollm2-135m-instruct twice (precise: greedy; creative: sampling, "
                      f"seed {FANOUT_SEED}), min_new_tokens=20, max_new_tokens=100; Serve: 1 CPU per slot; plain: "
                      "2 torch threads, slots one after the other",
            "prompts": FANOUT_PROMPTS, "calls_per_prompt": rounds,
            "serve_latency_s": [round(x, 3) for x in lat["serve"]],
            "plain_latency_s": [round(x, 3) for x in lat["plain"]],
            "serve_mean_s": round(s, 3), "plain_mean_s": round(p, 3), "ratio_per_prompt": per_prompt,
            **tuned_said,  # first repetition
        }
        self.details["idle_memory"] = {"serve_fanout": smem, "plain_gradio_fanout": pmem, "serve_processes": stable,
                                       "rss_ratio": round(smem["rss_mb"] / pmem["rss_mb"], 2)}

    # -- throughput: 16 concurrent gradio_client clients ----------------------------------------
    def throughput(self, clients: int = 16, per_client: int = 2, cap_s: float = 150) -> None:
        out = {}
        sport = free_port()
        up = Up(["--model", EMBEDDED, "--replicas", "2", "--num-cpus", "1", "--port", str(sport)],
                self.env, self.logfile("throughput-serve"))
        try:
            up.wait_running(300)
            url = f"http://127.0.0.1:{sport}/"
            gclient(url).predict(ARTICLE, api_name="/summarize")
            out["serve"] = load.throughput(url, "/summarize", ARTICLE, clients, per_client, cap_s)
        finally:
            up.stop()
        def plain_app(name: str, *extra: str) -> dict:
            port = free_port()
            plain = Group([PY, "-m", "benchmarks.plain_app", "--mode", "summarize", "--port", str(port), *extra],
                          self.env, self.logfile(f"throughput-{name}"), stdin=False)
            try:
                url = f"http://127.0.0.1:{port}/"
                wait_http(url, 300, plain.proc)
                gclient(url).predict(ARTICLE, api_name="/summarize")
                return load.throughput(url, "/summarize", ARTICLE, clients, per_client, cap_s)
            finally:
                plain.stop(grace=10)

        out["plain"] = plain_app("plain")
        if self.rep == 0:  # the tuned baseline (one torch thread), for the notes: first repetition only
            out["plain_1thread"] = plain_app("plain1", "--num-cpus", "1")
            out["ratio_vs_plain_1thread"] = round(out["serve"]["rps"] / out["plain_1thread"]["rps"], 3)
        else:
            out.update(self._carried("throughput", ("plain_1thread", "ratio_vs_plain_1thread")))
        self.results["throughput_vs_plain_gradio_ratio"] = round(out["serve"]["rps"] / out["plain"]["rps"], 3)
        self.details["throughput"] = {
            "setup": f"{clients} gradio_client clients x {per_client} requests (cap {cap_s:g} s), summarize, "
                     f"{EMBEDDED}; Serve: 2 replicas x 1 CPU, @serve.batch; plain: demo.launch() defaults "
                     "(queue concurrency 1), torch default threads (2)",
            **out,
        }

    # -- what Serve adds: proxy + ingress + handle, with an echo model ------------------------
    def proxy(self, n: int = 60) -> None:
        sport, pport = free_port(), free_port()
        serve = Group([PY, "-m", "benchmarks.serve_echo", str(sport)], self.env, self.logfile("proxy-serve"))
        plain = Group([PY, "-m", "benchmarks.plain_app", "--mode", "echo", "--port", str(pport)],
                      self.env, self.logfile("proxy-plain"), stdin=False)
        try:
            surl, purl = f"http://127.0.0.1:{sport}/", f"http://127.0.0.1:{pport}/"
            wait_http(purl, 120, plain.proc)
            wait_http(surl, 300, serve.proc)
            lat = load.interleaved({"serve": surl, "plain": purl}, "/summarize", "hello", n, warmup=5)
        finally:
            serve.stop(grace=30)
            plain.stop(grace=10)
        s50, p50 = percentile(lat["serve"], 0.5), percentile(lat["plain"], 0.5)
        self.results["proxy_overhead_ms_p50"] = round((s50 - p50) * 1000, 1)
        self.details["proxy"] = {
            "setup": "echo model (returns at once); Serve: GradioIngress + echo deployment; plain: the same "
                     f"Blocks with demo.launch(); {n} gradio_client calls each, interleaved",
            "serve_p50_ms": round(s50 * 1000, 1), "plain_p50_ms": round(p50 * 1000, 1),
            "serve_p90_ms": round(percentile(lat["serve"], 0.9) * 1000, 1),
            "plain_p90_ms": round(percentile(lat["plain"], 0.9) * 1000, 1),
        }

    # -- your own app: --app with 2 replicas vs the same file's demo.launch() -------------------
    def byo(self, reps: int = 1, clients: int = 8, per_client: int = 3, work_n: int = 15_000_000,
            calls: int = 40) -> None:
        """Both up at once; each repetition measures both (order alternating); medians of the repetitions.
        `make bench` repeats the whole section (see main), so one repetition per call is the default."""
        app = ROOT / "benchmarks" / "byo_app.py"
        sport, pport = free_port(), free_port()
        up = Up(["--app", str(app), "--replicas", "2", "--num-cpus", "1", "--port", str(sport)],
                self.env, self.logfile("byo-serve"))
        plain = Group([PY, str(app)], {**self.env, "GRADIO_SERVER_PORT": str(pport)}, self.logfile("byo-plain"),
                      stdin=False)
        surl, purl = f"http://127.0.0.1:{sport}/", f"http://127.0.0.1:{pport}/"
        runs = []
        try:
            up.wait_running(300)
            wait_http(purl, 120, plain.proc)
            for i in range(reps):
                order = [("serve", surl), ("plain", purl)][:: 1 if i % 2 == 0 else -1]
                rps = {k: load.throughput(u, "/work", work_n, clients, per_client, 300) for k, u in order}
                lat = load.interleaved({"serve": surl, "plain": purl}, "/echo", "hello", calls, warmup=3)
                s50, p50 = percentile(lat["serve"], 0.5), percentile(lat["plain"], 0.5)
                runs.append({"serve": rps["serve"], "plain": rps["plain"],
                             "scaling_ratio": round(rps["serve"]["rps"] / rps["plain"]["rps"], 3),
                             "serve_echo_p50_ms": round(s50 * 1000, 1), "plain_echo_p50_ms": round(p50 * 1000, 1),
                             "overhead_ms_p50": round((s50 - p50) * 1000, 1)})
                log(f"byo rep {i + 1}: scaling {runs[-1]['scaling_ratio']}, overhead {runs[-1]['overhead_ms_p50']} ms")
        finally:
            up.stop()
            plain.stop(grace=10)
        ratios = [r["scaling_ratio"] for r in runs]
        overheads = [r["overhead_ms_p50"] for r in runs]
        self.results["byo_scaling_ratio"] = round(statistics.median(ratios), 3)
        self.results["byo_overhead_ms_p50"] = round(statistics.median(overheads), 1)
        self.details["byo"] = {
            "setup": f"benchmarks/byo_app.py unchanged: `gradio-serve up --app benchmarks/byo_app.py --replicas 2 "
                     f"--num-cpus 1` vs `python benchmarks/byo_app.py` (demo.launch(), Gradio's defaults). Scaling: "
                     f"{clients} gradio_client sessions x {per_client} calls of /work (pure Python, ~{work_n:,} "
                     f"loop steps), requests/s; overhead: {calls} interleaved calls of /echo (returns at once), "
                     f"p50 difference; {reps} repetitions, median (min-max)",
            "scaling_ratio": {"median": self.results["byo_scaling_ratio"], "min": min(ratios), "max": max(ratios)},
            "overhead_ms_p50": {"median": self.results["byo_overhead_ms_p50"], "min": min(overheads),
                                "max": max(overheads)},
            "runs": runs,
        }

    # -- a user's app: until ready, against `python demo.py` --------------------------------------
    def ready(self) -> None:
        ratio, details = starts.app_ready(self.work, self.env, rep=getattr(self, "_readies", 0))
        self._readies = getattr(self, "_readies", 0) + 1
        self.results["app_ready_vs_plain_ratio"] = round(ratio, 3)
        self.details["app_ready"] = details

    # -- the app's port under 200 sessions, against the replicas' own ports --------------------
    def relay(self) -> None:
        # The path measured first alternates between repetitions: a replica that already served a round
        # (its heap grown, its caches warm) favours whichever path comes second.
        rep = getattr(self, "_relays", 0)
        self._relays = rep + 1
        results, details = relay_tail.measure(self.env, self.logfile("relay"), first=("relay", "direct")[rep % 2])
        self.results.update(results)
        self.details["relay_tail"] = details

    # -- reload on save: ours with 2 replicas vs Gradio's own `gradio demo.py` -------------------
    def reload(self) -> None:
        # `serve run --reload`, reported and never a goal, is measured in the first repetition only.
        results, details = reload.measure(self.work, self.env, serve_run=self.rep == 0)
        if self.rep:
            details.update(self._carried("reload", ("serve_run_reload_s", "serve_run_reload_failed", "serve_run_setup")))
        self.results.update(results)
        self.details["reload"] = details

    # -- the launcher window ------------------------------------------------------------------
    def gui(self, runs: int = 3) -> None:
        env = {**self.env, "QT_QPA_PLATFORM": "offscreen"}
        shown = []
        for i in range(runs):
            spawned = time.time()
            g = Group([PY, "-m", "benchmarks.gui", "shown"], env, self.logfile(f"gui-shown-{i}"), stdin=False)
            try:
                t, obj = g.wait_for(lambda o: o.get("shown"), 60)
                shown.append({"parent_s": round(t, 3), "wall_s": round(obj["wall"] - spawned, 3),
                              "since_process_start_s_psutil": obj["since_process_start_s"]})
            finally:
                g.stop(grace=10)
        self.results["gui_window_shown_s"] = round(statistics.median(r["parent_s"] for r in shown), 3)
        self.details["gui_shown"] = {"runs": shown, "measured": "spawn of a fresh `python -m benchmarks.gui shown` "
                                     "(MainWindow + show, offscreen) until the event loop has shown it; median"}
        # One Start/Stop cycle a repetition: the figure is the median of the repetitions' worst stalls.
        port = free_port()
        g = Group([PY, "-m", "benchmarks.gui", "cycle", TINY_T5, str(port)], env, self.logfile("gui-cycle"), stdin=False)
        cycle: dict = {}
        try:
            _, cycle = g.wait_for(lambda o: "max_stall_ms" in o, 420)
        finally:
            g.stop(grace=30)
            pgid = cycle.get("controller_pgid")
            if pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        if cycle.get("error"):
            raise RuntimeError(cycle["error"])
        self.results["gui_max_stall_ms"] = cycle["max_stall_ms"]
        self.details["gui_cycle"] = {"measured": "QTimer every 10 ms on the main thread during Start -> Running -> "
                                     f"Stop -> Stopped with the real supervisor and {TINY_T5}; stall = gap - 10 ms; "
                                     "one cycle; worst_stalls rows: [stall ms, phase, s into phase, main-thread CPU ms "
                                     "during the stall, state]", **cycle}


    # -- tokens/s inside one replica at batch 1, 2, 4, 8 -----------------------------------------
    def tokens(self) -> None:
        # generate() on the batch, the comparison in the notes, runs in the first repetition alone.
        out = subprocess.run([PY, "-m", "benchmarks.tokens", *(["--loop-only"] if self.rep else [])], cwd=ROOT,
                             env=self.env, capture_output=True, text=True, timeout=600, check=True)
        table = json.loads(out.stdout.strip().splitlines()[-1])
        if self.rep:
            first = {r["batch"]: r for r in self.details.get("tokens", {}).get("rows", [])}
            table["rows"] = [{**r, **{k: v for k, v in first.get(r["batch"], {}).items() if k.startswith("generate")}}
                             for r in table["rows"]]
        by_size = {r["batch"]: r for r in table["rows"]}
        self.results["batch8_vs_batch1_tokens_per_s"] = round(
            by_size[8]["loop_tokens_per_s"] / by_size[1]["loop_tokens_per_s"], 2)
        self.details["tokens"] = table


def start_profile(timed_events: list, ready_s: float, first_s: float) -> list[list]:
    """[seconds since the command, what happened]: each phase, and each deployment's first healthy replica."""
    rows, seen = [], set()
    for t, e in timed_events:
        if e.get("event") == "phase" and ("phase", e["phase"]) not in seen:
            seen.add(("phase", e["phase"]))
            rows.append([round(t, 2), f"phase {e['phase']}: {e.get('message', '')}"])
        for d in e.get("deployments", []) if e.get("event") == "status" else []:
            if d.get("replicas_running") and ("up", d["name"]) not in seen:
                seen.add(("up", d["name"]))
                rows.append([round(t, 2), f"{d['name']}: first replica running"])
    rows = [r for r in rows if r[0] <= first_s]  # the stop that follows is not part of the start
    return [*rows, [round(first_s, 2), "first answer (gradio_client, summarize)"]]


SECTIONS = ["cold", "ready", "redeploy", "fanout", "throughput", "proxy", "relay", "byo", "tokens", "gui", "reload"]


def code_version() -> str:
    """The commit measured, and whether serving/ or launcher/ had uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "serving", "launcher"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes in serving/ or launcher/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run these sections, merge into latest.json")
    p.add_argument("--reps", type=int, default=3, help="repetitions of every section, interleaved (default 3); "
                                                      "each figure is their median")
    p.add_argument("--keep-work", action="store_true", help="keep the temporary folder (logs)")
    p.add_argument("--doc-only", action="store_true", help="rewrite docs/benchmarks.md from latest.json")
    args = p.parse_args(argv)
    if args.doc_only:
        write_doc(json.loads(RESULTS.read_text()))
        return 0
    sections = args.only or SECTIONS
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="gsl-bench-"))
    bench = Bench(work)
    data = {"results": {}, "details": {}, "errors": {}, "stats": {}}
    if args.only and RESULTS.exists():
        data = json.loads(RESULTS.read_text())
        data.setdefault("errors", {})
        data.setdefault("stats", {})
    carried = {k: v for k, v in data["results"].items() if k in ("first_answer_s",)}
    data["machine"] = machine()
    data["code"] = code_version()
    data["load_avg"] = {"start": [round(x, 2) for x in os.getloadavg()], "per_repetition": []}
    data["section_s"] = {k: v for k, v in data.get("section_s", {}).items() if k not in sections}
    log(f"work dir {work}; sections {sections}; {args.reps} repetitions")
    prepare_models(bench.env)
    samples: dict[str, list] = {}
    for rep in range(args.reps):
        # Interleaved: every section once per repetition, so slow drifts of the machine hit all alike.
        bench.results = dict(carried)
        bench.rep = rep
        before = [round(x, 2) for x in os.getloadavg()]
        for name in sections:
            log(f"repetition {rep + 1}/{args.reps}: section {name} ...")
            t0 = time.monotonic()
            produced = set()
            try:
                keys_before = set(bench.results)
                getattr(bench, name)()
                produced = {k for k, (_, _, sec) in GOALS.items() if sec == name and k in bench.results} \
                    | (set(bench.results) - keys_before)
                data["errors"].pop(name, None)
            except Exception as exc:  # noqa: BLE001 - reported, the other sections go on
                traceback.print_exc()
                data["errors"][name] = f"repetition {rep + 1}: {type(exc).__name__}: {exc}"
            for key in produced:
                samples.setdefault(key, []).append(bench.results[key])
            data["section_s"].setdefault(name, []).append(round(time.monotonic() - t0))
            log(f"section {name} done in {time.monotonic() - t0:.0f} s: "
                + json.dumps({k: bench.results[k] for k in sorted(produced)}))
            data["details"].update(bench.details)
            _summarize(data, samples)
            data["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            data["total_s"] = round(time.monotonic() - start)
            data["repetitions"] = args.reps
            data["sections_run"] = sections
            data["goals"] = {k: g[0] for k, g in GOALS.items()}
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(data, indent=2) + "\n")
            write_doc(data)
        data["load_avg"]["per_repetition"].append({"before": before, "after": [round(x, 2) for x in os.getloadavg()]})
    data["load_avg"]["end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    write_doc(data)
    if args.keep_work:
        log(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(data["results"], indent=2))
    return 1 if data["errors"] else 0


def _summarize(data: dict, samples: dict[str, list]) -> None:
    """Each figure: the median of its repetitions, with min, max and every sample."""
    for key, values in samples.items():
        numbers = [v for v in values if isinstance(v, (int, float))]
        if not numbers:
            continue
        median = statistics.median(numbers)
        data["results"][key] = round(median, 3) if isinstance(median, float) else median
        data["stats"][key] = {"median": data["results"][key], "min": min(numbers), "max": max(numbers),
                              "n": len(numbers), "samples": numbers}


if __name__ == "__main__":
    sys.exit(main())
