"""Serve's view of the app, read by the supervisor and told as a `status` event (serving/core/protocol.py):
per deployment its label, model, status, replicas running and wanted, and Serve's message."""

from __future__ import annotations

import re

from serving.core.config import APP_DEPLOYMENT, APP_NAME, LaunchConfig

# Serve's own words when a replica cannot be placed for lack of CPUs/GPUs (after 30 s).
UNSCHEDULABLE = "to be scheduled"  # not "to initialize": slow starts are not an error


def read_app_status(placements: list | None = None):
    """This app's status overview and each deployment's target replica count, in one call (and, into
    `placements`, where each replica runs: serving/cluster/machines.py)."""
    from serving.ray_private import app_status_and_targets

    return app_status_and_targets(APP_NAME, placements)


def status_snapshot(status, targets: dict | None, config: LaunchConfig, app_found: str, slots_of: dict) -> dict:
    """targets: Serve's current target replica count per deployment (moves with autoscaling);
    app_found: what the user's app is ("demo · gr.Blocks"); slots_of: model deployment -> its slots."""
    targets = targets or {}
    deployments = []
    for name, d in status.deployments.items():
        running = d.replica_states.get("RUNNING", 0)
        target = targets.get(name, sum(d.replica_states.values()))
        slot_index = re.fullmatch(r"model(\d+)", name)
        if name == APP_DEPLOYMENT and config.app:
            spec = config.app
            if name not in targets and not spec.autoscaling:
                target = spec.replicas
            label, model = app_found or "Your app", spec.target
        elif slot_index and int(slot_index[1]) < len(config.models):
            slots = [config.models[i] for i in slots_of.get(name, [int(slot_index[1])])]
            slot = slots[0]
            if name not in targets and not slot.autoscaling:
                target = slot.replicas
            label, model = " + ".join(s.label or s.model for s in slots), slot.model
        elif config.app:  # a deployment of the user's Serve application file, by its own name
            label, model = name, ""
        else:
            label, model, target = "Gradio ingress", "", targets.get(name, 1)
        deployments.append({
            "name": name, "label": label, "model": model, "status": str(d.status.value),
            "replicas_running": running, "replicas_target": target, "message": d.message or "",
        })
    return {"app_status": str(status.status.value), "deployments": deployments}


def first_line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0][:300]


def failure_line(text: str) -> str:
    """What a failed deployment's message says went wrong. Serve's ends in the replica's traceback
    ("... See controller logs for details. Error:" then the traceback), whose last line is the error
    itself: a user's app that fails in its replica reads as the inspector's refusal would."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if len(lines) > 1 and any("Traceback (most recent call last)" in line for line in lines):
        return lines[-1].removeprefix("serving.core.target.AppLoadError: ")[:300]
    return first_line(text)
