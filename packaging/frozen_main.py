"""Entry point of the PyInstaller build (packaging/gradio-serve-launcher.spec).

A frozen app has no Python interpreter of its own: `sys.executable` is this program.
Ray starts its workers and agents as `sys.executable [-u|-S|-s ...] some_script.py args`
(and the launcher starts its supervisor as `sys.executable -m serving.cli up ...`), so
this entry acts as the interpreter for those command lines and as the launcher otherwise:

    gradio-serve-launcher [launcher flags]          the window and tray (launcher.app)
    gradio-serve-launcher gradio-serve <command>    the headless CLI (serving.cli)
    gradio-serve-launcher -m module args            like python -m
    gradio-serve-launcher -c code args              like python -c
    gradio-serve-launcher path/to/script.py args    like python script.py
    gradio-serve-launcher --frozen-selftest [serve] ray.init + one remote task (+ the summarizer app), exit
"""

from __future__ import annotations

import os
import runpy
import sys

# Interpreter options Ray and others pass that take no value; they are accepted and ignored
# (-u: unbuffered -> set below; -S/-s/-E/-I/-B: site and environment handling, moot when frozen).
_FLAGS = {"-u", "-S", "-s", "-E", "-I", "-B", "-q", "-O", "-OO", "-b", "-bb"}


def _emulate_python(argv: list[str]) -> int | None:
    """Run argv as `python argv...` would; None when argv is not a Python command line."""
    args = list(argv)
    saw_flag = False
    while args and (args[0] in _FLAGS or args[0] in ("-W", "-X")):
        if args[0] in ("-W", "-X"):
            args = args[2:]
        else:
            if args[0] == "-u":
                os.environ["PYTHONUNBUFFERED"] = "1"
            args = args[1:]
        saw_flag = True
    if not args:
        return None if not saw_flag else 0
    head = args[0]
    if head == "-m" and len(args) >= 2:
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    if head == "-c" and len(args) >= 2:
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - python -c
        return 0
    if head.endswith(".py") and os.path.isfile(head):
        sys.argv = [head, *args[1:]]
        sys.path.insert(0, os.path.dirname(os.path.abspath(head)))
        runpy.run_path(head, run_name="__main__")
        return 0
    return None


def _selftest(serve_app: bool) -> int:
    """Ray workers start from the frozen app; with `serve`, the summarizer (embedded model) too."""
    import time
    import urllib.request

    import ray

    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=True)

    @ray.remote
    def square(x: int) -> int:
        return x * x

    value = ray.get(square.remote(7), timeout=120)
    print(f"selftest: ray.init + remote task -> {value} in {time.monotonic() - started:.1f}s", flush=True)
    ok = value == 49
    if serve_app and ok:
        from ray import serve

        from serving.replica.apps import build_app, default_config

        serve.run(build_app(default_config("summarize")), name="selftest", route_prefix="/")
        with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=60) as response:
            page = response.read().decode("utf-8", "replace")
        ok = response.status == 200 and "gradio" in page.lower()
        print(
            f"selftest: summarizer app RUNNING, GET / -> {response.status} in {time.monotonic() - started:.1f}s",
            flush=True,
        )
        try:
            from gradio_client import Client

            client = Client("http://127.0.0.1:8000/", verbose=False)
            api = client.view_api(print_info=False, return_format="dict")
            endpoint = next(iter(api["named_endpoints"]))
            text = "Ray Serve scales Gradio apps across CPUs and GPUs. " * 3
            result = client.predict(text, api_name=endpoint)
            print(f"selftest: {endpoint} -> {str(result)[:200]!r}", flush=True)
        except Exception as exc:  # noqa: BLE001 - report, the page check decides
            print(f"selftest: prediction through gradio_client failed: {exc!r}", flush=True)
        serve.shutdown()
    ray.shutdown()
    return 0 if ok else 1


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--frozen-selftest"]:
        return _selftest(serve_app=argv[1:2] == ["serve"])
    if argv[:1] == ["gradio-serve"]:
        from serving.cli import main as cli_main

        sys.argv = ["gradio-serve", *argv[1:]]
        return cli_main() or 0
    emulated = _emulate_python(argv)
    if emulated is not None:
        return emulated
    from launcher.app import main as app_main

    return app_main() or 0


if __name__ == "__main__":
    import multiprocessing

    multiprocessing.freeze_support()
    sys.exit(main())
