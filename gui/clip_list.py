"""The Teach panel's list of recorded clips, class by class, read from the folder; delete (into .deleted/) and undo."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QAbstractItemView, QHBoxLayout, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from realtime import ClipLibrary, MIN_CLIPS, RECOMMENDED_CLIPS, UserError

from .widgets import WARNING_COLOUR

PATH_ROLE = Qt.ItemDataRole.UserRole


class ClipList(QWidget):
    """The classes and clips of a ClipLibrary: review, delete, undo. The folder is the truth; the list follows it."""

    listed = pyqtSignal(object)  # {class: clips} as the list now shows them
    classPicked = pyqtSignal(str)  # one class (or one of its clips) selected: record more of it
    message = pyqtSignal(str)  # one line for the status bar
    problem = pyqtSignal(str)  # what went wrong ("": the last action went well)

    def __init__(self, library: ClipLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.locked = False  # while recording or training: nothing is deleted or restored
        self._undo: list[list[Path]] = []  # groups of deleted clips, newest last
        self._info_cache: dict[Path, tuple[float, int, float]] = {}
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["class / clip", "frames", "s"])
        self.tree.setRootIsDecorated(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setMinimumHeight(120)
        header = self.tree.header()
        assert header is not None  # a QTreeWidget always has one (the stubs allow None)
        header.setStretchLastSection(False)
        header.resizeSection(1, 56)
        header.resizeSection(2, 40)
        header.setSectionResizeMode(0, header.ResizeMode.Stretch)
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Move the selected clips (or a whole class) out of the dataset, into .deleted/ (Del)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.undo_button = QPushButton("Undo delete")
        self.undo_button.setToolTip("Put the last deleted clips back (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo_delete)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(5)
        col.addWidget(self.tree, 1)
        row = QHBoxLayout()
        row.addWidget(self.delete_button)
        row.addWidget(self.undo_button)
        col.addLayout(row)

    def set_library(self, library: ClipLibrary) -> None:
        """Another folder: the undo history of the last one goes."""
        self.library = library
        self._undo.clear()
        self.refresh()

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        self._update_buttons()

    def counts(self) -> dict[str, int]:
        return self.library.counts()

    def refresh(self) -> None:
        """Rebuild the list from the folder (it is the truth: clips added or removed outside the app show up too)."""
        tops = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        expanded = {item.text(0).split(" ")[0] for item in tops if item is not None and item.isExpanded()}
        self.tree.clear()
        root = self.library.root
        classes = self.library.classes()
        for label, clips in classes.items():
            item = QTreeWidgetItem([f"{label}  ({len(clips)} clip{'' if len(clips) == 1 else 's'})", "", ""])
            item.setData(0, PATH_ROLE, str(root / label))
            if len(clips) < MIN_CLIPS:
                item.setForeground(0, WARNING_COLOUR)
                item.setToolTip(0, f"at least {MIN_CLIPS} clips are needed to train ({RECOMMENDED_CLIPS} recommended)")
            for clip in clips:
                try:
                    frames, seconds = self._clip_info(clip)
                except OSError:  # removed meanwhile
                    continue
                child = QTreeWidgetItem([clip.name, str(frames), f"{seconds:.1f}"])
                child.setData(0, PATH_ROLE, str(clip))
                child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
                child.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(label in expanded)
        self._update_buttons()
        self.listed.emit(classes)

    def select_clip(self, path: str | Path) -> bool:
        """Select one clip (or a class folder) in the list; False if it is not there."""
        want = str(path)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top is None:
                continue
            for item in (top, *(top.child(j) for j in range(top.childCount()))):
                if item is not None and item.data(0, PATH_ROLE) == want:
                    self.tree.clearSelection()
                    parent = item.parent()
                    if parent is not None:
                        parent.setExpanded(True)
                    item.setSelected(True)
                    self.tree.scrollToItem(item)
                    return True
        return False

    def delete_selected(self) -> list[Path]:
        """Move the selected clips out of the dataset (a selected class: all its clips, and its folder goes)."""
        if self.locked:
            return []
        clips: list[Path] = []
        folders: list[Path] = []
        for item in self.tree.selectedItems():
            path = Path(item.data(0, PATH_ROLE))
            if item.parent() is None:
                folders.append(path)
                clips += [Path(child.data(0, PATH_ROLE)) for j in range(item.childCount()) if (child := item.child(j)) is not None]
            else:
                clips.append(path)
        moved: list[Path] = []
        try:
            for clip in dict.fromkeys(clips):
                moved.append(self.library.delete(clip))
            for folder in folders:  # an empty class folder would count as a class with 0 clips
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        except (UserError, OSError) as e:
            self.problem.emit(f"could not delete: {e}")
        if moved:
            self._undo.append(moved)
            self.problem.emit("")
            what = moved[0].name if len(moved) == 1 else f"{len(moved)} clips"
            self.message.emit(f"deleted {what} (moved to {moved[0].parent}); Undo delete puts it back")
        self.refresh()
        return moved

    def undo_delete(self) -> list[Path]:
        if not self._undo or self.locked:
            return []
        restored = []
        for path in self._undo.pop():
            try:
                restored.append(self.library.restore(path))
            except (UserError, OSError) as e:
                self.problem.emit(f"could not restore {path.name}: {e}")
        if restored:
            self.message.emit(f"restored {restored[0].name if len(restored) == 1 else f'{len(restored)} clips'}")
        self.refresh()
        return restored

    def _clip_info(self, path: Path) -> tuple[int, float]:
        mtime = path.stat().st_mtime
        cached = self._info_cache.get(path)
        if cached is None or cached[0] != mtime:
            info = ClipLibrary.info(path)
            cached = self._info_cache[path] = (mtime, info.frames, info.seconds)
        return cached[1], cached[2]

    def _on_selection(self) -> None:
        items = self.tree.selectedItems()
        if len(items) == 1 and not self.locked:  # a class picked: record more of it
            item = items[0]
            label = (item.parent() or item).data(0, PATH_ROLE)
            self.classPicked.emit(Path(label).name)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.delete_button.setEnabled(not self.locked and bool(self.tree.selectedItems()))
        self.undo_button.setEnabled(not self.locked and bool(self._undo))
