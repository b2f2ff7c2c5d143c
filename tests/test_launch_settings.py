"""An app's own launch() and queue() settings, kept when served (serving/replica/launch_settings.py).

Each app is a real file imported the way a replica imports it (serving/app_target.load_app, in a
child process: it changes the working directory), and the settings applied to its real Blocks as
the replica applies them before `gr.mount_gradio_app`.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from supervisor_run import ROOT

from serving.replica.launch_settings import FLAG, HONOURED, LAUNCH, NOT_APPLICABLE, QUEUE, REFUSED

PROBE = """
import json, sys
from serving.replica.app_target import load_app, AppLoadError
from serving.replica.launch_settings import apply
try:
    app = load_app(sys.argv[1], login_given=sys.argv[2] == "1")
except AppLoadError as exc:
    print(json.dumps({"error": str(exc), "hint": exc.hint})); sys.exit(0)
mount = apply(app.blocks, app.settings, {"auth": None, "root_path": None})
auth = mount.get("auth")
print(json.dumps({
    "mount": {k: (v if isinstance(v, (str, int, bool, list, type(None))) else type(v).__name__) for k, v in mount.items()},
    "auth": auth if isinstance(auth, (list, tuple)) else (type(auth).__name__ if auth else None),
    "max_threads": app.blocks.max_threads,
    "queue": [app.blocks._queue.max_size, app.blocks._queue.default_concurrency_limit],
    "warnings": app.settings.warnings,
}))
"""


def served(tmp_path: Path, source: str, target_suffix: str = "", login_given: bool = False, env=None) -> dict:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(source))
    run = subprocess.run([sys.executable, "-c", PROBE, f"{path}{target_suffix}", "1" if login_given else "0"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_every_launch_and_queue_parameter_has_a_fate_and_a_row_in_the_readme():
    """A Gradio release that adds a parameter fails here until the table says what becomes of it."""
    import gradio as gr

    for method, table in (("launch", LAUNCH), ("queue", QUEUE)):
        params = [p for p in inspect.signature(getattr(gr.Blocks, method)).parameters if p != "self"]
        assert sorted(params) == sorted(table), f"{method}(): table and Gradio differ: {set(params) ^ set(table)}"
        assert {fate for fate, _ in table.values()} <= {HONOURED, FLAG, NOT_APPLICABLE, REFUSED}
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(?:launch|queue)\((\w+)\)` \| ([a-z ]+) \|", readme, re.MULTILINE))
    expected = {name: fate for table in (LAUNCH, QUEUE) for name, (fate, _) in table.items()}
    assert rows == expected, {k: (rows.get(k), expected.get(k)) for k in rows.keys() | expected.keys()
                              if rows.get(k) != expected.get(k)}


def test_errors_stay_hidden_as_with_launch_unless_the_app_shows_them(tmp_path):
    plain = served(tmp_path, """
        import gradio as gr
        demo = gr.Interface(lambda x: 1 / 0, "textbox", "textbox")
        if __name__ == "__main__":
            demo.launch()
    """)
    assert plain["mount"]["show_error"] is False
    shown = served(tmp_path, """
        import gradio as gr
        demo = gr.Interface(lambda x: 1 / 0, "textbox", "textbox")
        if __name__ == "__main__":
            demo.launch(show_error=True)
    """)
    assert shown["mount"]["show_error"] is True


@pytest.mark.parametrize("source, suffix", [
    # The builder's result launched in the main block (the call's owner is not the target's name).
    ("""
        import gradio as gr
        def build():
            return gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            build().launch(auth=("ann", "secret"))
    """, ":build"),
    ("""
        import gradio as gr
        def build():
            return gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            demo = build()
            demo.queue().launch(auth=[("ann", "secret")])
    """, ":build"),
    # In a main() function, with a module constant.
    ("""
        import gradio as gr
        LOGIN = ("ann", "secret")
        demo = gr.Blocks()
        def main():
            demo.launch(server_name="0.0.0.0", auth=LOGIN)
        if __name__ == "__main__":
            main()
    """, ""),
    # Run at import, positionally.
    ("""
        import gradio as gr
        demo = gr.Interface(str, "textbox", "textbox")
        demo.launch(False, False, False, False, 40, ("ann", "secret"))
    """, ""),
    # Through a **mapping.
    ("""
        import gradio as gr
        OPTS = {"auth": ("ann", "secret")}
        demo = gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            demo.launch(**OPTS)
    """, ""),
])
def test_a_login_is_kept_however_launch_is_called(tmp_path, source, suffix):
    found = served(tmp_path, source, suffix)
    assert "error" not in found, found
    assert found["auth"] in (["ann", "secret"], [["ann", "secret"]]), found


def test_an_auth_dependency_or_function_is_kept(tmp_path):
    found = served(tmp_path, """
        import gradio as gr
        def who(request):
            return request.headers.get("x-user")
        def check(user, password):
            return password == "pw"
        demo = gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            demo.launch(auth_dependency=who)
    """)
    assert found["mount"].get("auth_dependency") == "function", found
    found = served(tmp_path, """
        import gradio as gr
        def check(user, password):
            return password == "pw"
        demo = gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            demo.launch(auth=check)
    """)
    assert found["auth"] == "function", found


def test_a_login_that_cannot_be_read_refuses_the_start_and_names_the_line(tmp_path):
    source = """
        import os
        import gradio as gr
        demo = gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            user = os.environ.get("APP_USER", "ann")
            demo.launch(auth=(user, "secret"))
    """
    found = served(tmp_path, source)
    assert re.search(r"app\.py, line 7: the app's login cannot be read", found.get("error", "")), found
    assert "--username and --password" in found["hint"]
    # Our own login replaces it: the start goes on.
    assert served(tmp_path, source, login_given=True)["auth"] is None


def test_queue_and_threads_of_the_main_block_are_applied(tmp_path):
    found = served(tmp_path, """
        import gradio as gr
        demo = gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            demo.queue(default_concurrency_limit=3, max_size=7).launch(max_threads=5, root_path="/x", ssr_mode=False)
    """)
    assert found["queue"] == [7, 3] and found["max_threads"] == 5, found
    assert found["mount"]["root_path"] == "/x" and found["mount"]["ssr_mode"] is False
    assert "max_threads" not in found["mount"]


def test_settings_we_do_not_apply_are_named_and_tls_is_refused(tmp_path):
    found = served(tmp_path, """
        import gradio as gr
        demo = gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            demo.launch(share=True, server_port=7861, strict_cors=False, inbrowser=False)
    """)
    joined = "\n".join(found["warnings"])
    assert "launch(share=True) is not applied" in joined and "launch(server_port=7861)" in joined, joined
    assert "strict_cors" in joined and "inbrowser" not in joined  # a default is not worth a word
    found = served(tmp_path, """
        import gradio as gr
        demo = gr.Interface(str, "textbox", "textbox")
        demo.launch(ssl_certfile="cert.pem", ssl_keyfile="key.pem")
    """)
    assert re.search(r"line 4: launch\(ssl_certfile=\.\.\.\) cannot be kept", found.get("error", "")), found


def test_another_apps_launch_does_not_leak_onto_the_served_one(tmp_path):
    found = served(tmp_path, """
        import gradio as gr
        admin = gr.Interface(str, "textbox", "textbox")
        public = gr.Interface(str, "textbox", "textbox")
        if __name__ == "__main__":
            admin.launch(auth=("root", "pw"))
            public.launch(css="body {color: red}")
    """, ":public")
    assert found["auth"] is None and found["mount"]["css"] == "body {color: red}", found


def test_gradio_environment_variables_are_read_as_launch_reads_them(tmp_path):
    found = served(tmp_path, """
        import gradio as gr
        demo = gr.Interface(str, "textbox", "textbox")
    """, env={"GRADIO_ROOT_PATH": "/proxied", "GRADIO_ALLOWED_PATHS": "/a, /b", "GRADIO_SERVER_PORT": "7999"})
    assert found["mount"]["root_path"] == "/proxied" and found["mount"]["allowed_paths"] == ["/a", "/b"], found
