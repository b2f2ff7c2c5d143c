"""A user's Serve application file, served by `gradio-serve up --app`: Ray's guide's own way,
`app = MyGradioServer.bind(model_1, model_2)` with `class MyGradioServer(GradioIngress)` (or
`GradioServer.bind(builder)`), and `gradio-serve up --app demo.py:app` rather than `serve run demo:app`.

The file is found by the inspector like any app (serving/replica/app_target.py). It is deployed from a
Ray task, so the user's code never runs in the supervisor: the task imports the file, gives its
ingress our app deployment's name (`app`: the app's port, the status and the metrics find it as for
any app) and the sticky router where the author set none, and submits it. The file's own classes go
by value (cloudpickle), so the replicas need not import it by name. Its deployments keep every option
their author wrote. A reload submits the saved file anew: Serve starts new replicas of the deployments
whose code changed (a subclass's code is the deployment itself; each gets a code version, `_code_version`),
where `serve run --reload` restarts them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from serving.core.config import APP_DEPLOYMENT, APP_NAME
from serving.core.target import AppLoadError, Target

# Each open page holds several streams; Serve's default of 5 would make a third tab wait.
INGRESS_MAX_ONGOING = 1000


@dataclass(frozen=True)
class FoundServeApp:
    application: object  # ray.serve.Application
    name: str  # "app"
    kind: str  # "Serve app: MyGradioServer + 2 deployments"


def find_serve_app(module, target: Target) -> FoundServeApp | None:
    """The file's Serve application served by a Gradio ingress of ours: the one TARGET names, else the
    only one at the top level; None when the file has none (it is then a plain Gradio app)."""
    if "ray.serve" not in sys.modules:  # a file that never imported Serve binds nothing
        return None
    from ray.serve import Application

    where = getattr(module, "__file__", None) or target.where
    if target.name:
        obj = getattr(module, target.name, None)
        if not isinstance(obj, Application):
            return None
        _check_ingress(obj, f"{target.name} in {where}")
        return FoundServeApp(obj, target.name, _kind(obj))
    ours = [(n, v) for n, v in vars(module).items()
            if isinstance(v, Application) and not n.startswith("_") and _is_gradio(v)]
    ours = [(n, v) for n, v in ours if not any(v is not w and _binds(w, v) for _, w in ours)]
    if not ours:
        return None
    if len(ours) > 1:
        raise AppLoadError(f"{where} has several Serve applications with a Gradio ingress: "
                           + ", ".join(n for n, _ in ours), f"pick one: {target.text}:{ours[0][0]}")
    name, app = ours[0]
    return FoundServeApp(app, name, _kind(app))


def _is_gradio(app) -> bool:
    from serving.ray_private import ingress_of
    from serving.replica.gradio_server import GradioIngress

    cls = ingress_of(app).func_or_class
    return isinstance(cls, type) and issubclass(cls, GradioIngress)


def _binds(outer, inner) -> bool:
    from serving.ray_private import deployments_in, ingress_of

    return any(d is ingress_of(inner) for d in deployments_in(outer)[1:])


def _check_ingress(app, what: str) -> None:
    from serving.ray_private import ingress_of

    if _is_gradio(app):
        return
    cls = ingress_of(app).func_or_class
    name = getattr(cls, "__name__", type(cls).__name__)
    if any(base.__module__.startswith("ray.serve.gradio_integrations") for base in getattr(cls, "__mro__", ())):
        raise AppLoadError(f"{what} is served by {name}, a subclass of Ray's GradioIngress, which Gradio 6 "
                           "answers with 500", "import ours instead: `from serving import GradioIngress`")
    raise AppLoadError(f"{what} is a Serve application whose ingress {name} is not a Gradio app",
                       "serve it with `serve run`; `--app` serves a Gradio app, or a Serve application "
                       "whose ingress subclasses `serving.GradioIngress` (or is `GradioServer`)")


def _kind(app) -> str:
    from serving.ray_private import deployments_in

    found = deployments_in(app)
    others = f" + {len(found) - 1} deployment{'s' if len(found) > 2 else ''}" if len(found) > 1 else ""
    return f"Serve app: {found[0].name}{others}"


def served(app):
    """The application as we serve it: its ingress named `app`, sticky across replicas unless its author
    chose a router, with room for a page's streams unless the author chose a limit."""
    from serving.ray_private import with_ingress_options
    from serving.replica.sticky import session_router_config

    return with_ingress_options(app, name=APP_DEPLOYMENT, request_router_config=session_router_config(),
                                max_ongoing_requests=INGRESS_MAX_ONGOING)


def deploy(target: str, app_dir: str | None, files: dict[str, str] | None = None) -> None:
    """Submit the file's application from a Ray task (no CPU, a worker of its own that ends after it).
    files: the saved files of a reload, for a cluster whose workers run in a copy of the app's folder."""
    import ray

    try:
        ray.get(ray.remote(num_cpus=0, max_calls=1)(_deploy_here).remote(target, app_dir, files or {}))
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, AppLoadError):  # the file, line and fix, not the task's traceback
            raise exc.cause from None
        raise


def _deploy_here(target: str, app_dir: str | None, files: dict[str, str]) -> None:
    from serving.ray_private import pin_code_versions, submit_app
    from serving.replica.app_swap import write_files

    if files:
        write_files(Path.cwd(), files)  # the task starts in the cluster's copy of the folder (its working_dir)
    loaded = _loaded(target, app_dir)
    _check_fits(loaded.application, target)
    pin_code_versions(loaded.application, _code_version(Path(loaded.file)))
    submit_app(served(loaded.application), name=APP_NAME, route_prefix="/")


def builder(args: dict):
    """`serving.apps:serve_app_file`, the import path of an exported Serve application file (`gradio-serve
    export --app FILE`): Serve calls it where it builds the app, in the file's folder (the working_dir)."""
    return served(_loaded(args["target"], args.get("app_dir")).application)


def _loaded(target: str, app_dir: str | None):
    from ray import cloudpickle

    from serving.replica.app_target import load_app

    loaded = load_app(target, app_dir)
    if loaded.application is None:
        raise AppLoadError(f"{target} holds no Serve application (any more)",
                           "a plain Gradio file is served with `gradio-serve up --app FILE`; restart it if it changed")
    # The file and the modules it imported from its folder go by value: the replicas need not import them by name.
    folder = Path(loaded.file).resolve().parent
    for module in [sys.modules[loaded.module], *_modules_under(folder)]:
        cloudpickle.register_pickle_by_value(module)
    return loaded


def _modules_under(folder: Path) -> list:
    """Modules imported from the app's own code in its folder (a sibling file that defines the
    deployments, say), by the rule the code version uses: not from an environment inside it."""
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if module is None or not file or name == "__main__":
            continue
        with contextlib.suppress(OSError, ValueError):
            path = Path(file).resolve()
            if path.is_relative_to(folder) and _is_app_code(path.relative_to(folder)):
                found.append(module)
    return found


def _is_app_code(relative: Path) -> bool:
    """A file of the app's folder that is its own code: not hidden, cached or installed (.venv, site-packages)."""
    return not any(p.startswith(".") or p in ("__pycache__", "site-packages") for p in relative.parts)


def _code_version(file: Path):
    """A deployment's code version: its class (by value: its methods and what they use of the file), its
    bound arguments, and the folder's other .py files (modules it may import). A reload then restarts only
    the deployments whose code changed; None (Serve's own: always restart) where that cannot be told."""
    from ray import cloudpickle
    from ray.serve import Application

    from serving.ray_private import ingress_of

    folder = hashlib.sha256()
    for path in sorted(file.parent.rglob("*.py"))[:2000]:
        if path != file and _is_app_code(path.relative_to(file.parent)):
            with contextlib.suppress(OSError):
                folder.update(path.as_posix().encode() + b"\0" + path.read_bytes())

    def version_of(deployment) -> str | None:
        def plain(value):  # a bound deployment stands for its name: its own version covers its code
            return f"<deployment {ingress_of(value).name}>" if isinstance(value, Application) else value

        try:
            args = [plain(a) for a in deployment.init_args], {k: plain(v) for k, v in deployment.init_kwargs.items()}
            code = cloudpickle.dumps((deployment.func_or_class, args))
        except Exception:  # noqa: BLE001 - an argument that does not pickle: Serve's own version
            return None
        code = re.sub(rb"[0-9a-f]{32}", b"", code)  # a class by value carries a tracker id drawn per process
        return hashlib.sha256(code + folder.digest()).hexdigest()[:16]

    return version_of


def _check_fits(app, target: str) -> None:
    """What the file's deployments ask for at their start, against the cluster: more than it has would
    wait forever to be placed (Serve says so after 30 s, without the sums)."""
    import ray

    from serving.ray_private import deployments_in

    asked: dict[str, list[str]] = {"CPU": [], "GPU": []}
    total = {"CPU": 0.0, "GPU": 0.0}
    for d in deployments_in(app):
        replicas = d.num_replicas if isinstance(d.num_replicas, int) else getattr(
            d._deployment_config.autoscaling_config, "initial_replicas", None) or 1
        options = d.ray_actor_options or {}
        for key, option, default in (("CPU", "num_cpus", 1.0), ("GPU", "num_gpus", 0.0)):
            each = options.get(option, default) or 0.0
            if each:
                total[key] += each * replicas
                asked[key].append(f"{d.name} {replicas} x {each:g}")
    have = ray.cluster_resources()
    for key, flag in (("CPU", "--cpus N (more than the machine's cores only shares them)"), ("GPU", "a machine with GPUs")):
        if total[key] > have.get(key, 0.0) + 1e-9:
            raise AppLoadError(f"{target}'s deployments ask for {total[key]:g} {key}s ({', '.join(asked[key])}); "
                               f"the cluster has {have.get(key, 0.0):g}",
                               f"give them less in the file (ray_actor_options={{'num_{key.lower()}s': 0.5}}), "
                               f"or the cluster more: {flag}")
