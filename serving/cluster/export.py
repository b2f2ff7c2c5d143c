"""A Serve config file (`serve deploy`) and a KubeRay RayService around it.

The file runs the same builder the launcher runs (serving.apps:builder) with
the configuration inline, and spells out each deployment's resources so they
can be tuned on the cluster side without touching code. A Serve application file
(serving/replica/serve_app.py) is built by `serving.apps:serve_app_file` in its own
folder, its deployments asking what the file says.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from serving.core.catalog import resolve_models
from serving.core.config import APP_NAME, LaunchConfig
from serving.replica.apps import group_options, slot_groups, user_app_options

INGRESS = "GradioIngress"


def serve_config(config: LaunchConfig) -> dict:
    if config.app:
        return _user_app_config(config)
    entries = resolve_models(config)
    deployments = [{"name": INGRESS, "num_replicas": 1,
                    "ray_actor_options": {"num_cpus": config.ingress_cpus}}]
    # One per model deployment: slots of the same model share one (serving/replica/apps.py slot_groups).
    deployments += [group_options(config, group) for group in slot_groups(config, entries)]
    return _document(config, _app_config(config), deployments)


def _app_config(config: LaunchConfig) -> dict:
    app_config = config.model_dump(mode="json", exclude_defaults=True)
    app_config.pop("cluster", None)  # the cluster is wherever this file is deployed
    return app_config


def _document(config: LaunchConfig, app_config: dict, deployments: list[dict], runtime_env: dict | None = None) -> dict:
    application = {"name": APP_NAME, "route_prefix": "/", "import_path": "serving.apps:builder"}
    if runtime_env:
        application["runtime_env"] = runtime_env
    application |= {"args": {"config": app_config}, "deployments": deployments}
    return _with_http(config, application)


def _with_http(config: LaunchConfig, application: dict) -> dict:
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": config.http.host, "port": config.http.port},
        "applications": [application],
    }


def _user_app_config(config: LaunchConfig) -> dict:
    """Your own app: its folder travels as the runtime_env's working_dir, the target is relative to it."""
    from serving.replica.app_target import portable_target

    spec = config.app
    target, folder = portable_target(spec.target, spec.app_dir)
    if _is_serve_app(config):
        # Its deployments ask what the file says (as `gradio-serve up` deploys them): no options over them.
        return _with_http(config, {"name": APP_NAME, "route_prefix": "/", "import_path": "serving.apps:serve_app_file",
                                   "runtime_env": {"working_dir": _folder_uri(folder)}, "args": {"target": target}})
    app_config = _app_config(config)
    app_config["app"] = {**app_config["app"], "target": target}
    app_config["app"].pop("app_dir", None)
    return _document(config, app_config, [user_app_options(spec)], {"working_dir": _folder_uri(folder)})


def _folder_uri(folder) -> str:
    """The app's folder as a Serve config takes it: a `local://` URI, a folder that exists on every node (this
    machine's, so `serve run` and `serve deploy` work here); for other machines and KubeRay, upload it (a zip on
    S3/GCS/HTTPS) and put its URI here. A plain path is refused by Serve's config schema."""
    return f"local://{Path(folder).resolve()}"


def _is_serve_app(config: LaunchConfig) -> bool:
    """Whether the file is a Serve application (imported aside, as before a start); a file that cannot be
    imported here (it may need what only the cluster has) is exported as a Gradio app."""
    import threading

    from serving.cluster.app_inspection import AppInspection
    from serving.core.preflight import StartError

    try:
        found = AppInspection.start(config.app, login_given=bool(config.http.username)).result(threading.Event())
    except StartError:
        return False
    return bool(found and found.serve_app)


def rayservice(config: LaunchConfig) -> dict:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": APP_NAME},
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config(config), sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": "2.60.0",
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0"},
                    "template": {"spec": {"containers": [{
                        "name": "ray-head",
                        "image": "YOUR-REGISTRY/gradio-serve-launcher:0.1.0",
                        "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
                        "ports": [{"containerPort": 6379, "name": "gcs"}, {"containerPort": 8000, "name": "serve"}],
                    }]}},
                },
                "workerGroupSpecs": [{
                    "groupName": "cpu-workers", "replicas": 1, "minReplicas": 1, "maxReplicas": 4,
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [{
                        "name": "ray-worker",
                        "image": "YOUR-REGISTRY/gradio-serve-launcher:0.1.0",
                        "resources": {"limits": {"cpu": "4", "memory": "8Gi"}},
                    }]}},
                }],
            },
        },
    }


def export_text(config: LaunchConfig, kuberay: bool = False) -> str:
    doc = rayservice(config) if kuberay else serve_config(config)
    return yaml.safe_dump(doc, sort_keys=False)
