"""The log view: the supervisor's output and the launcher's notes, plus "Open logs folder"."""

from __future__ import annotations

import logging

from PySide6.QtCore import QUrl
from PySide6.QtGui import QColor, QDesktopServices, QFontDatabase, QTextCharFormat
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from launcher import logs
from launcher.errors import show_error
from serving.core import paths

MAX_LINES = 5000  # older lines stay in the log files


def open_logs_folder() -> None:
    folder = paths.log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        show_error(
            f"The logs folder {folder} cannot be created ({exc.strerror}).",
            "Check the permissions of its parent folder.",
        )
        return
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
        show_error(f"No file manager could open {folder}.", f"Open {folder} yourself.", dialog=False)


class LogView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("The supervisor's output appears here.")
        self.open_folder = QPushButton("Open logs folder")
        self.open_folder.setToolTip(str(paths.log_dir()))
        self.open_folder.clicked.connect(open_logs_folder)
        self.clear = QPushButton("Clear")
        self.clear.clicked.connect(self.text.clear)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear)
        buttons.addWidget(self.open_folder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)

        self._plain = QTextCharFormat()
        self._formats = {}
        for level, colour in ((logging.WARNING, "#b45309"), (logging.ERROR, "#b91c1c")):
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(colour))
            self._formats[level] = fmt
        logs.bridge().line.connect(self.append_line)

    def append_line(self, text: str, level: int = logging.INFO) -> None:
        bar = self.text.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        # An explicit format on every line, so a red line's colour never carries over.
        fmt = self._formats.get(min(logging.ERROR, level), self._plain)
        cursor = self.text.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        if not self.text.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(text, fmt)
        if at_bottom:
            bar.setValue(bar.maximum())

    def plain_text(self) -> str:
        return self.text.toPlainText()
