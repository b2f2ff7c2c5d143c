"""The supervisor (`gradio-serve up`): a Ray driver that starts a local cluster or connects to one,
deploys the app, watches it, applies changes and stops it (supervisor.py, cluster_checks.py), and
writes Serve configs (export.py). A cluster it starts is set up by local_cluster.py and loopback.py,
and every worker there runs worker_setup.py's hook; reaper.py is its watchdog, a process of its own.

It may import every room below it: serving.replica, serving.ray_private, serving.front and
serving.core (docs/ARCHITECTURE.md).
"""
