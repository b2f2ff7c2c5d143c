"""My models: the Hub models in this machine's Hugging Face cache, each with its size on disk, and removing one.

As `gradio-serve models` and `gradio-serve models --remove NAME`, from the same light core
(serving.core.catalog lists, serving.core.model_cache removes), in workers: a removal is confirmed
first, and refused with the reason while the running app serves the model (or a start downloads it).
Each listing is the whole catalog anew, handed on (`catalog`) so the model pickers follow.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from launcher import dialogs, model_catalog
from launcher.logs import launcher_logger
from launcher.model_catalog import ModelChoice
from launcher.worker import QueryOp
from serving.core import model_cache
from serving.core.config import ConfigError
from serving.core.download_progress import human_bytes

NAME_ROLE = Qt.ItemDataRole.UserRole


class MyModels(QDialog):
    catalog = Signal(list)  # list[ModelChoice]: the catalog as just listed (after a removal too)
    removed = Signal(str)  # a model whose files are gone

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("My models")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(560, 320)
        self.loaded = False  # a listing has arrived (tests wait for it)
        self._sizes: dict[str, int] = {}
        self._said = ""  # the last removal, under the listing
        self.summary = QLabel("Listing the models in the Hugging Face cache…")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["Model", "Size on disk", ""])
        self.list.setRootIsDecorated(False)
        self.list.setSortingEnabled(False)
        self.list.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.list.header().setStretchLastSection(False)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.itemSelectionChanged.connect(self._selection_changed)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setToolTip("Delete the selected model's files from the Hugging Face cache")
        self.remove_button.setEnabled(False)
        self.remove_button.clicked.connect(lambda: self.ask_remove(self.selected()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.refresh()

    # ---- the list --------------------------------------------------------------

    def refresh(self) -> None:
        QueryOp(self, model_catalog.load_choices, self._show, self._on_list_failed, what="Listing models").run()

    def _show(self, choices: list[ModelChoice]) -> None:
        cached = [c for c in choices if c.source == "cache"]
        self._sizes = {c.name: c.size_on_disk or 0 for c in cached}
        self.list.clear()
        for c in cached:
            item = QTreeWidgetItem([c.name, human_bytes(self._sizes[c.name]),
                                    "" if c.available_offline else "partly downloaded"])
            item.setData(0, NAME_ROLE, c.name)
            item.setToolTip(0, c.details())
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.list.addTopLevelItem(item)
        self.list.resizeColumnToContents(1)
        self.list.resizeColumnToContents(2)
        total = sum(self._sizes.values())
        listed = (f"{len(cached)} model{'' if len(cached) == 1 else 's'} in the Hugging Face cache "
                  f"({human_bytes(total)}): {model_cache.hub_cache()}" if cached else
                  f"No models in the Hugging Face cache ({model_cache.hub_cache()}).")
        self.summary.setText(listed + (f"\n{self._said}" if self._said else ""))
        self.loaded = True
        self._selection_changed()
        self.catalog.emit(choices)

    def _on_list_failed(self, exc: BaseException) -> None:
        self.summary.setText(f"The models could not be listed: {exc}")
        self.loaded = True

    def names(self) -> list[str]:
        return [self.list.topLevelItem(i).data(0, NAME_ROLE) for i in range(self.list.topLevelItemCount())]

    def size_text(self, name: str) -> str:
        item = next(self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount())
                    if self.list.topLevelItem(i).data(0, NAME_ROLE) == name)
        return item.text(1)

    def select(self, name: str) -> None:
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            if item.data(0, NAME_ROLE) == name:
                self.list.setCurrentItem(item)

    def selected(self) -> str | None:
        item = self.list.currentItem()
        return item.data(0, NAME_ROLE) if item is not None and item.isSelected() else None

    def _selection_changed(self) -> None:
        self.remove_button.setEnabled(self.selected() is not None)

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        name = item.data(0, NAME_ROLE)
        menu = QMenu(self)
        menu.addAction(f"Remove {name}…", lambda: self.ask_remove(name))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    # ---- removing one ----------------------------------------------------------------

    def ask_remove(self, name: str | None) -> None:
        """Refused at once while it is in use (no question to answer first), else confirmed, then removed."""
        if not name:
            return
        if reason := model_cache.in_use(name):
            self._refuse(name, reason)
            return
        size = self._sizes.get(name)
        dialogs.ask(
            self,
            QMessageBox.Icon.Question,
            f"Remove {name} from this machine?",
            (f"Its files ({human_bytes(size)}) are deleted from the Hugging Face cache. " if size else "")
            + "A later start that uses it downloads it again.",
            [("Remove", QMessageBox.ButtonRole.DestructiveRole)],
            None,  # Cancel stays the default: removing is not undone
            lambda answer: answer and self._remove(name),
        )

    def _remove(self, name: str) -> None:
        QueryOp(self, lambda: model_cache.remove(name), self._on_removed,
                lambda exc: self._refuse(name, str(exc) if isinstance(exc, ConfigError | OSError) else repr(exc)),
                what=f"Removing {name}").run()

    def _on_removed(self, gone: model_cache.Removed) -> None:
        launcher_logger().info("removed %s (%s freed): %s", gone.name, human_bytes(gone.freed_bytes), gone.folder)
        self._said = f"Removed {gone.name}: {human_bytes(gone.freed_bytes)} freed."
        self.removed.emit(gone.name)
        self.refresh()

    def _refuse(self, name: str, reason: str) -> None:
        launcher_logger().warning("%s was not removed: %s", name, reason)
        box = QMessageBox(QMessageBox.Icon.Warning, dialogs.TITLE, f"{name} cannot be removed now.",
                          QMessageBox.StandardButton.Ok, self)
        box.setInformativeText(reason[:1].upper() + reason[1:] + ".")
        box.finished.connect(box.deleteLater)
        box.open()
