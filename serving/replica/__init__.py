"""What runs inside Ray's workers: the Gradio ingress and its drop-in (gradio_server.py), a user's
app found and loaded with its own launch() settings (app_target.py, launch_settings.py), the
built-in UI (ui.py), the model deployments and decoding (deployments.py, models.py, decoding.py,
batcher.py), Serve's session router in its proxy (sticky.py), and the start-up collector
(startup_gc.py). apps.py builds the Serve application from a configuration: the supervisor,
`serve run` and `serve deploy` call it, and its deployments run here.

It may import serving.core, serving.front, serving.ray_private, Ray, Gradio, torch and
transformers; never Qt, and nothing of serving.cluster (docs/ARCHITECTURE.md).
"""
