"""MIMIC-CXR and MIMIC-CXR-JPG, read from their published layout with one pass over the tree.

The layout (PhysioNet, MIMIC-CXR 2.0.0 and MIMIC-CXR-JPG 2.0.0 / 2.1.0)::

    root/
      files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.dcm  (or .jpg)
      files/p10/p10000032/s50414267.txt         the free-text report of study 50414267
      mimic-cxr-2.0.0-chexpert.csv.gz           subject_id, study_id, 14 observations (1/0/-1/blank)
      mimic-cxr-2.0.0-negbio.csv.gz             the same from NegBio
      mimic-cxr-2.0.0-metadata.csv.gz           dicom_id, subject_id, study_id, ViewPosition, ...
      mimic-cxr-2.0.0-split.csv.gz              dicom_id, study_id, subject_id, split (optional)

The label, metadata and split CSVs ship with MIMIC-CXR-JPG; the reports ship with MIMIC-CXR
(``mimic-cxr-reports.zip`` unpacks to the same ``files/pXX/pNNNNNNNN/sNNNNNNNN.txt`` tree), so
``reports_root`` and the ``*_csv`` arguments let the pieces live in different folders.

The public NEURAL code finds the image of a study by scanning the list of every image path once per
study (quadratic in the archive); here one walk of the tree builds a table of images and one of
reports, and pandas merges join them with the CSVs (linear). See ``benchmarks/bench_loaders.py``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._labels import (
    MISSING_REPORT_POLICIES,
    SECTIONS,
    UNCERTAIN_POLICIES,
    check_choice,
    finish_studies,
    find_target_column,
    join_labels,
    keep_labelled,
    read_table,
    split_report_sections,
    warn_dropped,
)

__all__ = ["load_mimic_cxr"]

logger = logging.getLogger(__name__)

_SOURCE = "load_mimic_cxr"
_PATIENT_DIR = re.compile(r"p(\d+)$")
_STUDY_DIR = re.compile(r"s(\d+)$")
_REPORT_FILE = re.compile(r"s(\d+)\.txt$")
_IMAGE_EXTS = {".dcm": "dcm", ".jpg": "jpg"}
# With image_format="auto" and both files present for one dicom_id, the DICOM wins: it holds the
# original bit depth and the VOI LUT, the JPG is an 8-bit export of it.
_FORMAT_RANK = {"dcm": 0, "jpg": 1}
_LABEL_FILES = {
    "chexpert": ("mimic-cxr-2.0.0-chexpert.csv.gz", "mimic-cxr-2.0.0-chexpert.csv"),
    "negbio": ("mimic-cxr-2.0.0-negbio.csv.gz", "mimic-cxr-2.0.0-negbio.csv"),
}
_METADATA_FILES = ("mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv")
_SPLIT_FILES = ("mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-split.csv")


def _files_dir(root: Path, what: str) -> Path:
    files = root / "files"
    if not root.is_dir():
        raise FileNotFoundError(f"{_SOURCE}: {what} {str(root)!r} does not exist or is not a folder")
    if not files.is_dir():
        raise FileNotFoundError(
            f"{_SOURCE}: no 'files' folder in {what} {str(root)!r}; expected the MIMIC-CXR layout "
            f"files/p10/p10000032/s50414267/<dicom_id>.dcm (or .jpg) and "
            f"files/p10/p10000032/s50414267.txt")
    return files


def _find_csv(root: Path, names: tuple[str, ...], given: str | os.PathLike | None,
              what: str, argument: str) -> Path:
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"{_SOURCE}: {argument}={str(given)!r} does not exist")
        return path
    for name in names:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{_SOURCE}: no {what} in {str(root)!r}: looked for {list(names)}; "
                            f"pass its path as {argument}=")


def index_mimic_tree(files_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index the images and reports of a MIMIC-CXR ``files/`` tree in one walk.

    Every folder is listed once (``os.scandir``); a file is an image when it sits in a study folder
    ``sNNNNNNNN`` inside a patient folder ``pNNNNNNNN`` and ends in ``.dcm`` or ``.jpg``, and a
    report when it is ``sNNNNNNNN.txt`` inside a patient folder. The cost is linear in the number
    of files.

    Returns
    -------
    images : DataFrame
        ``subject_id``, ``study_id`` (int64), ``dicom_id`` (str), ``format`` (``"dcm"``/``"jpg"``),
        ``image`` (path), sorted by subject, study and dicom_id.
    reports : DataFrame
        ``subject_id``, ``study_id``, ``report_path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> study = root / "p10" / "p10000032" / "s50414267"
    >>> study.mkdir(parents=True)
    >>> (study / "abc.jpg").touch()
    >>> _ = (study.parent / "s50414267.txt").write_text("IMPRESSION: Normal.")
    >>> images, reports = index_mimic_tree(root)
    >>> images[["subject_id", "study_id", "dicom_id", "format"]].values.tolist()
    [[10000032, 50414267, 'abc', 'jpg']]
    >>> reports["study_id"].tolist()
    [50414267]
    """
    img_subject, img_study, img_dicom, img_format, img_path = [], [], [], [], []
    rep_subject, rep_study, rep_path = [], [], []
    # (folder path, its patient id if it is a patient folder, its (patient, study) if a study folder)
    stack: list[tuple[str, int | None, tuple[int, int] | None]] = [(os.fspath(files_dir), None, None)]
    while stack:
        folder, patient, study = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if entry.is_dir():
                    if name.startswith("."):
                        continue
                    m = _STUDY_DIR.match(name)
                    if m and patient is not None:
                        stack.append((entry.path, None, (patient, int(m.group(1)))))
                        continue
                    m = _PATIENT_DIR.match(name)
                    stack.append((entry.path, int(m.group(1)) if m else None, None))
                elif study is not None:
                    stem, ext = os.path.splitext(name)
                    fmt = _IMAGE_EXTS.get(ext.lower())
                    if fmt is not None:
                        img_subject.append(study[0])
                        img_study.append(study[1])
                        img_dicom.append(stem)
                        img_format.append(fmt)
                        img_path.append(entry.path)
                elif patient is not None:
                    m = _REPORT_FILE.match(name)
                    if m:
                        rep_subject.append(patient)
                        rep_study.append(int(m.group(1)))
                        rep_path.append(entry.path)
    images = pd.DataFrame({
        "subject_id": np.asarray(img_subject, dtype=np.int64),
        "study_id": np.asarray(img_study, dtype=np.int64),
        "dicom_id": pd.Series(img_dicom, dtype=object),
        "format": pd.Series(img_format, dtype=object),
        "image": pd.Series(img_path, dtype=object),
    }).sort_values(["subject_id", "study_id", "dicom_id", "format"], kind="stable")
    reports = pd.DataFrame({
        "subject_id": np.asarray(rep_subject, dtype=np.int64),
        "study_id": np.asarray(rep_study, dtype=np.int64),
        "report_path": pd.Series(rep_path, dtype=object),
    }).sort_values(["subject_id", "study_id"], kind="stable")
    return images.reset_index(drop=True), reports.reset_index(drop=True)


def _read_text(path: object) -> str:
    if not isinstance(path, str):
        return ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def load_mimic_cxr(
    root: str | os.PathLike,
    *,
    target: str = "pneumonia",
    labels: str = "chexpert",
    uncertain: str = "drop",
    views: tuple[str, ...] | None = ("PA", "AP"),
    section: str = "impression",
    image_format: str = "auto",
    missing_report: str = "error",
    one_per_study: bool = True,
    reports_root: str | os.PathLike | None = None,
    labels_csv: str | os.PathLike | None = None,
    metadata_csv: str | os.PathLike | None = None,
    split_csv: str | os.PathLike | None = None,
    verbose: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Load MIMIC-CXR (DICOM) or MIMIC-CXR-JPG as a study table and a binary target.

    One walk over ``root/files`` indexes every image and report (linear in the archive, unlike
    the public NEURAL code's per-study scan of the file list); the label, metadata and split CSVs
    are then joined with pandas merges.

    Parameters
    ----------
    root : path
        The dataset folder holding ``files/`` and the ``mimic-cxr-2.0.0-*.csv(.gz)`` files.
    target : str, default="pneumonia"
        The observation to predict; any spelling of a CheXpert observation
        (``"pleural-effusion"``, ``"Pleural Effusion"``).
    labels : {"chexpert", "negbio"}, default="chexpert"
        Which label file: ``mimic-cxr-2.0.0-chexpert.csv(.gz)`` or ``mimic-cxr-2.0.0-negbio.csv(.gz)``.
    uncertain : {"drop", "positive", "negative"}, default="drop"
        What an uncertain (-1) label becomes: the study is left out (with a warning naming it),
        counted positive (U-Ones) or negative (U-Zeros). A blank label (not mentioned) is negative.
    views : tuple of str or None, default=("PA", "AP")
        ``ViewPosition`` values of the metadata CSV to keep (frontal views). ``None`` keeps every
        image and does not need the metadata CSV.
    section : {"impression", "findings", "both", "full"}, default="impression"
        Which part of the report becomes ``report``, parsed with
        :func:`neural_sk.text.extract_sections`. A study without that section falls back (impression
        -> findings -> whole text); the ``report_section`` column says what each row holds.
    image_format : {"auto", "dcm", "jpg"}, default="auto"
        Which image files to use; ``"auto"`` takes the DICOM when a dicom_id has both.
    missing_report : {"error", "drop", "empty"}, default="error"
        A study without a report file (or with no text in it): raise naming the studies, leave them
        out with a warning giving their count and ids, or keep them with an empty report.
    one_per_study : bool, default=True
        Keep one image per study: the allowed view that comes first in ``views`` (PA before AP by
        default), ties broken by the metadata CSV's row order (by dicom_id without metadata). With
        ``False`` every allowed image is a row (the study's report and label repeated).
    reports_root : path, optional
        Folder whose ``files/`` holds the ``sNNNNNNNN.txt`` reports, when not under ``root``
        (MIMIC-CXR-JPG ships without reports).
    labels_csv, metadata_csv, split_csv : path, optional
        Explicit paths of the label, metadata and split CSVs. The split CSV is optional: when found,
        its ``split`` column is carried.
    verbose : int, default=0
        Log a summary of what was found and kept (``logging`` at INFO level).

    Returns
    -------
    X : DataFrame
        ``image`` (path, str), ``report`` (str), ``patient_id`` (the subject_id), ``study_id``,
        ``dicom_id``, ``view`` (when ``views`` is used or the metadata is found),
        ``report_section``, ``split`` (when the split CSV is found); one row per study.
    y : ndarray of int64
        1 where ``target`` is positive.

    Raises
    ------
    FileNotFoundError
        ``root``, its ``files/`` folder or a needed CSV is missing (the message names it).
    ValueError
        A bad parameter, a missing report with ``missing_report="error"``, or a label that is not
        1/0/-1/blank (naming the study).

    Notes
    -----
    Studies are never left out silently: a study with no image of an allowed view, with no row in
    the label CSV, with an uncertain label under ``uncertain="drop"`` or with no report under
    ``missing_report="drop"`` is named in a ``UserWarning``.

    MIMIC-CXR has many studies per patient, so split by patient, never by row:
    ``GroupKFold(n_splits=5).split(X, y, groups=X["patient_id"])`` or
    ``GroupShuffleSplit(test_size=0.2).split(X, y, groups=X["patient_id"])``.

    Examples
    --------
    >>> from sklearn.model_selection import GroupShuffleSplit
    >>> X, y = load_mimic_cxr("/data/mimic-cxr-jpg", image_format="jpg",
    ...                       reports_root="/data/mimic-cxr")  # doctest: +SKIP
    >>> train, test = next(GroupShuffleSplit(test_size=0.2, random_state=0).split(
    ...     X, y, groups=X["patient_id"]))  # doctest: +SKIP
    """
    check_choice("labels", labels, tuple(_LABEL_FILES))
    check_choice("image_format", image_format, ("auto", "dcm", "jpg"))
    check_choice("uncertain", uncertain, UNCERTAIN_POLICIES)
    check_choice("section", section, SECTIONS)
    check_choice("missing_report", missing_report, MISSING_REPORT_POLICIES)
    if views is not None:
        views = (views,) if isinstance(views, str) else tuple(views)
        if not views:
            raise ValueError("views must be None or a non-empty tuple of ViewPosition values")
    root = Path(root)
    files_dir = _files_dir(root, "root")
    label_path = _find_csv(root, _LABEL_FILES[labels], labels_csv, f"{labels} label CSV",
                           "labels_csv")

    # 1. One walk of the tree: every image and every report file.
    images, reports = index_mimic_tree(files_dir)
    if reports_root is not None:
        _, reports = index_mimic_tree(_files_dir(Path(reports_root), "reports_root"))
    images = _one_file_per_image(images, image_format, files_dir)
    all_studies = images["study_id"].unique()
    n_images = len(images)
    # 2. Views from the metadata CSV, then one image per study.
    images = _choose_views(images, _metadata_path(root, views, metadata_csv), views,
                           all_studies, one_per_study)
    # 3. Labels.
    images = join_labels(images, _read_labels(label_path, target), "study_id", source=_SOURCE,
                         reason=f"no row in {label_path.name}")
    images, y = keep_labelled(images, uncertain, source=_SOURCE, target=target)
    # 4. Reports: joined by study id, read once per kept study.
    images = images.merge(reports[["study_id", "report_path"]].drop_duplicates("study_id"),
                          on="study_id", how="left")
    paths = images["report_path"].tolist()
    if verbose:
        from tqdm.auto import tqdm

        paths = tqdm(paths, desc="Reading reports")
    texts = [_read_text(p) for p in paths]
    no_file = images["report_path"].isna().to_numpy()
    reason = ("no report file sNNNNNNNN.txt" if no_file.all() else
              "no report text" if not no_file.any() else
              f"no report file sNNNNNNNN.txt ({int(no_file.sum())}) or no text in it")
    X, y = finish_studies(images, y, (*split_report_sections(texts), texts), section=section,
                          missing_report=missing_report, source=_SOURCE, reason=reason,
                          columns={"patient_id": "subject_id", "study_id": "study_id",
                                   "dicom_id": "dicom_id", "view": "view"})
    X = _join_split(X, root, split_csv)
    if verbose:
        logger.info("%s: %d images in %d studies indexed; %d rows kept (%d positive)", _SOURCE,
                    n_images, len(all_studies), len(X), int(y.sum()))
    return X, y


def _one_file_per_image(images: pd.DataFrame, image_format: str,
                        files_dir: Path) -> pd.DataFrame:
    """The images of the asked format, one file per dicom_id (the DICOM first under "auto")."""
    if image_format != "auto":
        images = images[images["format"] == image_format]
    if images.empty:
        exts = {"auto": ".dcm or .jpg", "dcm": ".dcm", "jpg": ".jpg"}[image_format]
        raise FileNotFoundError(
            f"{_SOURCE}: no {exts} images under {str(files_dir)!r} in the layout "
            f"files/pXX/pNNNNNNNN/sNNNNNNNN/<dicom_id>{exts.split()[0]}")
    return (images.assign(_rank=images["format"].map(_FORMAT_RANK))
            .sort_values(["study_id", "dicom_id", "_rank"], kind="stable")
            .drop_duplicates(["study_id", "dicom_id"]).drop(columns="_rank"))


def _metadata_path(root: Path, views: tuple[str, ...] | None,
                   metadata_csv: str | os.PathLike | None) -> Path | None:
    """The metadata CSV: needed for ``views``, else read when given or found."""
    if views is not None:
        return _find_csv(root, _METADATA_FILES, metadata_csv, "metadata CSV (for views=)",
                         "metadata_csv")
    if metadata_csv is not None or any((root / n).is_file() for n in _METADATA_FILES):
        return _find_csv(root, _METADATA_FILES, metadata_csv, "metadata CSV", "metadata_csv")
    return None


def _choose_views(images: pd.DataFrame, meta_path: Path | None, views: tuple[str, ...] | None,
                  all_studies: np.ndarray, one_per_study: bool) -> pd.DataFrame:
    """Join the views, keep the allowed ones (naming the studies left without) and, with
    ``one_per_study``, the study's first image by view preference then metadata order."""
    if meta_path is not None:
        meta = pd.read_csv(meta_path, dtype={"dicom_id": object, "ViewPosition": object})
        absent = [c for c in ("dicom_id", "ViewPosition") if c not in meta.columns]
        if absent:
            raise ValueError(f"{_SOURCE}: {str(meta_path)!r} has no column(s) {absent}; it has "
                             f"{list(meta.columns)}")
        meta = meta[["dicom_id", "ViewPosition"]]
        meta = meta.rename(columns={"ViewPosition": "view"})
        meta["_meta_order"] = np.arange(len(meta))
        meta = meta.drop_duplicates("dicom_id")
        images = images.merge(meta, on="dicom_id", how="left")
    else:
        images["_meta_order"] = 0
    if views is not None:
        allowed = images["view"].isin(views).to_numpy()
        images = images[allowed]
        lost = np.setdiff1d(all_studies, images["study_id"].unique())
        warn_dropped(_SOURCE, lost.tolist(),
                     f"no image with ViewPosition in {list(views)} in the metadata CSV",
                     stacklevel=4)
        rank = {v: i for i, v in enumerate(views)}
        images = images.assign(_view_rank=images["view"].map(rank))
        order = ["study_id", "_view_rank", "_meta_order", "dicom_id"]
    else:
        images = images.assign(_view_rank=0)
        order = ["study_id", "dicom_id"]
    images = images.sort_values(order, kind="stable")
    if one_per_study:
        images = images.drop_duplicates("study_id", keep="first")
    return images.drop(columns=["_meta_order", "_view_rank", "format"])


def _read_labels(label_path: Path, target: str) -> pd.DataFrame:
    """``study_id`` and the target's raw label (``_label``) from the label CSV."""
    label_table = read_table(label_path)
    if "study_id" not in label_table.columns:
        raise ValueError(f"{_SOURCE}: {str(label_path)!r} has no 'study_id' column; it has "
                         f"{list(label_table.columns)}")
    target_col = find_target_column(label_table.columns, target, source=str(label_path))
    return (label_table[["study_id", target_col]]
            .drop_duplicates("study_id").rename(columns={target_col: "_label"}))


def _join_split(X: pd.DataFrame, root: Path, split_csv: str | os.PathLike | None) -> pd.DataFrame:
    """Carry the split CSV's ``split`` column, when the CSV is given or found."""
    if split_csv is None and not any((root / n).is_file() for n in _SPLIT_FILES):
        return X
    splits = pd.read_csv(_find_csv(root, _SPLIT_FILES, split_csv, "split CSV", "split_csv"),
                         dtype={"dicom_id": object})
    if "dicom_id" in splits.columns:
        splits = splits[["dicom_id", "split"]].drop_duplicates("dicom_id")
        return X.merge(splits, on="dicom_id", how="left")
    splits = splits[["study_id", "split"]].drop_duplicates("study_id")
    return X.merge(splits, on="study_id", how="left")
