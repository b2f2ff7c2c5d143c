"""The light core, shared by every process of ours: the launcher's window, the `gradio-serve` CLI and
the supervisor. Configuration and its bounds, the event protocol and the records the supervisor
leaves, this machine's size, the checks made before a start, the model catalog and the embedded
model, a TARGET parsed without importing it, process groups.

It may import pydantic, platformdirs, psutil, filelock, yaml and the standard library, nothing of
Ray, Gradio, torch, transformers or Qt, and nothing else of serving (the `layers` and `light-core`
contracts in pyproject.toml; docs/ARCHITECTURE.md).
"""
