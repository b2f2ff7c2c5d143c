"""A model download's progress in words, the same in the terminal and in the launcher.

The supervisor measures (serving/cluster/hub_download.py) and says it as `download` events
(serving/core/protocol.py); this module turns one into "Downloading gpt2: 45% · 250 MB of 548 MB ·
10.2 MB/s · 29 s left". In a terminal the line is rewritten in place, as pip and Ollama do;
into a file or a pipe a plain line is written every 10% or 10 s, so a log stays readable.
Light: the standard library only.
"""

from __future__ import annotations

import time

PLAIN_EVERY_PERCENT = 10
PLAIN_EVERY_S = 10.0


def human_bytes(n: float) -> str:
    """1000-based, as the Hub and the disk tools show sizes: 548.1 MB, 1.2 GB."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # unreachable: GB stops the loop


def human_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def percent(done: int, total: int) -> int:
    return int(100 * done / total) if total else 100


def describe(model: str, done: int, total: int, bytes_per_s: float = 0.0, eta_s: float | None = None,
             finished: bool = False) -> str:
    """One line: what, how far, how fast, how long still."""
    if finished:
        return f"Downloaded {model}: {human_bytes(total)}"
    parts = [f"Downloading {model}: {percent(done, total)}%", f"{human_bytes(done)} of {human_bytes(total)}"]
    if bytes_per_s > 0:
        parts.append(f"{human_bytes(bytes_per_s)}/s")
    if eta_s is not None:
        parts.append(f"{human_duration(eta_s)} left")
    return " · ".join(parts)


def describe_event(record: dict) -> str:
    return describe(str(record.get("model") or "the model"), int(record.get("done_bytes") or 0),
                    int(record.get("total_bytes") or 0), float(record.get("bytes_per_s") or 0),
                    record.get("eta_s"), bool(record.get("finished")))


class DownloadLines:
    """What a human stream gets of the download events: (text, ends_line), or None to stay quiet."""

    def __init__(self) -> None:
        self.open = False  # a line is being rewritten in place (a terminal)
        self._last_percent = -PLAIN_EVERY_PERCENT
        self._last_time = 0.0

    def line(self, record: dict, tty: bool) -> tuple[str, bool] | None:
        text = describe_event(record)
        finished = bool(record.get("finished"))
        if tty:
            self.open = not finished
            return "\r" + text + "\x1b[K", finished
        now, done = time.monotonic(), percent(int(record.get("done_bytes") or 0), int(record.get("total_bytes") or 0))
        if not finished and done - self._last_percent < PLAIN_EVERY_PERCENT and now - self._last_time < PLAIN_EVERY_S:
            return None
        self._last_percent, self._last_time = (-PLAIN_EVERY_PERCENT if finished else done), now
        return text, True

    def close(self) -> str:
        """Before another line: end the one being rewritten."""
        if not self.open:
            return ""
        self.open = False
        return "\n"
