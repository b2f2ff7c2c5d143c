"""The questions the window asks, and its configuration files (picked, loaded, saved).

Every question is a window-modal QMessageBox opened with `open()` (the event loop keeps
turning: the app keeps being followed while it is asked), answered through a callback,
and deleted once answered. Errors go through launcher/errors.py, as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from launcher import app_inspector
from launcher.apply_changes import PendingChange
from launcher.errors import show_error
from serving.core.config import ConfigError, LaunchConfig

TITLE = "Gradio Serve Launcher"
_Role = QMessageBox.ButtonRole


def ask(
    parent: QWidget,
    icon: QMessageBox.Icon,
    text: str,
    informative: str,
    buttons: list[tuple[str, QMessageBox.ButtonRole]],
    default: str | None,
    on_answer: Callable[[str | None], None],
) -> QMessageBox:
    """Open a question with Cancel plus `buttons`; `on_answer` gets the clicked button's text (None: Cancel)."""
    box = QMessageBox(icon, TITLE, text, QMessageBox.StandardButton.Cancel, parent)
    box.setInformativeText(informative)
    made = {box.addButton(label, role): label for label, role in buttons}
    chosen = next((b for b, label in made.items() if label == default), None)
    box.setDefaultButton(chosen or box.button(QMessageBox.StandardButton.Cancel))

    def done(_result: int) -> None:
        answer = made.get(box.clickedButton())
        box.deleteLater()  # answered: nothing refers to it any more
        on_answer(answer)

    box.finished.connect(done)
    box.open()
    return box


def confirm_start(parent: QWidget, warnings: list[str], headline: str | None, on_answer: Callable[[bool], None]) -> None:
    """What may not fit (or be slow) before Start: "Start anyway" or Cancel."""
    ask(
        parent,
        QMessageBox.Icon.Warning,
        headline or "This may not fit this machine.",
        "\n\n".join(warnings),
        [("Start anyway", _Role.AcceptRole)],
        None,
        lambda answer: on_answer(answer == "Start anyway"),
    )


def confirm_restart(parent: QWidget, change: PendingChange, on_restart: Callable[[], None]) -> None:
    """A change only a restart can carry (port, cluster): restart now, or not."""
    ask(
        parent,
        QMessageBox.Icon.Question,
        f"Changing {change.restart_words()} needs a restart.",
        "The app stops, then starts again with the new settings; it does not answer meanwhile.",
        [("Restart with new settings", _Role.AcceptRole)],
        "Restart with new settings",
        lambda answer: answer and on_restart(),
    )


def ask_on_close(parent: QWidget, on_quit: Callable[[bool], None]) -> None:
    """Closing while serving (no tray to hide in): stop and quit, quit and keep serving, or stay."""
    stop, keep = "Stop serving and quit", "Quit, keep serving"
    ask(
        parent,
        QMessageBox.Icon.Question,
        "The app is still serving. Stop it and quit?",
        "“Quit, keep serving” leaves it running; the next launch finds it and can stop it.",
        [(stop, _Role.AcceptRole), (keep, _Role.DestructiveRole)],
        stop,
        lambda answer: answer and on_quit(answer == keep),
    )


def load_config(parent: QWidget) -> LaunchConfig | None:
    """A configuration file the user picks, loaded (a relative app target: relative to the file); None if
    they pick none, or after saying why it cannot be used."""
    path, _ = QFileDialog.getOpenFileName(parent, "Load configuration", "", "JSON (*.json);;All files (*)")
    if not path:
        return None
    try:
        return app_inspector.load_config(path)
    except ConfigError as exc:
        show_error(f"{path} cannot be used: {exc}", "Fix the file (it is the same JSON as gradio-serve up --config).")
        return None


def save_config(parent: QWidget, config: LaunchConfig) -> str | None:
    """Write `config` where the user picks; the path, or None if they pick none or it cannot be written."""
    path, _ = QFileDialog.getSaveFileName(parent, "Save configuration", "gradio-serve.json", "JSON (*.json)")
    if not path:
        return None
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(config.to_json() + "\n")
    except OSError as exc:
        show_error(f"Could not write {path} ({exc.strerror}).", "Pick a folder you can write to.")
        return None
    return path
