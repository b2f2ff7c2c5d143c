"""Finding a user's Gradio app from a TARGET (serving/replica/app_target.py), and every way it can fail.

The inspector (`python -m serving.replica.app_target TARGET --json`) runs for real in a child process, as
the launcher and the supervisor run it: it imports the user's file there and says what it found.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from supervisor_run import ROOT

from serving.replica.app_target import AppLoadError, absolute_target, parse_target


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def inspect(target: str, cwd: Path | None = None, *extra: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "serving.replica.app_target", target, "--json", *extra], cwd=cwd or ROOT,
                         capture_output=True, text=True, timeout=120, check=False,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == (0 if result["ok"] else 2), run.stderr[-2000:]
    return result


def test_parse_target_forms(tmp_path):
    t = parse_target("demo.py", tmp_path)
    assert (t.file, t.module, t.name) == (tmp_path / "demo.py", None, None)
    t = parse_target("sub/demo.py:build", tmp_path)
    assert (t.file, t.name) == (tmp_path / "sub" / "demo.py", "build")
    t = parse_target("pkg.app:demo")
    assert (t.file, t.module, t.name) == (None, "pkg.app", "demo")
    with pytest.raises(AppLoadError, match="neither a .py file nor a module"):
        parse_target("not a module!")
    with pytest.raises(AppLoadError, match="no app given"):
        parse_target("  ")


def test_absolute_target_keeps_the_name_and_a_module_gets_its_folder(tmp_path):
    assert absolute_target("demo.py:ui", tmp_path) == (f"{tmp_path / 'demo.py'}:ui", None)
    assert absolute_target("pkg.app:demo", tmp_path) == ("pkg.app:demo", str(tmp_path.resolve()))


def test_blocks_interface_and_chat_are_found_with_their_kind(tmp_path):
    write(tmp_path, "blocks.py", """
        import gradio as gr
        with gr.Blocks() as demo:
            gr.Markdown("hi")
        if __name__ == "__main__":
            raise SystemExit("the __main__ block must not run")
    """)
    write(tmp_path, "chat.py", """
        import gradio as gr
        chat = gr.ChatInterface(lambda message, history: message)
    """)
    found = inspect(str(tmp_path / "blocks.py"))
    assert (found["name"], found["kind"]) == ("demo", "gr.Blocks"), found
    found = inspect(str(tmp_path / "chat.py"))
    assert (found["name"], found["kind"], found["folder"]) == ("chat", "gr.ChatInterface", str(tmp_path))


def test_tabs_inside_a_tabbed_interface_are_not_candidates(tmp_path):
    write(tmp_path, "tabs.py", """
        import gradio as gr
        a = gr.Interface(lambda x: x, "textbox", "textbox")
        b = gr.Interface(lambda x: x[::-1], "textbox", "textbox")
        demo = gr.TabbedInterface([a, b], ["echo", "reverse"])
    """)
    found = inspect(str(tmp_path / "tabs.py"))
    assert (found["name"], found["kind"]) == ("demo", "gr.TabbedInterface")
    assert inspect(str(tmp_path / "tabs.py") + ":a")["kind"] == "gr.Interface"


def test_builder_module_target_sibling_import_and_relative_file(tmp_path):
    (tmp_path / "pkg").mkdir()
    write(tmp_path / "pkg", "__init__.py", "")
    write(tmp_path / "pkg", "helpers.py", "GREETING = open('greeting.txt').read().strip()\n")
    write(tmp_path, "greeting.txt", "hello from a data file\n")
    write(tmp_path / "pkg", "ui.py", """
        import gradio as gr
        from pkg.helpers import GREETING

        def build_demo():
            return gr.Interface(lambda x: GREETING + x, "textbox", "textbox")
    """)
    found = inspect("pkg.ui:build_demo", cwd=tmp_path)
    assert found["ok"] and found["name"] == "build_demo()" and found["kind"] == "gr.Interface", found
    assert found["folder"] == str(tmp_path)


def test_the_look_asked_of_launch_is_kept(tmp_path):
    """Gradio 6 takes theme/css in launch(): from a top-level call, or from the __main__ block's."""
    import sys

    write(tmp_path, "themed.py", """
        import gradio as gr
        CSS = ".gradio-container {max-width: 600px}"
        with gr.Blocks() as demo:
            gr.Markdown("hi")
        if __name__ == "__main__":
            demo.queue().launch(theme=gr.themes.Soft(), css=CSS, server_port=9999)
    """)
    write(tmp_path, "top_level.py", """
        import gradio as gr
        with gr.Blocks() as ui:
            gr.Markdown("hi")
        ui.launch(css="body {color: red}", share=True)
    """)
    code = ("import sys, json; from serving.replica.app_target import load_app; a = load_app(sys.argv[1]); "
            "print(json.dumps({k: type(v).__name__ if k == 'theme' else v for k, v in a.settings.launch.items()}))")
    def kwargs_of(path):
        run = subprocess.run([sys.executable, "-c", code, str(path)], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, check=False, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads(run.stdout.strip().splitlines()[-1])

    assert kwargs_of(tmp_path / "themed.py") == {"theme": "Soft", "css": ".gradio-container {max-width: 600px}"}
    assert kwargs_of(tmp_path / "top_level.py") == {"css": "body {color: red}"}  # share is not for us


def test_a_top_level_launch_is_skipped_not_run(tmp_path):
    write(tmp_path, "launched.py", """
        import gradio as gr
        with gr.Blocks() as demo:
            gr.Markdown("hi")
        demo.launch(theme="soft", server_port=1)  # would block (or fail on port 1) if it ran
    """)
    found = inspect(str(tmp_path / "launched.py"))
    assert found["ok"] and found["name"] == "demo", found


@pytest.mark.parametrize("name, source, target_suffix, error, hint", [
    ("syntax.py", "import gradio as gr\ndemo = gr.Blocks(\n", "", r"syntax\.py, line \d+: ", "syntax error"),
    ("missing_pkg.py", "import gradio as gr\nimport no_such_package_here\n", "",
     r"missing_pkg\.py, line 2: imports 'no_such_package_here', which is not installed here",
     "pip install no_such_package_here"),
    ("raises.py", "import gradio as gr\nx = 1\nraise RuntimeError('boom at import')\n", "",
     r"raises\.py, line 3: RuntimeError: boom at import", "fix the error"),
    ("none.py", "import gradio as gr\ndef make():\n    return gr.Blocks()\n", "",
     r"no gr\.Blocks found at the top level of .*none\.py \(functions: make\)", "none.py:make"),
    ("several.py", ("import gradio as gr\nx = gr.Interface(str, 'textbox', 'textbox')\n"
                    "y = gr.Interface(str, 'textbox', 'textbox')\n"), "", r"several Gradio apps: x \(gr\.Interface\), y \(gr\.Interface\)",
     "several.py:x"),
    ("builder_raises.py", "import gradio as gr\ndef build():\n    raise ValueError('no config')\n", ":build",
     r"builder_raises\.py, line 3: build\(\) raised ValueError: no config", "fix the builder"),
    ("builder_wrong.py", "def build():\n    return 42\n", ":build", r"build\(\) in .* returned int, not a gr\.Blocks",
     "return the gr.Blocks"),
    ("unknown_name.py", "import gradio as gr\ndemo = gr.Blocks()\n", ":ui",
     r"has no top-level 'ui' \(found: demo \(gr\.Blocks\)\)", "check the name"),
    ("exits.py", "import sys\nsys.exit(3)\n", "", r"called sys\.exit\(3\)", "__main__"),
])
def test_bad_apps_are_named_with_file_line_and_fix(tmp_path, name, source, target_suffix, error, hint):
    path = write(tmp_path, name, source)
    found = inspect(str(path) + target_suffix)
    assert not found["ok"]
    import re

    assert re.search(error, found["error"]), found["error"]
    assert hint in found["hint"], found["hint"]


def test_a_missing_file_and_a_folder(tmp_path):
    assert "does not exist" in inspect(str(tmp_path / "nope.py"))["error"]
    (tmp_path / "dir.py").mkdir()
    assert "is not a file" in inspect(str(tmp_path / "dir.py"))["error"]
