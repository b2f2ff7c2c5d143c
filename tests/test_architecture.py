"""The house's walls (docs/ARCHITECTURE.md), as import-linter contracts in pyproject.toml: serving's rooms
import downwards only (cli, apps, cluster, replica, ray_private, front, core); its light rooms import
no Ray, Gradio, torch, transformers or Qt; the launcher reaches none of them; serving imports no Qt.
A broken contract fails here with import-linter's report of the offending chain."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), "import-linter is missing: pip install -e '.[test]'"
    out = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _light(name: str) -> bool:
    return any(name == room or name.startswith(room + ".") for room in _contracts()["light-core"]["source_modules"])


def test_the_launcher_imports_only_the_light_core():
    # The contract above forbids what the light rooms must never reach; this checks that the launcher
    # stays inside them, so a heavier serving module it wants is moved there on purpose.
    offenders = []
    for path in sorted((ROOT / "launcher").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from serving.core import paths` imports serving.core.paths
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module.startswith("serving") else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names
                          if n.split(".")[0] == "serving" and not _light(n)]
    assert offenders == []


def test_every_core_module_exists():
    # import-linter reports a missing source module too, but this says which name is stale.
    for module in _contracts()["light-core"]["source_modules"]:
        assert (ROOT / module.replace(".", "/") / "__init__.py").exists(), module


def test_every_module_of_serving_is_in_a_room_the_layers_name():
    """A file's path says which process runs it: every module is in a room (a subpackage), or is one of
    the public faces at the top; the layers contract names them all."""
    layers = _contracts()["layers"]["layers"]
    faces = {"__init__", "__main__", "cli", "apps", "ray_private"}
    for path in sorted((ROOT / "serving").glob("*.py")):
        assert path.stem in faces, f"{path.name} sits outside the rooms: move it into one (docs/ARCHITECTURE.md)"
    rooms = {p.name for p in (ROOT / "serving").iterdir() if (p / "__init__.py").exists()}
    assert {f"serving.{r}" for r in rooms} | {f"serving.{f}" for f in faces - {"__init__", "__main__"}} == set(layers)
    for room in rooms:
        assert (ROOT / "serving" / room / "__init__.py").read_text().startswith('"""'), f"{room} says where it runs"
