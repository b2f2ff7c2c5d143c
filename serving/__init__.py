"""Serve Gradio apps with Ray Serve. `from serving import GradioServer, GradioIngress` replaces
Ray's `ray.serve.gradio_integrations` (see serving/replica/gradio_server.py).

Imported lazily: the launcher imports serving's light modules (config, events) without Ray.
"""

__all__ = ["GradioIngress", "GradioServer", "session_router_config"]


def __getattr__(name: str):
    if name in ("GradioIngress", "GradioServer"):
        from serving.replica import gradio_server

        return getattr(gradio_server, name)
    if name == "session_router_config":
        from serving.replica.sticky import session_router_config

        return session_router_config
    raise AttributeError(f"module 'serving' has no attribute {name!r}")
