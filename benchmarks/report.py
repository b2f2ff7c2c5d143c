"""What `make bench` reports: the goals, and docs/benchmarks.md written from latest.json."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import ROOT, TINY_T5

DOC = ROOT / "docs" / "benchmarks.md"
CMD = "python -m benchmarks.run --only {}"

# key: (goal text, test on the value or None, section)
GOALS = {
    "fanout_vs_sequential_ratio": ("<= 0.55", lambda v: v <= 0.55, "fanout"),
    "throughput_vs_plain_gradio_ratio": (">= 6", lambda v: v >= 6, "throughput"),
    "proxy_overhead_ms_p50": ("<= 2 ms", lambda v: v <= 2, "proxy"),
    "relay_p99_vs_direct_ratio": ("<= 1.1 (200 sessions, 2 replicas)", lambda v: v <= 1.1, "relay"),
    "warm_redeploy_vs_cold_ratio": ("<= 0.3", lambda v: v <= 0.3, "redeploy"),
    "cold_start_s": ("(reported)", None, "cold"),
    "first_answer_s": ("<= 10 s", lambda v: v <= 10, "cold"),
    "first_answer_vs_plain_ratio": ("<= 1.3 (the same model's plain app)", lambda v: v <= 1.3, "cold"),
    "app_ready_vs_plain_ratio": ("<= 2 (`python demo.py`, 5 apps)", lambda v: v <= 2, "ready"),
    "time_to_first_token_ms": ("< 1/3 of the full answer", None, "redeploy"),
    "idle_rss_mb": ("<= 1500 MB", lambda v: v <= 1500, "fanout"),
    "byo_scaling_ratio": (">= 1.7 (limit 2.0 on 2 cores)", lambda v: v >= 1.7, "byo"),
    "byo_overhead_ms_p50": ("<= 10 ms", lambda v: v <= 10, "byo"),
    "batch8_vs_batch1_tokens_per_s": (">= 6", lambda v: v >= 6, "tokens"),
    "gui_window_shown_s": ("< 1 s", lambda v: v < 1, "gui"),
    "gui_max_stall_ms": ("<= 100 ms", lambda v: v <= 100, "gui"),
    "reload_first_answer_s": ("<= 1.2 s (2x Gradio's own reload here)", lambda v: v <= 1.2, "reload"),
    "gradio_reload_first_answer_s": ("(reported: `gradio demo.py`)", None, "reload"),
    "serve_run_reload_first_answer_s": ("(reported: `serve run --reload`; ours no slower)", None, "reload"),
}


def write_doc(data: dict) -> None:
    m = data["machine"]
    r, d = data["results"], data["details"]
    lines = [
        "# Benchmarks",
        "",
        ("Produced by `make bench` (`python -m benchmarks.run`); raw figures and details in "
        "[`benchmarks/results/latest.json`](../benchmarks/results/latest.json)."),
        "",
        f"- Date: {data['date']}",
        (f"- Machine: {m['cpus']} cores, {m['ram_gb']} GB RAM, CPU: {m['cpu_model']}{_precision(data)}; {m['platform']}, "
        f"Python {m['python']}; load average at start {m['load_avg_at_start']} (shared with other work)"),
        f"- Load average (1, 5, 15 min) around each repetition: {_loads(data)}",
        f"- Code measured: {data.get('code', 'unknown')}",
        f"- Total run time: {data.get('total_s', '?')} s",
        "",
        ("Figures are ratios (or differences) of the Serve app and its plain-Gradio baseline measured in the "
        "same run, interleaved where both could be up at once, so machine noise partly cancels. Every section "
        f"runs {data.get('repetitions', 1)} times, interleaved with the others; each value is the median of "
        "those repetitions, with (min–max, n). A goal counts as met only on the median."),
        "",
        "| Figure | Value | Goal | Met | Command | Notes |",
        "|---|---|---|---|---|---|",
    ]
    notes = _notes(r, d)
    for key, (goal, test, section) in GOALS.items():
        value = r.get(key)
        if value is None:
            shown, met = "—", "not measured" + (f" ({data['errors'].get(section, '')[:80]})" if section in data.get("errors", {}) else "")
        else:
            st = data.get("stats", {}).get(key)
            shown = f"{value} ({st['min']}–{st['max']}, n={st['n']})" if st and st["n"] > 1 else f"{value}"
            met = ("yes" if test(value) else "**no**") if test else "—"
            if key == "time_to_first_token_ms" and "ttft" in d:
                met = "yes" if d["ttft"]["ttft_over_full_answer"] < 1 / 3 else "**no**"
        lines.append(f"| `{key}` | {shown} | {goal} | {met} | `{CMD.format(section)}` | {notes.get(key, '')} |")
    ran = data.get("sections_run") or []
    lines += ["", (f"This run: {', '.join(ran) or 'every section'} x {data.get('repetitions', 1)} in "
                  f"{data.get('total_s', 0) / 60:.1f} minutes (the models prepared once, then the repetitions)."),
              "", *_durations(data), *_tables(d), *READING, ""]
    if data.get("errors"):
        lines += ["## Sections that failed in this run", ""]
        for k, v in data["errors"].items():
            lines.append(f"- `{k}`: {v.splitlines()[0][:300]}")
        lines.append("")
    DOC.write_text("\n".join(lines))


def _tables(d: dict) -> list[str]:
    """The per-process memory, tokens/s by batch size and the start profile, from the last repetition."""
    out = []
    procs = (d.get("idle_memory") or {}).get("serve_processes")
    if procs:
        out += ["## Idle memory of the default fan-out, per process (last repetition)", "",
                "| Process | RSS MB | PSS MB |", "|---|---|---|"]
        out += [f"| {p['role']} | {p['rss_mb']} | {p['pss_mb']} |" for p in procs]
        out += [(f"| **all {len(procs)}** | **{round(sum(p['rss_mb'] for p in procs), 1)}** | "
                f"**{round(sum(p['pss_mb'] for p in procs), 1)}** |"), ""]
    tokens = d.get("tokens")
    if tokens:
        out += [(f"## Tokens per second inside one replica (`python -m benchmarks.tokens`; {tokens['model']}, "
                f"{tokens['dtype']}, {tokens['threads']} torch thread, {tokens['new_tokens_per_row']} new tokens "
                "per prompt, 4 prompts of different lengths; the loop: last repetition)"), "",
                "| Batch | Decode loop (what replicas run) tokens/s | generate() on the batch tokens/s (first repetition) |",
                "|---|---|---|"]
        out += [f"| {r['batch']} | {r['loop_tokens_per_s']} ({r['loop_s']} s) | "
                + (f"{r['generate_tokens_per_s']} ({r['generate_s']} s) |" if "generate_s" in r else "— |")
                for r in tokens["rows"]]
        out.append("")
    profile = (d.get("cold") or {}).get("profile")
    if profile:
        out += ["## Where a cold start's time goes (`gradio-serve up`, embedded model, warm cache; last repetition)",
                "", "| s since the command | What |", "|---|---|"]
        first = profile[-1][0]  # the first answer ends the start
        out += [f"| {t} | {what} |" for t, what in profile if t <= first and not what.startswith("phase stop")]
        out.append("")
    return out


def _durations(data: dict) -> list[str]:
    """Seconds each section took, per repetition: where a `make bench` run's time goes."""
    took = data.get("section_s") or {}
    if not took:
        return []
    out = ["## Where the run's time goes (seconds per section, each repetition)", "",
           "| Section | Repetitions | Total |", "|---|---|---|"]
    out += [f"| {name} | {', '.join(str(s) for s in secs)} | {sum(secs)} |"
            for name, secs in sorted(took.items(), key=lambda kv: -sum(kv[1]))]
    return [*out, ("Notes-only baselines (the plain app tuned to one thread, `serve run --reload`, `generate()` on a "
                   "batch) are measured in the first repetition alone."), ""]


def _precision(data: dict) -> str:
    """Whether the CPU multiplies bfloat16 natively: the models run in bfloat16 there, in float32 elsewhere
    (serving/replica/models.py), which moves the memory, batching and fan-out figures."""
    native = data["machine"].get("native_bf16")
    dtype = (data["details"].get("tokens") or {}).get("dtype")
    if native is None and dtype is None:
        return ""
    said = {True: "native bfloat16", False: "no native bfloat16", None: "bfloat16 support unknown"}[native]
    return f" ({said}: the models ran in {dtype})" if dtype else f" ({said})"


def _loads(data: dict) -> str:
    la = data.get("load_avg") or {}
    reps = [f"{r['before'][0]} → {r['after'][0]}" for r in la.get("per_repetition", [])]
    return (f"start {la.get('start', '?')}; " + "; ".join(f"rep {i + 1}: {x}" for i, x in enumerate(reps))
            + (f"; end {la['end']}" if "end" in la else ""))


READING = [
    "## How to read these figures",
    "",
    ("- **Baselines.** The plain app (`benchmarks/plain_app.py`) is the guide's original: the same Blocks "
    "(`serving.replica.ui.build_blocks`), the same models and generation settings through `serving.replica.models.Runner`, "
    "run one after the other in one process started with `demo.launch()` and Gradio's defaults (queue "
    "concurrency 1, torch's default of one thread per core). The headline ratios use it as is. Because torch's "
    "default threads collapse on a busy 2-core machine, each ratio is also given against the same plain app "
    "tuned to one torch thread (`--num-cpus 1`), in the notes: that is the fair measure of what Serve's "
    "parallelism buys, and on a machine whose two cores are already busy it buys little for the fan-out."),
    ("- **Fan-out.** The default fan-out (the embedded model twice: greedy and sampling) with the sampling "
    "slot seeded; 3 prompts x 1 call each repetition, interleaved, and the ratio is of the total times. Both slots use one "
    "model, so they share one deployment (`serving/replica/apps.py` `slot_groups`): one replica with both slots' CPUs "
    "(2 torch threads) decodes the two prompts as one batch of 2, each with its own settings "
    "(`serving/replica/decoding.py`). A batch of 2 costs little more than 1 on a CPU (the weights are read once per "
    "step for both), which is what makes the fan-out ~0.5-0.6 of the sequential app. In bfloat16 a batch "
    "rounds slightly differently from a lone prompt, so an answer can differ by a few tokens between the two "
    "apps: the per-prompt ratios (notes) spread more than the total. Before (two replicas of one CPU each, "
    "float32): 0.555-0.566, at 3.4 GB."),
    ("- **Throughput.** 16 concurrent gradio_client clients, 32 requests per app, the summarizer with 2 "
    "replicas x 1 CPU. Each replica decodes all its prompts in one continuous batch: a prompt joins at the "
    "next decoding step and leaves when it ends. Serve's `@serve.batch`, used before, forms its next batch "
    "while the current one still runs (it waits 50 ms for company, then queues that batch behind a "
    "semaphore): under this load the replicas ran batches of 1, 1, 2, 6, 1, 1, ... and reached 1.94x "
    "(median of 3). Single runs of the Serve side alone (float32, other work on the machine): 1.29 "
    "requests/s with `@serve.batch`, 1.76 with batches formed only when the model is free, 2.02 with prompts "
    "joining between steps; then bfloat16 (auto on this CPU, in both apps) reads a prompt 3x faster, which a "
    "batch of 8 prompts feels most. The table above gives tokens/s by batch size inside one replica."),
    ("- **Your own app** (`byo`): `benchmarks/byo_app.py` as a user would write it, served by `gradio-serve up "
    "--app` with 2 replicas and by its own `demo.launch()`, both up at once. Scaling: 8 gradio_client sessions, "
    "3 calls each of a pure-Python function (~0.7 s, holds the GIL, so one process does one at a time); the "
    "sessions stick to their replica and spread 4/4. Overhead: a function that returns at once, 40 interleaved "
    "calls each, p50 difference. Measured per process under that load (through Serve's proxy, before), each "
    "replica used ~0.84 of a core and spent it all on the function; the load generator (~0.16 core), Serve's "
    "proxy (~0.04) and controller and Ray's daemons took the rest. The requests now go straight to the "
    "replicas (see Proxy overhead), so the proxy's share goes to the replicas."),
    ("- **Proxy overhead.** An echo model, so only the path is measured: the app's port, ingress (Gradio's "
    "queue), handle call to the echo deployment, then back, on a cluster started as the supervisor starts it "
    "(`benchmarks/serve_echo.py`). Each gradio_client call is two HTTP requests (queue/join, then the SSE "
    "stream). Serve's HTTP proxy spent ~12 ms of CPU and added ~6-7 ms to each call here (7.3 ms, median of "
    "3, before): each request is a streaming actor call plus the replica's call back to the proxy for the "
    "body. Now the supervisor holds the app's port (`serving/front/port_relay.py`) and sends each request straight "
    "to its session's Gradio replica, on the port where Serve's direct ingress has the replica serve HTTP "
    "itself; with several replicas it reads each request's head to keep sessions sticky "
    "(`serving/front/sessions.py`, the rules Serve's router applies in the proxy). Serve's proxy stays, for what "
    "no replica's port can take. Tried before and not kept: Serve's handle routers and deployments on each "
    "replica's own event loop, gRPC between proxy and replicas, buffered access logs; Ray's HAProxy mode "
    "(0.5 ms in one run) binds two ports on all interfaces, adds a ~190 MB actor and balances replicas "
    "without sticky sessions."),
    ("- **Warm redeploy** is what a user does: `gradio-serve apply --model ...` (the launcher's Apply changes) "
    "on the running app, until the first answer, vs a cold `gradio-serve up`. Deployments are named by slot "
    "and the model is their `user_config`, so Serve calls `reconfigure()` on the running replica: no new "
    "process, torch and Gradio stay imported, and the ingress only relabels its page. The change itself takes "
    "~1.6 s (the CLI's own start included); the rest is the first answer (~1.5 s). Before this, `serve.run` "
    "started new replicas and a new ingress: 6-13 s (ratio 0.28-0.69). The old model's memory is given back "
    "5 s after the swap (it was kept for good before: its decode thread and Serve's start-up freeze held "
    "it); the full collection that frees it, run at once, added ~0.5 s to the swap and its first answer "
    "(3.33 s instead of 2.78 s). The ratio rose with the faster cold start it divides by (0.27 -> ~0.33)."),
    ("- **Time to first token** is measured as the page sees it: gradio_client on the page's streaming "
    "endpoint (the first non-empty partial answer) vs the whole-answer endpoint, embedded model."),
    ("- **Precision.** `auto` is bfloat16 on a CPU with native bfloat16 (AVX-512 BF16 or AMX) and "
    "float32 elsewhere, in both apps alike (the plain app runs the same `Runner`); the machine line above "
    "says which a run had. On an AMD EPYC with AVX-512 BF16 (the runs up to 2026-12-03) bfloat16 read a "
    "108-token prompt in 0.11 s instead of 0.34 s and decoded ~1.2x faster, in half the memory; its answers "
    "differ slightly from float32's (the summary of the benchmark's article: 49 tokens instead of 30, as "
    "sensible); `--dtype float32` keeps the old numerics. On an AMD EPYC with AVX2 only (2026-12-08) "
    "bfloat16 is emulated (8 rows x 48 tokens: 22.2 s, against 7.0 s in float32), so the models run in "
    "float32 and several figures move against the same code on the bfloat16 machine (medians of 3 each): "
    "the model replica holds float32 weights (1015 MB RSS instead of 758; idle fan-out 1983 MB instead of "
    "1735), and a batch costs more per row (a decode step of 2 rows took 86-90 ms against 54-56 ms for 1 "
    "row: MKL's kernel for a few rows of float32), so batching buys less: batch 8 / batch 1 tokens/s 3.68 "
    "(5.24), throughput 3.40x plain (5.43x), and the fan-out, one replica decoding both slots as a batch of "
    "2, 0.727 of the sequential app (0.46). Tried and not kept: the product as `W @ x.T` for 2-5 rows with "
    "2 threads (20-27 % faster per step when the model is called from the main thread, but no faster, or "
    "slower, from the decode loop's thread)."),
    ("- **Idle memory** sums RSS over every process of the running fan-out app (the supervisor's process group: "
    "GCS, raylet, Ray's agents, controller, proxy, ingress and model replicas; the table above lists them). "
    "RSS counts shared pages in each process; PSS (in the notes) shares them out. From 3388 MB: one "
    "replica for the two slots of one model instead of two (-1030 MB: transformers copies the weights, so "
    "two processes held them twice), bfloat16 weights (-~300 MB), and no autoscaler monitor (-83 MB) or "
    "dashboard server (-116 MB), which Serve on one machine does not use and `ray.init` cannot leave out "
    "(`serving/ray_private/`; `--include-dashboard` still starts it). Then pandas (-~135 MB): Serve imports it, "
    "when installed, only to JSON-encode DataFrames a deployment returns, and Gradio installs it; every worker "
    "of our cluster imports Serve with it hidden (`serving/cluster/worker_setup.py`), so the supervisor, controller, "
    "proxy and model replicas are ~33 MB each smaller and only the Gradio ingress, which needs it, loads it. "
    "The figure moves with the machine's state by ~±50 MB: the same code measured 1966-1977 MB alone and "
    "2030-2054 MB inside a whole `make bench` run (before this cut). Then (#23; an Intel 2-core machine, the app "
    "alone, 2 runs each: 2012 MB before) Ray's log monitor runs as a thread of the supervisor (-76 MB: its process, "
    "88 MB, was little more than `import ray`; the replicas' output still reaches supervisor.log, for the same ~0.7% "
    "of a core) and the cluster's processes use two malloc arenas (`MALLOC_ARENA_MAX=2`, -33 MB, 19 of it in the "
    "model replica): 1903 MB. Not kept: no Serve proxy (155 MB): Serve 2.60 opens a replica's direct-ingress port "
    "only when proxies are not Disabled; a dashboard agent with only its metrics module (-16 MB of imports, for "
    "another private hook on its command line); `malloc_trim` after the load (-7 MB). What is left is mostly "
    "imports: `import ray, ray.serve` is ~170 MB in each of the supervisor, controller and proxy, `import ray` "
    "~77 MB of the runtime-env agent's 91 MB (the raylet starts it and waits for it), and in the model replica "
    "transformers 5's model code imports torch.distributed, torch._dynamo and sympy (~98 MB) beside the "
    "257 MB of weights. A fresh install on 2026-12-03 got transformers 5.25, which imports its new dependency "
    "`kernels` wherever transformers is imported (smollm2 loaded in one process: 708 MB RSS instead of 642; "
    "the idle fan-out measured 1925.6 MB in that install's one repetition); 5.25's GGUF path needs `kernels`, "
    "so it cannot be hidden, and pyproject.toml keeps transformers below 5.25: 1735 MB in this run."),
    ("- **First answer.** The table above shows where a cold start goes on 2 cores. Four of Ray's and "
    "Serve's waits were cut (`serving/ray_private/`, `serving/cluster/supervisor.py`): the raylet's first look for "
    "its own object store failed and looked again 1 s later (now every 50 ms); `ray.init` looks for its "
    "raylet in GCS once a second (we look every 50 ms first); `serve.start` waited for the proxy before "
    "anything was deployed (the app is now submitted while the proxy starts); `serve.run` polls the app "
    "status once a second (the supervisor polls itself, every 0.2 s). The loopback hook is set in the "
    "environment rather than as `ray.init`'s runtime_env, so Serve's controller and proxy take the two "
    "workers the raylet starts with the cluster, and Serve's imports load while `ray.init` waits. "
    "The rest is CPU-bound, and the model replica is its critical path: worker start ~0.3 s, Serve's "
    "replica ~0.7 s, then `import torch, transformers` and the load. Python's cyclic collector ran six full "
    "passes over the growing heap during those imports (2.9 s instead of 1.9 s standalone) and four while "
    "the ingress imported Gradio (1.35 s instead of 0.95 s), then Serve's own `gc.collect()` took 0.22 s "
    "before the replica counted as started. Replicas now import and load with the collector paused and "
    "freeze what they built (`serving/replica/startup_gc.py`): model loaded ~1.5 s sooner; `make bench` medians "
    "10.58 s -> 8.6 s at 065f7dc, 9.34 s in this run (a busier machine: load average 2.3 at the start). The answer itself is ~1.5 s (60 tokens on one core; two torch threads "
    "were slower: 1.53-1.68 s). Tried and not kept: more prestarted workers, a 0.1 s Serve control loop, a "
    "lower priority for the ingress while it starts (no gain in repeated runs); the dashboard agent's ports "
    "chosen before the start, so the raylet registers without waiting for the agent (~0.6 s sooner, but "
    "only ~0.1 s on the first answer, as the start is CPU-bound: not worth another private hook)."),
    ("- **A user's app, ready** (`ready`): `gradio-serve up --app F` (1 replica) until its `running` phase and the "
    "page answers, against `python F` until its page answers, over 5 of tests/apps/ (an Interface, gr.State, a "
    "streaming chat, tabs, an image pipeline). CPU seconds per process over one start of text_interface.py "
    "(psutil, until the page answered in 12.1 s, before the change below): the app's import aside 4.7, the "
    "replica 4.4, Serve's controller 1.6 and proxy 1.5, the dashboard agent 1.5, the supervisor 2.2, the "
    "runtime-env agent 0.7: ~22 CPU-s on 2 cores, where `import gradio` alone is ~4.5 s of CPU (each component "
    "class is built at import). The supervisor waited for the import aside to end before it asked for the "
    "replica, which then imported Gradio again. Now a file that by its text cannot be a Serve application (no "
    "`.bind(`) is deployed at once, the import aside at the lowest CPU priority, read as the start goes on "
    "(serving/cluster/app_inspection.py): 7.9-10.9 s instead of 12.5-13.6 s in single runs; `make bench`'s "
    "ratio 3.35 -> 2.42 (2.3-2.44, n=3; 9.9 s vs 4.05 s), on a machine whose host took ~25 % of its CPU "
    "(`top`'s steal) in this run. What is left "
    "is Ray's start (~2.5-3 s) and the replica (~5 s: a new worker, `import ray.serve`, Gradio and the app), "
    "against `python F`'s ~4 s, which is Gradio's import and the app. Tried and not kept: a third prestarted "
    "worker for the replica (no gain in 3 pairs of runs)."),
    ("- **GUI stall**: a 10 ms QTimer on the launcher's main thread through a Start and a Stop with the real "
    "supervisor; `worst_stalls` in latest.json records, for each long gap, how much CPU the main thread itself "
    "used during it (little CPU means the thread was starved or waiting on the GIL, not working). A 5 s idle "
    "control before Start is reported as `idle_control_max_stall_ms`. Quiet: 4.7-8.7 ms. Under load 10-17 the "
    "worst stalls were 855 ms and 146 ms, all while Ray was starting or stopping, with the main thread using "
    "0.1 ms of CPU during the 146 ms one: the thread was not running, so the launcher does no long work on it, "
    "but it is starved when Ray's start-up saturates both cores."),
]


def _notes(r: dict, d: dict) -> dict:
    n = {}
    if "fanout" in d:
        f = d["fanout"]
        n["fanout_vs_sequential_ratio"] = (f"mean {f['serve_mean_s']} s (Serve fan-out, 2 slots x 1 CPU) vs "
                                           f"{f['plain_mean_s']} s (plain Gradio, models one after the other, torch "
                                           f"default 2 threads), same {len(f['prompts'])} prompts x {f['calls_per_prompt']}; "
                                           f"per prompt {f['ratio_per_prompt']}"
                                           + (f"; vs the plain app tuned to 1 thread (first repetition): "
                                              f"{f['plain_1thread_mean_s']} s, ratio {f['ratio_vs_plain_1thread']}"
                                              if "plain_1thread_mean_s" in f else ""))
    if "throughput" in d:
        t = d["throughput"]
        n["throughput_vs_plain_gradio_ratio"] = (f"{t['serve']['rps']} rps (Serve, 2 replicas x 1 CPU, batching) vs "
                                                 f"{t['plain']['rps']} rps (plain demo.launch(), torch default 2 threads); "
                                                 "16 clients"
                                                 + (f". Plain tuned to 1 thread (first repetition): "
                                                    f"{t['plain_1thread']['rps']} rps, ratio {t['ratio_vs_plain_1thread']}"
                                                    if "plain_1thread" in t else ""))
    if "proxy" in d:
        p = d["proxy"]
        n["proxy_overhead_ms_p50"] = (f"echo model: p50 {p['serve_p50_ms']} ms served by us (the app's port straight to "
                                      f"the replica) vs {p['plain_p50_ms']} ms plain")
    if "redeploy" in d:
        w = d["redeploy"]
        n["warm_redeploy_vs_cold_ratio"] = (f"{w['warm_redeploy_first_answer_s']} s (`gradio-serve apply` of a new model "
                                            f"on the running app, to first answer; applied in {w['warm_redeploy_running_s']} s) "
                                            f"vs {w['cold_first_answer_s']} s cold")
    if "cold" in d:
        n["cold_start_s"] = "`gradio-serve up`, embedded model, converted weights cached: command to the 'running' phase"
        n["first_answer_s"] = "command to the first gradio_client answer"
        c = d["cold"]
        if "plain_first_answer_s" in c:
            n["first_answer_vs_plain_ratio"] = (f"{c['first_answer_s']} s ours vs {c['plain_first_answer_s']} s for "
                                                "`python -m benchmarks.plain_app --mode summarize` (demo.launch(), the "
                                                "same model), each from the command to its first answer (last repetition)")
    if "app_ready" in d:
        a = d["app_ready"]
        n["app_ready_vs_plain_ratio"] = (f"median {a['ours_median_s']} s (`gradio-serve up --app F`, ready and the page "
                                         f"answers) vs {a['plain_median_s']} s (`python F`, the page answers) over "
                                         + ", ".join(f"{Path(x['app']).stem} {x['ratio']}" for x in a["apps"])
                                         + " (last repetition)")
    if "relay_tail" in d:
        t = d["relay_tail"]
        n["relay_p99_vs_direct_ratio"] = (f"p99 {t['relay_p99_ms']} ms through the app's port vs {t['direct_p99_ms']} ms "
                                          f"straight to the replicas; p50 {t['relay_p50_ms']} vs {t['direct_p50_ms']} ms; "
                                          f"{sum(t['calls'].values())} calls, 0 failed; the relay holds "
                                          f"{t['relay_kb_per_idle_connection']} KB per idle connection (last repetition)")
    if "ttft" in d:
        t = d["ttft"]
        where = "in the page's streaming endpoint" if t["level"].startswith("page") else \
            "at the deployment handle (stream=True), not in the page"
        n["time_to_first_token_ms"] = (f"measured {where}; full answer {t['full_answer_ms_median']} ms, "
                                       f"ratio {t['ttft_over_full_answer']}")
        if "handle_level" in t and t["level"].startswith("page"):
            h = t["handle_level"]
            n["time_to_first_token_ms"] += f"; at the handle: {h['ttft_ms_median']} ms of {h['full_answer_ms_median']} ms"
    if "idle_memory" in d:
        im = d["idle_memory"]
        n["idle_rss_mb"] = (f"Serve fan-out, {im['serve_fanout']['processes']} processes (PSS {im['serve_fanout']['pss_mb']} MB) "
                            f"vs plain Gradio {im['plain_gradio_fanout']['rss_mb']} MB (PSS "
                            f"{im['plain_gradio_fanout']['pss_mb']} MB); x{im['rss_ratio']}")
    if "byo" in d:
        last = d["byo"]["runs"][-1]
        n["byo_scaling_ratio"] = (f"your own app (benchmarks/byo_app.py, unchanged), 8 sessions of a pure-Python "
                                  f"function: --app --replicas 2 {last['serve']['rps']} rps vs demo.launch() "
                                  f"{last['plain']['rps']} rps (last repetition). The requests go straight to the "
                                  "replicas; the client (~0.16 core) and Ray's daemons take the rest of the 2 cores")
        n["byo_overhead_ms_p50"] = (f"a function that returns at once, gradio_client: p50 {last['serve_echo_p50_ms']} ms "
                                    f"served by us vs {last['plain_echo_p50_ms']} ms by demo.launch() (last repetition)")
    if "reload" in d and d["reload"].get("serve_run_reload_failed"):
        n["serve_run_reload_first_answer_s"] = "never: " + d["reload"]["serve_run_reload_failed"]
    if "gui_shown" in d:
        n["gui_window_shown_s"] = "fresh process, QT_QPA_PLATFORM=offscreen, median of 3 (imports included)"
    if "gui_cycle" in d:
        g = d["gui_cycle"]
        n["gui_max_stall_ms"] = (f"10 ms QTimer during Start+Stop, real supervisor, {TINY_T5}; "
                                 f"p99 {g.get('p99_stall_ms')} ms, worst in '{g.get('max_stall_phase')}'")
        worst = (g.get("worst_stalls") or [None])[0]
        if worst and len(worst) >= 5:
            n["gui_max_stall_ms"] += (f"; the main thread used {worst[3]} ms of CPU during that stall (not running: "
                                      f"starved by the OS or waiting for the GIL); idle control {g.get('idle_control_max_stall_ms')} ms")
    return n
