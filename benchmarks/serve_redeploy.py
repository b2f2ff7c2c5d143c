"""Warm redeploy and time to first token, on one cluster that stays up.

1. Start a local cluster and Serve, deploy the summarizer with a tiny model (tiny-random/t5).
2. Warm redeploy: serve.run() of a new configuration (the embedded model) on the running
   cluster, until the first answer through gradio_client. Prints {"warm_redeploy_s": ...}.
3. Time to first token at the deployment handle (ModelDeployment.stream with stream=True),
   against the full answer (ModelDeployment.generate) on the same replica.
4. The same as the page sees it: gradio_client on the page's streaming endpoint
   (/summarize_stream), against the whole-answer endpoint (/summarize).

    python -m benchmarks.serve_redeploy PORT      # JSON lines on stdout
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("GRADIO_SERVE_STATE_DIR", "/tmp")

import ray
from ray import serve

from benchmarks.common import ARTICLE, EMBEDDED, TINY_T5, gclient, wait_http


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def main() -> None:
    port = int(sys.argv[1])
    streams = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    from serving.apps import build_app, deployment_name, resolve_models
    from serving.config import APP_NAME, HttpConfig, LaunchConfig, ModelSlot

    url = f"http://127.0.0.1:{port}/"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             namespace="gsl-bench", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    first = LaunchConfig(models=[ModelSlot(model=TINY_T5)], http=HttpConfig(port=port))
    serve.run(build_app(first), name=APP_NAME, route_prefix="/")
    wait_http(url, 60)
    gclient(url).predict(ARTICLE, api_name="/summarize")
    emit(phase="first_app_running")

    second = LaunchConfig(models=[ModelSlot(model=EMBEDDED)], http=HttpConfig(port=port))
    t0 = time.monotonic()
    entries = resolve_models(second)
    serve.run(build_app(second, entries), name=APP_NAME, route_prefix="/")
    t_running = time.monotonic() - t0
    answer = gclient(url).predict(ARTICLE, api_name="/summarize")
    t_answer = time.monotonic() - t0
    emit(warm_redeploy_running_s=round(t_running, 3), warm_redeploy_s=round(t_answer, 3), answer=answer[:200])

    handle = serve.get_deployment_handle(deployment_name(0, entries[0]), app_name=APP_NAME)
    rows = []
    for _ in range(streams):
        t0 = time.monotonic()
        first_t = None
        pieces = 0
        for _partial in handle.options(stream=True).stream.remote(ARTICLE):
            if first_t is None:
                first_t = time.monotonic() - t0
            pieces += 1
        stream_total = time.monotonic() - t0
        t1 = time.monotonic()
        handle.generate.remote(ARTICLE).result()
        full = time.monotonic() - t1
        rows.append({"ttft_s": round(first_t, 4), "stream_total_s": round(stream_total, 3),
                     "full_answer_s": round(full, 3), "pieces": pieces})
    emit(ttft=rows)

    # The same in the page: gradio_client on the streaming endpoint the page's button uses.
    client = gclient(url)
    page = []
    for _ in range(streams):
        t0 = time.monotonic()
        first_t = None
        updates = 0
        job = client.submit(ARTICLE, api_name="/summarize_stream")
        for out in job:
            updates += 1
            if first_t is None and isinstance(out, str) and out.strip():
                first_t = time.monotonic() - t0
        job.result()
        stream_total = time.monotonic() - t0
        t1 = time.monotonic()
        client.predict(ARTICLE, api_name="/summarize")
        full = time.monotonic() - t1
        page.append({"ttft_s": round(first_t, 4) if first_t is not None else None,
                     "stream_total_s": round(stream_total, 3), "full_answer_s": round(full, 3), "updates": updates})
    emit(page_ttft=page)
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
