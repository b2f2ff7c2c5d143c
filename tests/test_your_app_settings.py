"""Your app keeps what its own launch() asks, side by side with `python demo.py`.

tests/apps/login_app.py sets a login and leaves errors hidden in its `if __name__ == "__main__":`
block. The same file runs as `python login_app.py` and as `gradio-serve up --app login_app.py
--replicas 2`, and both answer alike: no page, config or call without the login; the login works
(on either replica); a failing call says only Gradio's "not enabled verbose error reporting", never
the exception's text. The login used to be dropped here, and the exception's text shown.
"""

from __future__ import annotations

import os

import httpx
import pytest
from app_serving import plain_gradio, serve_app
from gradio_client import Client
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.slow

LOGIN = ("ann", "s3cret")
HIDDEN = "has not enabled verbose error reporting"


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """`python login_app.py`, as its author runs it."""
    with plain_gradio("login_app.py", tmp_path_factory.mktemp("plain")) as url:
        yield url


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("served")
    env = {**os.environ, "GRADIO_SERVE_STATE_DIR": str(base / "state"), "GRADIO_SERVE_LOG_DIR": str(base / "logs")}
    app = serve_app("login_app.py", 2, env, base / "up-logs")
    try:
        yield app
    finally:
        app.up.stop()


def check_like_launch(url: str) -> None:
    # Nothing without the login.
    assert httpx.get(url + "config", timeout=30, trust_env=False).status_code == 401
    posted = httpx.post(url + "gradio_api/call/divide", json={"data": ["1", "2"]}, timeout=30, trust_env=False)
    assert posted.status_code == 401, posted.text
    with pytest.raises(Exception):  # noqa: B017 - gradio_client's own error for a page behind a login
        Client(url, verbose=False)
    # With it: answers, and a failure's text stays hidden.
    for _ in range(4):  # new sessions: both replicas, when served
        client = Client(url, auth=LOGIN, verbose=False)
        assert client.predict("1", "2", api_name="/divide") == "0.5"
        with pytest.raises(AppError) as failed:
            client.predict("1", "0", api_name="/divide")
        assert HIDDEN in str(failed.value) and "division" not in str(failed.value), str(failed.value)


def test_python_demo_py_asks_for_the_login_and_hides_errors(plain):
    check_like_launch(plain)


def test_served_on_two_replicas_the_same(served):
    check_like_launch(served.url)
    def warned(e):
        return e.get("event") == "log" and e.get("level") == "warning" and "launch(server_port=" in e["message"] \
            and "not applied" in e["message"]

    # Said when the app's import aside ends: on 2 cores, after the replicas (serving/cluster/app_inspection.py).
    if not any(warned(e) for e in served.up.events):
        served.up.wait_for(warned, 60)
