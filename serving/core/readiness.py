"""Whether the app's page answers: one rule for the supervisor (which says `running` only then)
and the launcher (which opens the browser only then), so neither is early.

Ready means GET / answers 200 (redirects followed). Serve's proxy answers 404 for a route not yet
deployed and 503 while replicas start; the page itself (a login page too) answers 200. Light: the
launcher imports it, and calls it from a worker (it waits on the network).
"""

from __future__ import annotations

import urllib.error
import urllib.request

# Our own app never goes through the user's http_proxy (urllib would send 127.0.0.1 there).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The page's HTTP status, or None when nothing answers."""
    try:
        with _OPENER.open(urllib.request.Request(url, method="GET"), timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def is_ready(status: int | None) -> bool:
    return status == 200


def page_answers(url: str, timeout: float = 2.0) -> bool:
    return is_ready(http_status(url, timeout))
