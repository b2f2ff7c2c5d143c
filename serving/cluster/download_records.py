"""The records of a supervisor still downloading a model, before anything else starts.

A download can take minutes: from its first byte the supervisor's record says who runs (so
`gradio-serve status` and `down`, another `up`, and a launcher that finds it see it), and the status
record says phase `downloading` with the last `download` event. Once Ray is up the supervisor writes
its full record over it; a stop removes both (Supervisor._stop). At most twice a second (the events' pace).
"""

from __future__ import annotations

import os
import time

from serving.core import paths
from serving.core.config import LaunchConfig
from serving.core.protocol import DownloadEvent, Phase, StatusRecord, SupervisorRecord


class DownloadRecords:
    def __init__(self, config: LaunchConfig, started: float):
        self.config, self.started = config, started
        self._recorded = False

    def said(self, fields: dict) -> None:
        """One `download` event's fields (serving/cluster/hub_download.py's Progress)."""
        if not self._recorded:
            self._recorded = True
            record = SupervisorRecord(pid=os.getpid(), pgid=os.getpgid(0), url=self.config.url,
                                      address=self.config.cluster.address, owns_cluster=False, started=self.started,
                                      config=self.config.model_dump(mode="json"))
            paths.write_json_atomic(paths.supervisor_record(), record.as_json())
        done = bool(fields.get("finished"))
        status = StatusRecord(phase=Phase.validating if done else Phase.downloading, url=self.config.url,
                              download=DownloadEvent(time=time.time(), **fields))
        paths.write_json_atomic(paths.status_record(), status.as_json())
