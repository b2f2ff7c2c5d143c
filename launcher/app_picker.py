"""Your own Gradio app in the window: its target, Choose…, CPUs/GPUs/replicas, and what the file holds.

What a target holds is learnt in a child process (launcher/app_inspector.py): the user's
code, and Gradio with it, must never be imported into the launcher. The answer ("demo · gr.Blocks", or the error with its file, line and hint) is kept with the
file's modification time, so Start reuses it while the file is unchanged and checks again
when it was edited; a QFileSystemWatcher re-checks an edited file on its own, so fixing
the error in an editor turns the line from red to fine without touching the window.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFileDialog,
    QGridLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from launcher.app_inspector import (
    AppInspector,
    Inspection,
    file_of,
    file_stamp,
    normalize_target,
    quick_check,
    resolve_target,
    short_name,
)
from launcher.icons import STATE_COLOURS
from launcher.logs import launcher_logger
from launcher.py_drops import PyFileDrops
from launcher.resource_boxes import COL_CPUS, COL_GPUS, COL_REPLICAS, ResourceBoxes
from serving.core.config import MAX_CPUS_PER_REPLICA, MAX_GPUS_PER_REPLICA, AppSpec

PLACEHOLDER = "path/to/app.py, app.py:demo or package.module:demo"
EMPTY_TEXT = "Choose your app's .py file, or drop one on this window."
# A Serve application file (a GradioIngress subclass bound to its models) runs as the file declares it.
SERVE_APP_NOTE = "deployed as the file declares its deployments: their CPUs, GPUs and replicas are set there"


class AppRow(QWidget):
    """The app's line in the window: target (with recent apps), Choose…, CPUs, GPUs, replicas, and the verdict."""

    changed = Signal()  # a value the configuration carries
    checked = Signal(object)  # Inspection of the current target
    chosen = Signal(str)  # a file the user picked or dropped (the window remembers it)

    debounce_ms = 600  # typing: check once the user pauses

    def __init__(
        self,
        spec: AppSpec | None = None,
        max_cpus: float = MAX_CPUS_PER_REPLICA,
        max_gpus: float = MAX_GPUS_PER_REPLICA,
        parent: QWidget | None = None,
        inspector: AppInspector | None = None,
    ):
        super().__init__(parent)
        self._base: AppSpec | None = None
        self._result: Inspection | None = None
        self._waiting: list[Callable[[Inspection], None]] = []
        self._active = False  # checks run only while the window is in mode app
        self._editable = True
        self._declares = False  # the file is a Serve application: its deployments set their own resources
        self._loading = False
        self.inspector = inspector or AppInspector(self)
        self.inspector.finished.connect(self._on_inspected)
        self._debounce = QTimer(self, singleShot=True, interval=self.debounce_ms)
        self._debounce.timeout.connect(self.check_now)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._on_file_changed)

        self.target_box = QComboBox()
        self.target_box.setEditable(True)
        self.target_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.target_box.setMinimumContentsLength(28)
        self.target_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target_box.lineEdit().setPlaceholderText(PLACEHOLDER)
        self.target_box.setToolTip(
            "Your Gradio app: a .py file with one gr.Blocks / gr.Interface / gr.ChatInterface at the top level\n"
            "(file.py:NAME picks one, or a function that builds it), or package.module:NAME.\n"
            "The list holds the apps you opened recently."
        )
        completer = QCompleter(self.target_box.model(), self.target_box)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)  # "demo" finds /home/me/x/demo.py
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.target_box.setCompleter(completer)
        # A .py dropped on the field is the app (the line edit would paste its URL as text).
        self._drops = PyFileDrops(self.target_box.lineEdit(), accepting=self.target_box.isEnabled)
        self._drops.dropped.connect(self.take_file)
        self.choose = QPushButton("Choose…")
        self.choose.setToolTip("Pick your app's .py file")
        self.boxes = ResourceBoxes(
            self,
            cpus_tip="CPUs per replica of your app",
            replicas_tip="Copies of your app serving in parallel; each browser session stays with one",
        )
        self.cpus, self.gpus, self.replicas = self.boxes.cpus, self.boxes.gpus, self.boxes.replicas
        self.reload = QCheckBox("Reload when the file changes")
        self.reload.setToolTip("A saved .py file in the app's folder is checked, then swapped into every replica;\n"
                               "a broken save is shown in the log and the running version goes on")
        self.found = QLabel()
        self.found.setObjectName("appFound")
        self.found.setWordWrap(True)
        self.found.setTextFormat(Qt.TextFormat.RichText)
        self.found.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._found_plain = ""

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        heads = (("App", 0), ("CPUs", 2), ("GPUs", 3), ("Replicas", 4))
        for text, col in heads:
            grid.addWidget(QLabel(text), 0, col)
        grid.addWidget(self.target_box, 1, 0)
        grid.addWidget(self.choose, 1, 1)
        grid.addWidget(self.cpus, 1, 2)
        grid.addWidget(self.gpus, 1, 3)
        grid.addWidget(self.replicas, 1, 4)
        grid.addWidget(self.found, 2, 0, 1, 5)
        grid.addWidget(self.reload, 3, 0, 1, 5)
        grid.setColumnStretch(0, 1)
        for col, width in ((2, COL_CPUS), (3, COL_GPUS), (4, COL_REPLICAS)):
            grid.setColumnMinimumWidth(col, width)

        self.boxes.set_bounds(max_cpus, max_gpus)
        self.set_spec(spec)

        self.target_box.currentTextChanged.connect(self._on_text_changed)
        self.target_box.lineEdit().editingFinished.connect(self._on_editing_finished)
        self.choose.clicked.connect(self.choose_file)
        for box in (self.cpus, self.gpus, self.replicas):
            box.valueChanged.connect(lambda _v: self.changed.emit())
        self.reload.toggled.connect(lambda _on: self.changed.emit())

    # ---- values ------------------------------------------------------------------

    def set_spec(self, spec: AppSpec | None) -> None:
        """Show `spec` (fields not shown here, app_dir, autoscaling..., are kept for app_dict)."""
        self._base = spec
        self._loading = True
        try:
            self.target_box.setEditText(spec.target if spec else "")
            values = spec or AppSpec(target="-")
            self.cpus.setValue(values.num_cpus)
            self.gpus.setValue(values.num_gpus)
            self.replicas.setValue(values.replicas)
            self.reload.setChecked(values.reload)
        finally:
            self._loading = False
        self._update_autoscaling()
        self._target_moved()

    def text(self) -> str:
        return self.target_box.currentText().strip()

    def target(self) -> str:
        return normalize_target(self.text())

    def app_dir(self) -> str | None:
        """The loaded app's folder while its target stays; else a module's folder is where the launcher runs
        (as for `gradio-serve up --app`), and a file runs in its own (None)."""
        target, module_dir = resolve_target(self.text())
        if self._base is not None and self._base.app_dir and target == self._base.target:
            return self._base.app_dir
        return module_dir

    def app_dict(self) -> dict:
        """The app as LaunchConfig data (validated by the caller, which names the field)."""
        data = self._base.model_dump(mode="json") if self._base else {}
        data.update(target=self.target(), app_dir=self.app_dir(), num_cpus=self.cpus.value(),
                    num_gpus=self.gpus.value(), replicas=self.replicas.value(), reload=self.reload.isChecked())
        return data

    def set_target(self, text: str) -> None:
        """Put a target in the field (Choose…, a drop, a recent app) and check it at once."""
        self.target_box.setEditText(normalize_target(text))
        if self._active:
            self.check_now()

    def set_recent(self, targets: list[str]) -> None:
        """Offer these targets in the field's list and completer (most recent first)."""
        text = self.target_box.currentText()
        self.target_box.blockSignals(True)
        self.target_box.clear()
        for target in targets:
            self.target_box.addItem(target)
            self.target_box.setItemData(self.target_box.count() - 1, target, Qt.ItemDataRole.ToolTipRole)
        self.target_box.setEditText(text)
        self.target_box.blockSignals(False)

    def recent(self) -> list[str]:
        return [self.target_box.itemText(i) for i in range(self.target_box.count())]

    def _update_autoscaling(self) -> None:
        scaling = self._base.autoscaling if self._base else None
        self.replicas.setEnabled(scaling is None and self.cpus.isEnabled())
        self.replicas.setToolTip(
            f"Autoscaling (from the configuration): {scaling.min_replicas} to {scaling.max_replicas} replicas"
            if scaling
            else "Copies of your app serving in parallel; each browser session stays with one"
        )

    def set_bounds(self, max_cpus: float, max_gpus: float) -> None:
        self.boxes.set_bounds(max_cpus, max_gpus)

    def set_editable(self, editable: bool) -> None:
        self.target_box.setEnabled(editable)
        self.choose.setEnabled(editable)
        self.reload.setEnabled(editable)  # the watch starts with the app: a change waits for the next start
        self._editable = editable
        self._boxes_follow()

    def _boxes_follow(self) -> None:
        self.boxes.set_editable(self._editable and not self._declares)
        self._update_autoscaling()

    # ---- choosing ----------------------------------------------------------------------

    def choose_file(self) -> None:
        path = file_of(self.text())
        start = str(path.parent) if path and path.parent.is_dir() else str(Path.home())
        chosen, _ = QFileDialog.getOpenFileName(self, "Choose your Gradio app", start,
                                                "Python files (*.py);;All files (*)")
        if chosen:
            self.take_file(chosen)

    def take_file(self, path: str) -> None:
        """A file chosen or dropped: it becomes the target, is checked now and remembered."""
        self.set_target(path)
        self.chosen.emit(self.target())

    # ---- checking ----------------------------------------------------------------------

    def set_active(self, active: bool) -> None:
        """Checks run only in mode app; becoming active checks a target not checked yet."""
        self._active = active
        if not active:
            self._debounce.stop()
        elif self.text() and self.current_result() is None and not self.checking():
            self.check_now()

    def checking(self) -> bool:
        return self.inspector.busy_with(self.target(), self.app_dir()) or self._debounce.isActive()

    def current_result(self) -> Inspection | None:
        """The verdict on the target as it is now (same target, file unchanged), or None."""
        r = self._result
        if r is None or r.target != self.target() or r.app_dir != self.app_dir():
            return None
        if file_of(r.target) is not None and r.stamp != file_stamp(r.target):
            return None
        return r

    def when_checked(self, callback: Callable[[Inspection], None]) -> None:
        """Call back with the verdict on the current target: at once if known, else once checked."""
        result = self.current_result()
        if result is not None:
            callback(result)
            return
        self._waiting.append(callback)
        if not self.inspector.busy_with(self.target(), self.app_dir()):
            self.check_now()

    def check_now(self) -> None:
        self._debounce.stop()
        text = self.text()
        if not text:
            self.inspector.cancel()
            self._deliver(Inspection(ok=False, app_dir=self.app_dir(), error="no app chosen",
                                     hint="choose your app's .py file, or drop it on the window"))
            return
        target, app_dir = self.target(), self.app_dir()
        quick = quick_check(target, app_dir)
        if quick is not None:
            self.inspector.cancel()
            self._deliver(quick)
            return
        if not self.inspector.busy_with(target, app_dir):
            self.inspector.inspect(target, app_dir)
        self._show_checking()

    def _on_text_changed(self, _text: str) -> None:
        if self._loading:
            return
        self._target_moved()
        self.changed.emit()

    def _target_moved(self) -> None:
        """The target changed: the verdict shown is for another one, so check again (after a pause)."""
        if self.current_result() is not None:
            self._show_result(self._result)
            return
        if not self.text():
            self._show(EMPTY_TEXT, dim=True)
            self._debounce.stop()
            return
        self._show_checking()
        if self._active:
            self._debounce.start()

    def _on_editing_finished(self) -> None:
        normal = self.target()
        if normal and normal != self.text():
            self.target_box.setEditText(normal)  # relative or ~ paths, as the app will be found

    def _on_file_changed(self, path: str) -> None:
        # Edited (or replaced, as editors save) since it was checked: check again after a pause.
        if self._active and file_of(self.target()) == Path(path):
            self._show_checking()
            self._debounce.start()

    def _on_inspected(self, result: Inspection) -> None:
        if result.target != self.target() or result.app_dir != self.app_dir():
            return  # for a target since replaced; that one is checked in its turn
        if result.unchecked:
            launcher_logger().info("%s", result.error)
        self._deliver(result)

    def _deliver(self, result: Inspection) -> None:
        self._result = result
        self._declares = result.ok and result.serve_app
        self._boxes_follow()
        self._watch(file_of(result.target) if result.target else None)
        self._show_result(result)
        self.checked.emit(result)
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback(result)

    def _watch(self, path: Path | None) -> None:
        files = self._watcher.files()
        if files:
            self._watcher.removePaths(files)
        if path is not None and path.is_file():
            self._watcher.addPath(str(path))

    # ---- the verdict line -----------------------------------------------------------------

    def found_text(self) -> str:
        """The verdict line as plain text (tests and the tray read it)."""
        return self._found_plain

    def _show_checking(self) -> None:
        self._show(f"Checking {short_name(self.target())}…", dim=True)

    def _show_result(self, result: Inspection) -> None:
        if result.ok:
            self._show(result.summary(), colour=STATE_COLOURS["running"],
                       tip=f"{result.file}\nruns in {result.folder}" if result.file else "",
                       hint=SERVE_APP_NOTE if result.serve_app else "")
        elif not result.target:
            self._show(EMPTY_TEXT, dim=True)
        else:
            colour = STATE_COLOURS["starting"] if result.unchecked else STATE_COLOURS["error"]
            self._show(result.summary(), colour=colour, hint=result.hint or "")

    def _show(self, text: str, *, dim: bool = False, colour: str | None = None, hint: str = "",
              tip: str = "") -> None:
        if dim:
            colour = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        body = html.escape(text)
        if colour:
            body = f"<span style='color:{colour}'>{body}</span>"
        if hint:
            dim_colour = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
            body += f"<br><span style='color:{dim_colour}'>{html.escape(hint[:1].upper() + hint[1:])}</span>"
        self.found.setText(body)
        self.found.setToolTip(tip)
        self._found_plain = text + (f"\n{hint}" if hint else "")
