"""A controller that records what it is asked to start and starts nothing (the window's last step, observed)."""

from __future__ import annotations

from launcher.supervisor_process import ServingController
from serving.config import LaunchConfig


class RecordingController(ServingController):
    def __init__(self, started: list[LaunchConfig], parent=None):
        super().__init__(parent)
        self.started = started

    def start(self, config: LaunchConfig) -> bool:
        self.started.append(config)
        return True

    def stop(self) -> None:
        pass

    def detach(self) -> bool:
        return True

    def shutdown_now(self, wait_s: float = 10.0) -> None:
        pass


def recording_factory(started: list[LaunchConfig]):
    """A controller_factory for the window's session: every start lands in `started`."""
    return lambda parent: RecordingController(started, parent)
