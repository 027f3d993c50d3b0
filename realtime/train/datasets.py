"""Dataset readers: UCF-101 split lists, HMDB-51 split files, and any folder-per-class tree.

Each reader returns a `VideoDataset`: class names, and train / test lists of `Clip`s (a video path
and its class index). Empty classes and missing files are reported, never a crash.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

log = logging.getLogger("twostream")
VIDEO_EXTENSIONS = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclass(frozen=True)
class Clip:
    path: Path
    label: int

    def key(self, root: Path) -> str:
        """Path relative to the dataset root: the clip's name in caches and reports."""
        try:
            return self.path.relative_to(root).as_posix()
        except ValueError:
            return self.path.as_posix().lstrip("/")


@dataclass
class VideoDataset:
    name: str
    root: Path
    classes: list[str]
    train: list[Clip]
    test: list[Clip]
    notes: list[str] = field(default_factory=list)  # what was left out and why
    flip_pairs: list[list[str]] = field(default_factory=list)  # from ROOT/flip_pairs.txt

    def summary(self) -> str:
        return f"{self.name}: {len(self.classes)} classes, {len(self.train)} train / {len(self.test)} test clips" + (
            f" ({'; '.join(self.notes)})" if self.notes else ""
        )


def _videos_in(folder: Path) -> list[Path]:
    """Video files under `folder`; hidden ones (a recording's `.NAME.partial.avi`, macOS `._NAME` forks) are not clips."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _find(root: Path, names: list[str]) -> Path | None:
    for name in names:
        for base in (root, root / "splits", root / "ucfTrainTestlist", root / "testTrainMulti_7030_splits"):
            if (base / name).is_file():
                return base / name
    return None


def read_class_index(path: Path) -> list[str]:
    """UCF's classInd.txt: `1 ApplyEyeMakeup` per line, 1-based."""
    entries = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(f"{path}:{n}: expected '<index> <ClassName>', got {line.strip()!r}")
        entries.append((int(parts[0]), parts[1]))
    entries.sort()
    if [i for i, _ in entries] != list(range(1, len(entries) + 1)):
        raise UserError(f"{path}: class indices must run 1..N without gaps")
    return [c for _, c in entries]


def read_list(path: Path, root: Path, classes: list[str]) -> tuple[list[Clip], list[str]]:
    """A UCF-style list (`Class/clip.avi [index]`): the label is the index when given, else the folder."""
    clips, missing = [], []
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        rel = parts[0]
        if len(parts) > 1 and parts[1].isdigit():
            label = int(parts[1]) - 1
        else:
            folder = rel.split("/")[0].lower()
            if folder not in lookup:
                raise UserError(f"{path}:{n}: class folder '{rel.split('/')[0]}' is not in the class index")
            label = lookup[folder]
        if not 0 <= label < len(classes):
            raise UserError(f"{path}:{n}: class index {label + 1} outside 1..{len(classes)}")
        clip_path = root / rel
        if clip_path.is_file():
            clips.append(Clip(clip_path, label))
        else:
            missing.append(rel)
    return clips, missing


def read_ucf101(root: Path, split: int = 1, class_index: Path | None = None, train_list: Path | None = None, test_list: Path | None = None) -> VideoDataset:
    ci = class_index or _find(root, ["classInd.txt"])
    if ci is None:
        raise UserError(f"{root}: no classInd.txt found (give --class-index)")
    classes = read_class_index(ci)
    tr = train_list or _find(root, [f"trainlist{split:02d}.txt"])
    te = test_list or _find(root, [f"testlist{split:02d}.txt"])
    if tr is None or te is None:
        raise UserError(f"{root}: split {split} lists not found (trainlist{split:02d}.txt / testlist{split:02d}.txt); give --train-list/--test-list")
    video_root = root / "videos" if (root / "videos").is_dir() else root
    train, miss_tr = read_list(tr, video_root, classes)
    test, miss_te = read_list(te, video_root, classes)
    notes = [f"{len(miss_tr) + len(miss_te)} listed clips missing on disk (e.g. {(miss_tr + miss_te)[0]})"] if miss_tr or miss_te else []
    return _checked(VideoDataset(f"ucf101 split {split}", root, classes, train, test, notes))


def read_hmdb51(root: Path, split: int = 1, splits_dir: Path | None = None) -> VideoDataset:
    """HMDB-51: `<class>_test_split<N>.txt` with `video.avi 1|2|0` (1 train, 2 test, 0 unused)."""
    sdir = splits_dir or next((d for d in (root, root / "splits", root / "testTrainMulti_7030_splits") if list(d.glob(f"*_test_split{split}.txt"))), None)
    if sdir is None:
        raise UserError(f"{root}: no HMDB-51 split files '*_test_split{split}.txt' found")
    files = sorted(sdir.glob(f"*_test_split{split}.txt"))
    classes = [re.sub(rf"_test_split{split}\.txt$", "", f.name) for f in files]
    video_root = root / "videos" if (root / "videos").is_dir() else root
    train: list[Clip] = []
    test: list[Clip] = []
    missing: list[str] = []
    for label, (cls, f) in enumerate(zip(classes, files)):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise UserError(f"{f}:{n}: expected '<video> <0|1|2>', got {line.strip()!r}")
            path = video_root / cls / parts[0]
            if parts[1] == "0":
                continue
            if not path.is_file():
                missing.append(f"{cls}/{parts[0]}")
                continue
            (train if parts[1] == "1" else test).append(Clip(path, label))
    notes = [f"{len(missing)} listed clips missing on disk (e.g. {missing[0]})"] if missing else []
    return _checked(VideoDataset(f"hmdb51 split {split}", root, classes, train, test, notes))


def read_folder(root: Path, train_list: Path | None = None, test_list: Path | None = None, test_fraction: float = 0.25, seed: int = 0) -> VideoDataset:
    """ROOT/<class>/<clip>: classes are the sub-folders in sorted order. Without lists, a seeded stratified split."""
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in ("splits",))
    notes = []
    classes, per_class = [], []
    for d in folders:
        vids = _videos_in(d)
        if not vids:
            notes.append(f"class '{d.name}' has no clips: left out")
            continue
        classes.append(d.name)
        per_class.append(vids)
    if not classes:
        raise UserError(f"{root}: no class folders with video clips ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    if train_list or test_list:
        if not (train_list and test_list):
            raise UserError("give both --train-list and --test-list, or neither")
        train, m1 = read_list(train_list, root, classes)
        test, m2 = read_list(test_list, root, classes)
        if m1 or m2:
            notes.append(f"{len(m1) + len(m2)} listed clips missing on disk")
        return _checked(VideoDataset(f"folder {root.name}", root, classes, train, test, notes))
    train, test = [], []
    for label, vids in enumerate(per_class):
        order = vids[:]
        random.Random(f"{seed}:{classes[label]}").shuffle(order)
        n_test = max(1, round(len(order) * test_fraction)) if len(order) >= 2 else 0
        test += [Clip(p, label) for p in sorted(order[:n_test])]
        train += [Clip(p, label) for p in sorted(order[n_test:])]
    return _checked(VideoDataset(f"folder {root.name}", root, classes, train, test, notes))


def open_dataset(
    root: str | Path,
    split: int = 1,
    class_index: str | Path | None = None,
    train_list: str | Path | None = None,
    test_list: str | Path | None = None,
    seed: int = 0,
) -> VideoDataset:
    """Recognise the layout under `root`: UCF-101 lists, HMDB-51 split files, or a folder per class."""
    r = Path(root)
    if not r.is_dir():
        raise UserError(f"{r}: no such dataset directory")
    ci, tr, te = (Path(p) if p else None for p in (class_index, train_list, test_list))
    for p in (ci, tr, te):
        if p is not None and not p.is_file():
            raise UserError(f"{p}: no such list file")
    if ci is not None or _find(r, ["classInd.txt"]) is not None:
        return read_ucf101(r, split, ci, tr, te)
    if any(r.glob(f"*_test_split{split}.txt")) or any(r.glob(f"*/*_test_split{split}.txt")):
        return read_hmdb51(r, split)
    return read_folder(r, tr, te, seed=seed)


def read_flip_pairs(root: Path, classes: list[str]) -> list[list[str]]:
    """ROOT/flip_pairs.txt: `swipe_left swipe_right` per line, classes that a mirror turns into each other."""
    path = root / "flip_pairs.txt"
    if not path.is_file():
        return []
    pairs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 2 or not set(parts) <= set(classes):
            raise UserError(f"{path}:{n}: expected two class names of this dataset, got {line.strip()!r}")
        pairs.append(parts)
    return pairs


def _checked(ds: VideoDataset) -> VideoDataset:
    ds.flip_pairs = read_flip_pairs(ds.root, ds.classes)
    if not ds.train:
        raise UserError(f"{ds.root}: no training clips found for {ds.name}")
    empty = [ds.classes[i] for i in range(len(ds.classes)) if not any(c.label == i for c in ds.train)]
    if empty:
        ds.notes.append(f"{len(empty)} classes without training clips ({', '.join(empty[:3])})")
    return ds
