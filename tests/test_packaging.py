"""Packaging: a wheel and an editable install without setuptools warnings, the data files and the
license shipped, every imported package declared (and none declared for nothing), the
`python -m` entry points, and a `--version` that answers without loading Qt.

The wheel and the editable install build from a copy of the tree as a clone has it (tracked and
untracked-but-not-ignored files), so no build/ or *.egg-info is left in the checkout.
(A fresh virtual environment with everything installed, serving for real: test_fresh_install.py.)
"""

from __future__ import annotations

import ast
import email
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# A Python warning as printed ("...: SomethingWarning: message"), e.g. setuptools' BuildBackendWarning,
# SetuptoolsDeprecationWarning. pip's own "WARNING: Location ... is ignored" (this machine's pip
# configuration, not the project) is not one.
WARNING = re.compile(r"\b\w*Warning\b")
OWN = {"serving", "launcher"}
# Declared, not imported by name: what they are for.
NOT_IMPORTED_ON_PURPOSE = {
    "accelerate": "transformers needs it to load the embedded GGUF",
    "gguf": "transformers reads the embedded GGUF with it",
    "safetensors": "the converted embedded model is saved as safetensors",
    "tokenizers": "the fast tokenizers transformers loads",
    "gradio-client": "the README's API client (from gradio_client import Client)",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def copy_of_the_tree(dest: Path) -> Path:
    """The files a clone has (plus new, not ignored ones), without .git, .venv or build output."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def python_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if WARNING.search(line)]


def test_wheel_builds_without_warnings_and_ships_data_and_license(tmp_path):
    tree = copy_of_the_tree(tmp_path / "src")
    result = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(tree)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert python_warnings(output) == [], output

    (wheel,) = (tmp_path / "dist").glob("gradio_serve_launcher-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(info))
        entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
        shipped_license = zf.read(info.replace("METADATA", "licenses/LICENSE"))
    # Every file under resources/ is in the wheel as launcher/resources/...
    resources = {str(p.relative_to(ROOT / "resources")) for p in (ROOT / "resources").rglob("*") if p.is_file()}
    assert resources, "resources/ is empty?"
    missing = sorted(r for r in resources if f"launcher/resources/{r}" not in names)
    assert missing == [], f"not in the wheel: {missing}"
    for package in ("serving", "launcher"):
        assert f"{package}/__init__.py" in names and f"{package}/__main__.py" in names
        # Every module ships: a subpackage missing from pyproject's list would be left out of the wheel.
        modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")}
        assert sorted(modules - names) == [], f"modules not in the wheel: {sorted(modules - names)}"
    assert not any(n.startswith(("tests/", "benchmarks/", "scripts/")) for n in names)
    # The license: an SPDX expression and the file itself.
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    assert shipped_license == (ROOT / "LICENSE").read_bytes()
    assert "gradio-serve = serving.cli:main" in entry_points
    assert "gradio-serve-launcher = launcher.app:main" in entry_points
    requires = {_norm(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in meta.get_all("Requires-Dist")}
    assert "superqt" not in requires and {"filelock", "fastapi"} <= requires


def test_editable_install_as_make_install_does_it_is_quiet(tmp_path):
    """`make install`'s editable step prints nothing; the only filter it uses is setuptools'
    information-only notice, so a real warning would still show (and fail this test)."""
    makefile = (ROOT / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if "install -q -e" in line)
    filters = re.findall(r'PYTHONWARNINGS="([^"]*)"', line)
    assert filters == ["ignore:Editable installation"], line
    tree = copy_of_the_tree(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The project's own pip, run for the new environment (no download of pip itself).
    env = {**os.environ, "PYTHONWARNINGS": filters[0]}
    result = subprocess.run(
        [PYTHON, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", "-e", str(tree)],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert python_warnings(output) == [], output
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import launcher.desktop_entry as d; print(d.resources_dir())"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == str(tree / "resources"), probe.stdout + probe.stderr


def test_license_is_the_apache_2_text():
    assert pyproject()["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    for part in ("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "9. Accepting Warranty or Additional",
                 "END OF TERMS AND CONDITIONS", "APPENDIX: How to apply the Apache License to your work."):
        assert part in text
    assert len(text) > 11000


def _imports(folder: Path) -> dict[str, str]:
    """Top-level names imported by the package's sources (absolute imports), with one place each."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_imported_package_is_declared_and_every_declared_one_used():
    declared = {_norm(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in pyproject()["project"]["dependencies"]}
    owners = metadata.packages_distributions()
    imported = {**_imports(ROOT / "launcher"), **_imports(ROOT / "serving")}
    third_party = {m: where for m, where in imported.items()
                   if m not in sys.stdlib_module_names and m not in OWN and m != "__future__"}
    undeclared, used = [], set()
    for module, where in sorted(third_party.items()):
        dists = {_norm(d) for d in owners.get(module, [])}
        assert dists, f"{module} ({where}) is imported but not installed here"
        if dists & declared:
            used |= dists & declared
        else:
            undeclared.append(f"{module} ({where}) from {sorted(dists)}")
    assert undeclared == [], f"imported but not in [project] dependencies: {undeclared}"
    unused = sorted(declared - used - set(NOT_IMPORTED_ON_PURPOSE))
    assert unused == [], f"declared but never imported by serving/ or launcher/: {unused}"
    assert set(NOT_IMPORTED_ON_PURPOSE) <= declared


@pytest.mark.parametrize(("module", "prog"), [("serving", "gradio-serve"), ("launcher", "gradio-serve-launcher")])
def test_python_m_runs_the_commands(module, prog, tmp_path):
    version = metadata.version("gradio-serve-launcher")
    result = subprocess.run([PYTHON, "-m", module, "--version"], capture_output=True, text=True, timeout=120,
                            check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{prog} {version}"
    helped = subprocess.run([PYTHON, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                            check=False, cwd=ROOT, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert helped.returncode == 0 and helped.stdout.startswith(f"usage: {prog} "), helped.stdout + helped.stderr


def test_launcher_version_answers_without_loading_qt():
    result = subprocess.run([PYTHON, "-X", "importtime", "-m", "launcher.app", "--version"], capture_output=True,
                            text=True, timeout=120, check=False, cwd=ROOT, env={**os.environ, "DISPLAY": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"gradio-serve-launcher {metadata.version('gradio-serve-launcher')}"
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    heavy = sorted(loaded & {"PySide6", "shiboken6", "pydantic", "serving", "ray", "gradio", "torch"})
    assert heavy == [], f"--version imported {heavy}"
