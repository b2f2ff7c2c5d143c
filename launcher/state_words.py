"""The serving state and a pending change in the words and colours the window shows (its state line,
the Apply button and the line under it); the tray and the tests read the same words."""

from __future__ import annotations

from launcher.apply_changes import PendingChange
from launcher.icons import STATE_COLOURS
from launcher.serving_controller import ServingState


def state_line(state: ServingState, url: str | None, checking: bool, changing: str | None) -> str:
    """The state line's rich text: a coloured dot, then the state (`changing`: a change under way, in words)."""
    colour = STATE_COLOURS["starting"] if changing else STATE_COLOURS.get(state.value, "#9ca3af")
    words = {
        ServingState.stopped: "Checking…" if checking else "Stopped",
        ServingState.starting: "Starting…",
        ServingState.running: f"Running at <a href='{url}'>{url}</a>" if url else "Running",
        ServingState.stopping: "Stopping…",
        ServingState.error: "Checking…" if checking else "Failed (see the message and the log)",
    }
    text = words[state] + (f" · {changing}" if changing else "")
    return f"<span style='color:{colour}; font-size:14pt'>●</span> {text}"


def state_changing(state: ServingState, changing: bool, applying: bool) -> str | None:
    """A change under way while the app runs, in words (ours being applied, or another's); None: none."""
    if state is not ServingState.running or not changing:
        return None
    return "applying changes…" if applying else "updating…"


def plain(line: str) -> str:
    """The state line without its dot and markup (tests and the tray read it)."""
    return line.split("</span>", 1)[-1].strip() if "</span>" in line else line


def apply_button_words(change: PendingChange) -> tuple[str, str]:
    """(text, tooltip) of the Apply button for this change."""
    if change.restart:
        return ("Restart to apply…",
                f"Changing {change.restart_words()} needs a restart: stop the app and start it with these settings")
    return "Apply changes", "Change the running app in place: the models are swapped while it keeps serving"


def pending_line(change: PendingChange) -> str:
    """The line under the buttons while the form differs from what the app serves, with its Revert link."""
    what = f"Changing {change.restart_words()} needs a restart." if change.restart else "Changes not applied yet."
    return f"<span style='color:{STATE_COLOURS['starting']}'>{what}</span> <a href='revert'>Revert</a>"
