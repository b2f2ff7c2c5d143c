"""Serve's import paths, as in Ray's guide and in every config `gradio-serve export` writes:

    serve run serving.apps:summarizer
    serve run serving.apps:fanout
    serve run serving.apps:builder mode=fanout   (args: mode, config=FILE)
    serving.apps:serve_app_file                  (args: target: a Serve application file, as exported)

A public face that stays where users and exported files find it; serving/replica/apps.py builds
the application (imported on first use, so importing this module stays cheap).
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "serve_app_file":
        from serving.replica.serve_app import builder

        return builder
    if name in ("builder", "summarizer", "fanout", "build_app"):
        from serving.replica import apps

        return getattr(apps, name)
    raise AttributeError(f"module 'serving.apps' has no attribute {name!r}")
