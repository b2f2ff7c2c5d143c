"""What the app is doing, as text: the figures table under `gradio-serve status`, and `status --watch`
refreshing it in place like top. The figures come from the record metrics.json
(serving/cluster/metrics_reader.py writes it every ~2 s)."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable

from serving.core import paths
from serving.core.download_progress import human_bytes
from serving.core.protocol import MetricsEvent

REFRESH_S = 2.0
STALE_S = 10.0  # older figures are the last ones of a supervisor that stopped reading


def read_metrics() -> MetricsEvent | None:
    data = paths.read_json(paths.metrics_record())
    if not data:
        return None
    try:
        return MetricsEvent.model_validate(data)
    except ValueError:
        return None


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def metrics_lines(event: MetricsEvent | None, now: float | None = None) -> list[str]:
    """The figures, one row per deployment and one line per replica process under it."""
    if event is None:
        return ["(no figures yet: they come every ~2 s once the app runs)"]
    age = (now or time.time()) - event.time
    rows = [("DEPLOYMENT", "REPLICAS", "REQ/S", "P50 MS", "P95 MS", "IN FLIGHT", "QUEUED", "ERRORS", "TOK/S", "BATCH")]
    under: dict[int, list[str]] = {}
    for d in event.deployments:
        rows.append((d.name, str(d.replicas), _num(d.requests_per_s, 2), _num(d.p50_ms), _num(d.p95_ms),
                     str(d.in_flight), str(d.queued), str(d.errors), _num(d.tokens_per_s), _num(d.batch_size)))
        under[len(rows) - 1] = [f"    pid {p.pid}  cpu {p.cpu_percent:5.1f}%  memory {human_bytes(p.memory_bytes)}"
                                for p in d.processes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"figures over the last {event.window_s:.0f} s" + (f" (as of {age:.0f} s ago)" if age > STALE_S else "")]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        lines += under.get(i, [])
    return lines


def watch(show: Callable[[], int], out=None, refresh_s: float = REFRESH_S, rounds: int | None = None) -> int:
    """`show()` printed again every refresh_s in place (the terminal's other screen, as top), until
    Ctrl-C or show() says nothing runs (its code, 3); rounds: how many (tests)."""
    out = out or sys.stdout
    tty = out.isatty()
    if tty:
        out.write("\x1b[?1049h\x1b[?25l")  # the other screen, no cursor
    code = 0
    try:
        done = 0
        while rounds is None or done < rounds:
            text = io.StringIO()
            with contextlib.redirect_stdout(text):
                code = show()
            if tty:
                # Home, each line over the last one, the rest of the screen cleared: no flicker.
                out.write("\x1b[H" + text.getvalue().replace("\n", "\x1b[K\n") + "\x1b[J")
            else:
                out.write(text.getvalue() + "\n")
            out.flush()
            done += 1
            if code == 3:
                break
            time.sleep(refresh_s)
    except KeyboardInterrupt:
        code = 0
    finally:
        if tty:
            out.write("\x1b[?25h\x1b[?1049l")
            out.flush()
    return code
