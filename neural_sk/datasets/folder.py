"""A folder of images sorted into one sub-folder per class (Kaggle ``chest_xray`` style)::

    chest_xray/train/NORMAL/IM-0115-0001.jpeg
    chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg
    chest_xray/test/...

Pointing ``root`` at ``chest_xray/train`` reads one split; pointing it at ``chest_xray`` reads all
of them and the ``split`` column says which folder each image came from.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._labels import (
    MISSING_REPORT_POLICIES,
    apply_missing_report_policy,
    check_choice,
    study_frame,
    warn_dropped,
)

__all__ = ["load_image_folder"]

logger = logging.getLogger(__name__)

_SOURCE = "load_image_folder"
_POSITIVE = "pneumonia"
# Folders that are never classes: macOS archive debris and hidden folders.
_SKIP_DIRS = {"__MACOSX"}


def load_image_folder(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    reports: str | os.PathLike | None = None,
    report_template: Mapping[str, str] | None = None,
    extensions: Sequence[str] = (".png", ".jpg", ".jpeg", ".dcm"),
    patient_pattern: str | None = r"^(person\d+)[_\-]",
    missing_report: str = "error",
    verbose: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Load images sorted into class folders, with reports from a CSV or a template per class.

    Parameters
    ----------
    root : path
        Folder whose sub-folders are the classes (``train/`` holding ``NORMAL/`` and
        ``PNEUMONIA/``), or one level above (``chest_xray/`` holding ``train/``, ``test/``...).
        The class of an image is the name of the folder it sits in.
    classes : sequence of str, optional
        Class folder names in label order: ``y`` is the index in ``classes``. Images in other
        folders are left out with a warning naming the folders. By default every folder that holds
        an image is a class: with two classes of which one is ``PNEUMONIA`` (any case), that one is
        1 and the other 0; otherwise the sorted folder names are label-encoded 0..k-1.
    reports : path, optional
        A CSV with ``image`` and ``report`` columns; ``image`` is matched to the file's path
        relative to ``root`` (``PNEUMONIA/person1_bacteria_1.jpeg``), then to its name alone.
    report_template : dict, optional
        Class name -> report text for images with no report in ``reports``; ``{label}`` is
        replaced by the class name (``{"PNEUMONIA": "IMPRESSION: Findings of {label}."}``).
    extensions : sequence of str, default=(".png", ".jpg", ".jpeg", ".dcm")
        File endings that count as images (any case).
    patient_pattern : str or None, default=r"^(person\\d+)[_\\-]"
        Regular expression whose first group, searched in the file name, is the patient id
        (``person1_bacteria_1.jpeg`` -> ``person1``); where it does not match, and with ``None``,
        the file name up to its first dot is the patient id.
    missing_report : {"error", "drop", "empty"}, default="error"
        Used only when ``reports`` or ``report_template`` is given and an image gets no text from
        either: raise naming the images, leave them out with a warning, or keep ``""``. Without
        both, ``report`` is ``""`` for every image (the scorer can generate reports).
    verbose : int, default=0
        Log a summary (``logging`` at INFO level).

    Returns
    -------
    X : DataFrame
        ``image`` (path, str), ``report``, ``patient_id``, ``study_id`` (the path relative to
        ``root``), ``label`` (the class folder name) and ``split`` (when ``root`` holds split
        folders), sorted by path.
    y : ndarray of int64, or None
        None for a flat folder (every image directly in ``root``, no class folders): the
        studies are unlabelled, which is enough to compress or score them.

    Notes
    -----
    The Kaggle pneumonia set has several images per ``personN``; split with
    ``GroupKFold(...).split(X, y, groups=X["patient_id"])`` or ``GroupShuffleSplit`` so that one
    patient's images stay on one side.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ["NORMAL/IM-0001-0001.jpeg", "PNEUMONIA/person1_bacteria_1.jpeg"]:
    ...     (root / rel).parent.mkdir(parents=True, exist_ok=True)
    ...     (root / rel).touch()
    >>> X, y = load_image_folder(root, report_template={"NORMAL": "Normal.",
    ...                                                  "PNEUMONIA": "Consistent with {label}."})
    >>> X[["patient_id", "label", "report"]].values.tolist(), y.tolist()
    ([['IM-0001-0001', 'NORMAL', 'Normal.'], ['person1', 'PNEUMONIA', 'Consistent with PNEUMONIA.']], [0, 1])
    """
    check_choice("missing_report", missing_report, MISSING_REPORT_POLICIES)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{_SOURCE}: root {str(root)!r} does not exist or is not a folder")
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    pattern = re.compile(patient_pattern) if patient_pattern else None

    table = _walk(root, exts)
    in_class = (table["label"] != "").to_numpy()
    flat = not in_class.any()
    if flat and (classes is not None or report_template is not None):
        raise ValueError(f"{_SOURCE}: {str(root)!r} has no class folders (every image is "
                         "directly in it), so classes= and report_template= do not apply")
    if not flat and not in_class.all():
        warn_dropped(_SOURCE, table.loc[~in_class, "study_id"].tolist(),
                     "directly in root, not in a class folder", what="images")
        table = table[in_class].reset_index(drop=True)
    found = sorted(set(table["label"]))
    if flat:
        classes = []
    elif classes is None:
        classes = found
        lower = [c.lower() for c in classes]
        if len(classes) == 2 and _POSITIVE in lower:
            # The positive class is 1 whatever its place in the alphabet.
            pos = lower.index(_POSITIVE)
            classes = [classes[1 - pos], classes[pos]]
    else:
        classes = list(classes)
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes has duplicates: {classes}")
        absent = [c for c in classes if c not in found]
        if absent:
            raise FileNotFoundError(f"{_SOURCE}: no images for class(es) {absent} under "
                                    f"{str(root)!r}; the class folders found are {found}")
        other = ~table["label"].isin(classes)
        if other.any():
            counts = table.loc[other, "label"].value_counts().to_dict()
            warn_dropped(_SOURCE, table.loc[other, "study_id"].tolist(),
                         f"in folders {counts} that are not in classes={classes}", what="images")
            table = table[~other].reset_index(drop=True)
    y = None if flat else table["label"].map({c: i for i, c in enumerate(classes)}
                                             ).to_numpy(dtype=np.int64)

    def patient(rel: str) -> str:
        stem = Path(rel).name
        m = pattern.search(stem) if pattern is not None else None
        return m.group(1) if m else stem.split(".")[0]

    table["patient_id"] = [patient(r) for r in table["study_id"]]

    text = [""] * len(table) if reports is None else _given_reports(table, reports)
    if report_template is not None:
        unknown = sorted(set(report_template) - set(classes))
        if unknown:
            raise ValueError(f"report_template has class(es) {unknown} that are not among the "
                             f"classes {list(classes)}")
        text = [t if t.strip() else report_template.get(lab, "").format(label=lab)
                for t, lab in zip(text, table["label"], strict=True)]
    keep = np.ones(len(table), dtype=bool)
    if reports is not None or report_template is not None:
        keep = apply_missing_report_policy(
            [t.strip() for t in text], table["study_id"].tolist(), missing_report, source=_SOURCE,
            reason="no report in reports= nor a report_template for its class")
    columns = {"patient_id": "patient_id", "study_id": "study_id"}
    if not flat:
        columns["label"] = "label"
    if any(table["split"]):
        columns["split"] = "split"
    X = study_frame(table, text, columns)
    X, y = X[keep].reset_index(drop=True), (None if flat else y[keep])
    if verbose:
        logger.info("%s: %d images in classes %s; %d kept", _SOURCE, len(table), list(classes),
                    len(X))
    return X, y


def _walk(root: Path, exts: tuple[str, ...]) -> pd.DataFrame:
    """One walk; an image's class is its folder, its split the folder above (when below root)."""
    paths, rels, labels, splits = [], [], [], []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        rel_folder = Path(folder).relative_to(root)
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(exts):
                continue
            paths.append(os.path.join(folder, name))
            rels.append((rel_folder / name).as_posix())
            labels.append(rel_folder.parts[-1] if rel_folder.parts else "")  # "": in root
            splits.append("/".join(rel_folder.parts[:-1]))
    if not paths:
        raise FileNotFoundError(f"{_SOURCE}: no image ({', '.join(exts)}) in {str(root)!r} or "
                                "its class sub-folders; expected root/<class>/<image>, for "
                                "example train/PNEUMONIA/person1_bacteria_1.jpeg, or images "
                                "directly in root (unlabelled)")
    return pd.DataFrame({"image": paths, "study_id": rels, "label": labels, "split": splits})


def _given_reports(table: pd.DataFrame, reports: str | os.PathLike) -> list[str]:
    """Each image's report from the ``image``, ``report`` CSV ("" when it has none)."""
    reports_path = Path(reports)
    if not reports_path.is_file():
        raise FileNotFoundError(f"{_SOURCE}: reports={str(reports)!r} does not exist")
    given = pd.read_csv(reports_path)
    missing_cols = {"image", "report"} - set(given.columns)
    if missing_cols:
        raise ValueError(f"{_SOURCE}: {str(reports_path)!r} lacks column(s) "
                         f"{sorted(missing_cols)}; it has {list(given.columns)}")
    given = given.dropna(subset=["report"])
    keys = [str(k).replace("\\", "/") for k in given["image"]]
    by_rel = dict(zip(keys, given["report"], strict=True))
    # A bare file name matches only when it is unique in the CSV.
    by_name = _unique_by_name([os.path.basename(k) for k in keys], given["report"].tolist())
    text = []
    for rel, path in zip(table["study_id"], table["image"], strict=True):
        hit = by_rel.get(rel)
        if hit is None:
            hit = by_rel.get(path.replace("\\", "/"), by_name.get(os.path.basename(rel), ""))
        text.append(str(hit))
    return text


def _unique_by_name(names: list[str], values: list[object]) -> dict[str, object]:
    """File name -> value for the names that occur once (an ambiguous name matches nothing)."""
    counts = pd.Series(names).value_counts()
    once = set(counts.index[counts == 1])
    return {n: v for n, v in zip(names, values, strict=True) if n in once}
