"""The house's walls (DESIGN.md), as import-linter contracts in pyproject.toml: serving's light core
imports no Ray, Gradio, torch, transformers or Qt; the launcher reaches none of them; serving imports
no Qt. A broken contract fails here with import-linter's report of the offending chain."""

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


def test_the_launcher_imports_only_the_light_core():
    # The contract above forbids what the core must never reach; this names the core itself, so a
    # new serving module the launcher wants is added to it (and so checked) on purpose.
    core = set(_contracts()["light-core"]["source_modules"])
    offenders = []
    for path in sorted((ROOT / "launcher").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from serving import paths` imports serving.paths
                names = [f"serving.{a.name}" for a in node.names] if node.module == "serving" else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names
                          if n.split(".")[0] == "serving" and n not in core]
    assert offenders == []


def test_every_core_module_exists():
    # import-linter reports a missing source module too, but this says which name is stale.
    for module in _contracts()["light-core"]["source_modules"]:
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), module
