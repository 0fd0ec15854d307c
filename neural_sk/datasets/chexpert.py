"""CheXpert Plus (Stanford AIMI, 2024): images, report sections and CheXbert labels.

The files this loader assumes (names as released; each can be passed explicitly)::

    root/
      df_chexpert_plus_240401.csv        one row per image: path_to_image, path_to_dcm,
                                         frontal_lateral (Frontal/Lateral), ap_pa, deid_patient_id,
                                         report, section_findings, section_impression, ..., split
      chexbert_labels/impression_fixed.json
                                         CheXbert labels, JSON lines: path_to_image and the 14
                                         observations (1.0 / 0.0 / -1.0 / null); findings_fixed.json
                                         and report_fixed.json label the other sections
      <path_to_image>                    e.g. train/patient42142/study5/view1_frontal.jpg, or the
                                         PNG release of it (same path with .png, or under PNG/)
      <path_to_dcm>                      the DICOM release (under root or root/DICOM/)
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ._labels import (
    MISSING_REPORT_POLICIES,
    SECTIONS,
    UNCERTAIN_POLICIES,
    check_choice,
    finish_studies,
    find_target_column,
    format_ids,
    join_labels,
    keep_labelled,
    read_table,
    warn_dropped,
)

__all__ = ["load_chexpert_plus"]

logger = logging.getLogger(__name__)

_SOURCE = "load_chexpert_plus"
_PATIENT = re.compile(r"(patient\d+)")


def _candidates(rel: str, dcm: object, image_format: str) -> list[str]:
    """Relative paths where one image may be, in the order they are tried."""
    rel = rel.strip().lstrip("/")
    out = []
    stem = os.path.splitext(rel)[0]
    if image_format in ("auto", "jpg", "png"):
        if image_format == "auto":
            out += [rel, stem + ".png", "PNG/" + stem + ".png", "PNG/" + rel]
        elif image_format == "png":
            out += [stem + ".png", "PNG/" + stem + ".png"]
        else:
            out += [stem + ".jpg", "JPG/" + stem + ".jpg"]
    if image_format in ("auto", "dcm") and isinstance(dcm, str) and dcm.strip():
        dcm = dcm.strip().lstrip("/")
        out += [dcm, "DICOM/" + dcm]
    return out


def load_chexpert_plus(
    root: str | os.PathLike,
    *,
    csv: str | os.PathLike = "df_chexpert_plus_240401.csv",
    labels_file: str | os.PathLike | None = "chexbert_labels/impression_fixed.json",
    label_column: str | None = None,
    target: str = "pneumonia",
    uncertain: str = "drop",
    views: tuple[str, ...] | None = ("Frontal",),
    section: str = "impression",
    image_format: str = "auto",
    image_root: str | os.PathLike | None = None,
    missing_report: str = "error",
    missing_image: str = "error",
    one_per_study: bool = True,
    verbose: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Load CheXpert Plus as a study table and a binary target.

    Parameters
    ----------
    root : path
        The dataset folder.
    csv : path, default="df_chexpert_plus_240401.csv"
        The metadata/report CSV, relative to ``root`` or absolute.
    labels_file : path or None, default="chexbert_labels/impression_fixed.json"
        The CheXbert label file (JSON lines or CSV keyed by ``path_to_image``), relative to
        ``root`` or absolute; ``findings_fixed.json`` / ``report_fixed.json`` label the other
        sections. ``None`` reads the target from a column of ``csv`` itself.
    label_column : str, optional
        The exact label column, when the name of ``target`` is ambiguous.
    target : str, default="pneumonia"
        The observation to predict (any spelling of a CheXpert observation).
    uncertain : {"drop", "positive", "negative"}, default="drop"
        What an uncertain (-1) label becomes; dropped studies are named in a warning. A blank label
        (not mentioned) is negative.
    views : tuple of str or None, default=("Frontal",)
        Values of ``frontal_lateral`` to keep; ``None`` keeps every image.
    section : {"impression", "findings", "both", "full"}, default="impression"
        Which of ``section_impression`` / ``section_findings`` / ``report`` becomes ``report``,
        falling back (impression -> findings -> whole report) where a study lacks it;
        ``report_section`` records the choice per row.
    image_format : {"auto", "png", "jpg", "dcm"}, default="auto"
        ``"auto"`` tries ``path_to_image`` as written, the same path with ``.png``, under ``PNG/``,
        then ``path_to_dcm`` (as written or under ``DICOM/``); the first file that exists wins.
    image_root : path, optional
        Folder the image paths are relative to, when not ``root``.
    missing_report : {"error", "drop", "empty"}, default="error"
        A study with no text in the chosen section nor in the whole report: raise naming the
        studies, leave them out with a warning, or keep an empty report.
    missing_image : {"error", "drop"}, default="error"
        An image row of the CSV whose file is not found (a partial download): raise naming the
        rows, or leave them out with a warning.
    one_per_study : bool, default=True
        One image per study: the first allowed-view row of the study in CSV order
        (``view1_frontal`` before ``view2_frontal``). ``False`` keeps every allowed image.
    verbose : int, default=0
        Log a summary (``logging`` at INFO level).

    Returns
    -------
    X : DataFrame
        ``image`` (path, str), ``report``, ``patient_id`` (``deid_patient_id``), ``study_id``
        (the image's folder, e.g. ``"train/patient42142/study5"``), ``path_to_image``, ``view``,
        ``report_section`` and, when the CSV has them, ``ap_pa``, ``split``, ``age``, ``sex``.
    y : ndarray of int64

    Notes
    -----
    Split by patient, never by row: ``GroupKFold(n_splits=5).split(X, y, groups=X["patient_id"])``
    or ``GroupShuffleSplit(test_size=0.2).split(X, y, groups=X["patient_id"])``. Every study left
    out (no allowed view, no label row, uncertain label, missing report or image) is named in a
    ``UserWarning``.

    Examples
    --------
    >>> from sklearn.model_selection import GroupKFold
    >>> X, y = load_chexpert_plus("/data/chexpert-plus")  # doctest: +SKIP
    >>> folds = GroupKFold(n_splits=5).split(X, y, groups=X["patient_id"])  # doctest: +SKIP
    """
    check_choice("uncertain", uncertain, UNCERTAIN_POLICIES)
    check_choice("section", section, SECTIONS)
    check_choice("image_format", image_format, ("auto", "png", "jpg", "dcm"))
    check_choice("missing_report", missing_report, MISSING_REPORT_POLICIES)
    check_choice("missing_image", missing_image, ("error", "drop"))
    if views is not None:
        views = (views,) if isinstance(views, str) else tuple(views)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{_SOURCE}: root {str(root)!r} does not exist or is not a folder")
    csv_path = Path(csv) if Path(csv).is_absolute() else root / csv
    if not csv_path.is_file():
        raise FileNotFoundError(f"{_SOURCE}: the CheXpert Plus CSV {str(csv_path)!r} does not "
                                f"exist; pass its path as csv=")
    label_path = None
    if labels_file is not None:
        label_path = Path(labels_file) if Path(labels_file).is_absolute() else root / labels_file
        if not label_path.is_file():
            raise FileNotFoundError(
                f"{_SOURCE}: the label file {str(label_path)!r} does not exist; CheXpert Plus "
                f"ships CheXbert labels as chexbert_labels/impression_fixed.json (also "
                f"findings_fixed.json, report_fixed.json): pass its path as labels_file=")
    table = _read_studies(csv_path, views)
    all_studies = table["study_id"].unique()

    # Views, then one image per study (CSV order: view1 before view2).
    if views is not None:
        table = table[table["frontal_lateral"].isin(views)]
        lost = np.setdiff1d(all_studies, table["study_id"].unique())
        warn_dropped(_SOURCE, lost.tolist(), f"no image with frontal_lateral in {list(views)}")
    base = Path(image_root) if image_root is not None else root
    table = _resolve_images(table, base, image_format, missing_image, csv_path.name)
    if one_per_study:
        table = table.drop_duplicates("study_id", keep="first")

    # Labels: a column of the CSV, or a label file joined by path_to_image.
    if label_path is None:
        target_col = find_target_column(table.columns, target, source=str(csv_path),
                                        column=label_column)
        table = table.assign(_label=table[target_col])
    else:
        table = join_labels(table, _read_labels(label_path, target, label_column),
                            "path_to_image", source=_SOURCE,
                            reason=f"no row for its path_to_image in {label_path.name}")
    table, y = keep_labelled(table, uncertain, source=_SOURCE, target=target)

    def column(name: str) -> list:
        return table[name].tolist() if name in table.columns else [None] * len(table)

    sections = (column("section_findings"), column("section_impression"), column("report"))
    X, y = finish_studies(table, y, sections, section=section, missing_report=missing_report,
                          source=_SOURCE, reason="no report text",
                          columns={"patient_id": "patient_id", "study_id": "study_id",
                                   "path_to_image": "path_to_image", "view": "frontal_lateral",
                                   **{extra: extra for extra in ("ap_pa", "split", "age", "sex")}})
    if verbose:
        logger.info("%s: %d studies in %s; %d rows kept (%d positive)", _SOURCE,
                    len(all_studies), csv_path.name, len(X), int(y.sum()))
    return X, y


def _read_studies(csv_path: Path, views: tuple[str, ...] | None) -> pd.DataFrame:
    """The CSV with its study (the image's folder) and patient of each image."""
    table = pd.read_csv(csv_path, low_memory=False)
    need = ["path_to_image"] + (["frontal_lateral"] if views is not None else [])
    missing_cols = [c for c in need if c not in table.columns]
    if missing_cols:
        raise ValueError(f"{_SOURCE}: {str(csv_path)!r} has no column(s) {missing_cols}; it has "
                         f"{list(table.columns)}")
    table["path_to_image"] = table["path_to_image"].astype(str)
    table["study_id"] = [str(PurePosixPath(p.strip().lstrip("/")).parent)
                         for p in table["path_to_image"]]
    if "deid_patient_id" in table.columns:
        table["patient_id"] = table["deid_patient_id"]
    else:
        # Older exports lack the column; the patient folder in the path is the same id.
        found = table["path_to_image"].str.extract(_PATIENT, expand=False)
        table["patient_id"] = found.fillna(table["study_id"])
    return table


def _resolve_images(table: pd.DataFrame, base: Path, image_format: str, missing_image: str,
                    csv_name: str) -> pd.DataFrame:
    """Each row's image: the first candidate file that exists (one stat per candidate per
    row: linear); rows without one raise or are dropped with warnings, per ``missing_image``."""
    dcm_col = table["path_to_dcm"] if "path_to_dcm" in table.columns else [None] * len(table)
    resolved = []
    for rel, dcm in zip(table["path_to_image"], dcm_col, strict=True):
        hit = next((str(base / c) for c in _candidates(rel, dcm, image_format)
                    if os.path.isfile(base / c)), None)
        resolved.append(hit)
    table = table.assign(image=resolved)
    no_image = table["image"].isna().to_numpy()
    if no_image.any():
        rows = table.loc[no_image, "path_to_image"].tolist()
        if missing_image == "error":
            raise FileNotFoundError(
                f"{_SOURCE}: {len(rows)} images listed in {csv_name} are not under "
                f"{str(base)!r} (image_format={image_format!r}): {format_ids(rows)}; pass "
                f"missing_image='drop' to leave them out, or image_root= / image_format=")
        warn_dropped(_SOURCE, rows, "image file not found, missing_image='drop'", what="images",
                     stacklevel=4)
        before = table["study_id"].unique()
        table = table[~no_image]
        warn_dropped(_SOURCE, np.setdiff1d(before, table["study_id"].unique()).tolist(),
                     "none of its images was found", stacklevel=4)
    return table


def _read_labels(label_path: Path, target: str, label_column: str | None) -> pd.DataFrame:
    """``path_to_image`` and the target's raw label (``_label``) from a CheXbert label file."""
    labels = read_table(label_path)
    if "path_to_image" not in labels.columns:
        raise ValueError(f"{_SOURCE}: {str(label_path)!r} has no 'path_to_image' column; it "
                         f"has {list(labels.columns)}")
    target_col = find_target_column(labels.columns, target, source=str(label_path),
                                    column=label_column)
    return (labels[["path_to_image", target_col]]
            .assign(path_to_image=lambda d: d["path_to_image"].astype(str))
            .drop_duplicates("path_to_image").rename(columns={target_col: "_label"}))
