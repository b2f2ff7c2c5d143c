"""In-process stand-ins for the supervisor controller (launcher/supervisor_process.py's interface).

RecordingController records what it is asked to start and starts nothing (the window's last step,
observed). FollowingController also plays the supervisor's states at once: start runs the app,
stop stops it, detach leaves it serving.
"""

from __future__ import annotations

from launcher.serving_controller import ServingController, ServingState
from serving.core.config import LaunchConfig


class RecordingController(ServingController):
    def __init__(self, started: list[LaunchConfig], parent=None):
        super().__init__(parent)
        self.started = started
        self.stops = 0
        self.detached = False

    def start(self, config: LaunchConfig) -> bool:
        self.started.append(config)
        return True

    def stop(self) -> None:
        self.stops += 1

    def detach(self) -> bool:
        self.detached = True
        return True

    def shutdown_now(self, wait_s: float = 10.0) -> None:
        pass


class FollowingController(RecordingController):
    def start(self, config: LaunchConfig) -> bool:
        super().start(config)
        self.pid = 4242
        self.running_config = config
        self._set_url(f"http://127.0.0.1:{config.http.port}/")
        self._set_state(ServingState.running)
        return True

    def stop(self) -> None:
        super().stop()
        if self.is_active():
            self._set_state(ServingState.stopping)
            self._set_state(ServingState.stopped)


def recording_factory(started: list[LaunchConfig], kind: type[RecordingController] = RecordingController):
    """A controller_factory for the window's session: every start lands in `started`."""
    return lambda parent: kind(started, parent)
