"""Open the app in the browser once it answers, never before.

Readiness is one HTTP GET per second, each in a worker (the main thread
never waits on the network), until the page answers or a timeout passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from launcher.errors import show_error
from launcher.logs import launcher_logger
from launcher.worker import QueryOp
from serving.core.readiness import http_status, is_ready  # the supervisor's rule for "the page answers"


def open_url(url: str) -> bool:
    ok = QDesktopServices.openUrl(QUrl(url))
    if not ok:
        show_error(f"Could not open a browser at {url}.", f"Open {url} in your browser yourself.", dialog=False)
    return ok


class BrowserOpener(QObject):
    """Polls a URL until it answers (serving/core/readiness.py), then opens it once."""

    opened = Signal(str)
    poll_ms = 1000

    def __init__(self, parent: QObject | None = None, opener: Callable[[str], bool] = open_url):
        super().__init__(parent)
        self.opener = opener
        self._url: str | None = None
        self._deadline = 0.0
        self._in_flight = False
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._poll)

    def open_when_ready(self, url: str, timeout_s: float = 120.0) -> None:
        self._url = url
        self._deadline = time.monotonic() + timeout_s
        if not self._in_flight:
            self._poll()

    def cancel(self) -> None:
        self._url = None
        self._timer.stop()

    def waiting(self) -> bool:
        return self._url is not None

    def _poll(self) -> None:
        if self._url is None:
            return
        url = self._url
        self._in_flight = True
        QueryOp(
            self,
            lambda: http_status(url),
            lambda status: self._on_result(url, status),
            lambda _exc: self._on_result(url, None),
            what="Checking the app's page",
        ).run()

    def _on_result(self, url: str, status: int | None) -> None:
        self._in_flight = False
        if self._url != url:
            if self._url is not None:
                self._poll()  # a newer URL came while this check ran
            return
        if is_ready(status):
            self._url = None
            launcher_logger().info("%s answers (HTTP %s); opening the browser", url, status)
            self.opener(url)
            self.opened.emit(url)
            return
        if time.monotonic() > self._deadline:
            self._url = None
            show_error(
                f"The app at {url} did not answer in time, so no browser was opened.",
                "It may still be loading: press Open in browser in a moment, or check the log.",
                dialog=False,
            )
            return
        self._timer.start(self.poll_ms)
