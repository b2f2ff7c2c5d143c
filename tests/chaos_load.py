"""The load of tests/test_chaos.py, in a process of its own: N gradio_client sessions of
tests/apps/counter_state.py, each calling /bump with a pause between calls. Apart from the test's
process, whose heap and threads (the whole suite's, by the time this test runs) slowed calls that
waited on its garbage collector and its GIL; run alone, the same test waited less than half as long.

    python tests/chaos_load.py URL SESSIONS MIN_PAUSE_S MAX_PAUSE_S

Prints `{"connected": n}` once every session has its client (the clients read the app's config and
API first: ~0.3 s of CPU each), then one JSON line per call: session, start, end (time.monotonic, one
clock for every process of the machine), count and pid (answered) or error. Ends when stdin closes.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from app_serving import client  # the tests' one way to open a session (tests/ is this script's path)
from gradio_client import Client

_said = threading.Lock()


def say(**line) -> None:
    with _said:
        print(json.dumps(line), flush=True)


def connect(i: int, url: str) -> Client | None:
    try:
        return client(url)
    except Exception as exc:  # noqa: BLE001 - said, and judged by the test
        now = time.monotonic()
        say(session=i, start=now, end=now, error=f"connect: {exc!r}"[:300])
        return None


def calls(i: int, client: Client, pause: tuple[float, float], stop: threading.Event) -> None:
    stop.wait(random.uniform(0, pause[0]))  # first calls spread, as visitors come
    while not stop.is_set():
        start = time.monotonic()
        try:
            count, served_by = client.submit(api_name="/bump").result(timeout=30)
            say(session=i, start=start, end=time.monotonic(), count=int(count), pid=int(served_by.removeprefix("pid ")))
        except Exception as exc:  # noqa: BLE001 - said, and judged by the test
            say(session=i, start=start, end=time.monotonic(), error=f"{type(exc).__name__}: {exc}"[:300])
        stop.wait(random.uniform(*pause))


def main(argv: list[str]) -> None:
    url, sessions, pause = argv[0], int(argv[1]), (float(argv[2]), float(argv[3]))
    with ThreadPoolExecutor(4) as pool:
        clients = list(pool.map(lambda i: connect(i, url), range(sessions)))
    say(connected=sum(c is not None for c in clients))
    stop = threading.Event()
    threads = [threading.Thread(target=calls, args=(i, c, pause, stop), daemon=True)
               for i, c in enumerate(clients) if c is not None]
    for t in threads:
        t.start()
    sys.stdin.read()  # until the test closes it
    stop.set()
    for t in threads:
        t.join(timeout=60)


if __name__ == "__main__":
    main(sys.argv[1:])
