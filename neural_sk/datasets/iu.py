"""The Indiana University chest X-ray collection (IU X-ray, distributed through Open-i).

Two published forms are read:

* the Open-i download: ``ecgen-radiology/<n>.xml`` reports, each with
  ``<AbstractText Label="FINDINGS">`` / ``"IMPRESSION"`` / ``"INDICATION"`` / ``"COMPARISON"`` and
  one ``<parentImage id="CXR1_1_IM-0001-3001">`` per image, with the PNG images
  (``CXR1_1_IM-0001-3001.png``) under ``images/`` (or ``NLMCXR_png/``);
* the common Kaggle CSV export: ``indiana_reports.csv`` (uid, MeSH, Problems, image, indication,
  comparison, findings, impression) and ``indiana_projections.csv`` (uid, filename, projection
  Frontal/Lateral), with the images (``1_IM-0001-4001.dcm.png``) under ``images/`` (possibly in a
  sub-folder such as ``images/images_normalized/``).

The XML does not say which image is frontal; the projections CSV does, so filtering by view needs
it (an XML download plus the Kaggle ``indiana_projections.csv`` works, the two name images alike).
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
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
    warn_dropped,
)

__all__ = ["load_iu_xray"]

logger = logging.getLogger(__name__)

_SOURCE = "load_iu_xray"
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".dcm")
# Open-i names an image CXR<uid>_<figure>_IM-<a>-<b>, the Kaggle export <uid>_IM-<a>-<b>.dcm.png:
# (uid, IM-a-b) identifies it in both.
_IMAGE_KEY = re.compile(r"(?:cxr)?(\d+)(?:_\d+)?_(im-\d+-\d+)", re.IGNORECASE)
_IMAGE_DIRS = ("images", "NLMCXR_png")


def _image_key(name: str) -> tuple[int, str] | None:
    m = _IMAGE_KEY.search(os.path.basename(name))
    return (int(m.group(1)), m.group(2).upper()) if m else None


def _index_images(images_dir: Path) -> tuple[dict[str, str], dict[tuple[int, str], str]]:
    """One walk of the image folder: file name -> path, and (uid, IM-a-b) -> path."""
    by_name: dict[str, str] = {}
    by_key: dict[tuple[int, str], str] = {}
    for folder, dirs, files in os.walk(images_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(files):
            if not name.lower().endswith(_IMAGE_EXTS) or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            by_name.setdefault(name, path)
            key = _image_key(name)
            if key is not None:
                by_key.setdefault(key, path)
    return by_name, by_key


def _text(node: ET.Element | None) -> str:
    return "".join(node.itertext()).strip() if node is not None else ""


def _read_xml_reports(xml_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reports and their image ids from every ``*.xml`` of the Open-i folder."""
    reports, images = [], []
    for path in sorted(xml_dir.glob("*.xml"), key=lambda p: (len(p.stem), p.stem)):
        try:
            tree = ET.parse(path)
        except ET.ParseError as exc:
            raise ValueError(f"{_SOURCE}: cannot parse the report {str(path)!r}: {exc}") from exc
        doc = tree.getroot()
        node = doc.find(".//IUXRId")
        uid_text = node.get("id") if node is not None else None
        if not uid_text:
            node = doc.find(".//uId")
            uid_text = node.get("id") if node is not None else path.stem
        digits = re.sub(r"\D", "", uid_text or "")
        if not digits:
            raise ValueError(f"{_SOURCE}: no study number in {str(path)!r} (IUXRId / uId)")
        uid = int(digits)
        sections = {(a.get("Label") or "").strip().lower(): _text(a)
                    for a in doc.iter("AbstractText")}
        mesh = ";".join(_text(m) for m in doc.iter("major") if _text(m))
        reports.append({"uid": uid, "indication": sections.get("indication", ""),
                        "comparison": sections.get("comparison", ""),
                        "findings": sections.get("findings", ""),
                        "impression": sections.get("impression", ""), "mesh": mesh})
        for order, img in enumerate(doc.iter("parentImage")):
            if img.get("id"):
                images.append({"uid": uid, "image_id": img.get("id"), "_order": order})
    return pd.DataFrame(reports), pd.DataFrame(images, columns=["uid", "image_id", "_order"])


def _full_text(row: dict) -> str:
    # The report proper is FINDINGS + IMPRESSION; INDICATION and COMPARISON are the request, not
    # the reading (they stay in their own columns), so a study with only those has no report.
    parts = [f"{name.upper()}: {row[name].strip()}" for name in ("findings", "impression")
             if isinstance(row.get(name), str) and row[name].strip()]
    return "\n".join(parts)


def load_iu_xray(
    root: str | os.PathLike,
    *,
    source: str = "auto",
    reports_csv: str = "indiana_reports.csv",
    projections_csv: str = "indiana_projections.csv",
    images_dir: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    label_column: str | None = None,
    target: str = "pneumonia",
    uncertain: str = "drop",
    views: tuple[str, ...] | None = ("Frontal",),
    section: str = "both",
    missing_report: str = "error",
    one_per_study: bool = True,
    verbose: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Load the IU X-ray / Open-i collection as a study table and a binary target.

    Parameters
    ----------
    root : path
        Folder holding ``ecgen-radiology/`` (Open-i XML) or ``indiana_reports.csv`` (Kaggle),
        and the images.
    source : {"auto", "xml", "csv"}, default="auto"
        Which report form to read; ``"auto"`` takes the XML folder when present, else the CSV.
    reports_csv, projections_csv : str, default="indiana_reports.csv", "indiana_projections.csv"
        File names (relative to ``root``) or paths of the Kaggle CSVs. The projections CSV also
        gives the views of an XML download when found.
    images_dir : path, optional
        The image folder; default ``root/images`` (or ``root/NLMCXR_png``), walked once, sub-folders
        included.
    labels : path, optional
        A CSV with ``uid`` and label columns (for example the CheXpert labeler's output,
        ``chexpert_<observation>``), joined by uid. Without it, a label column of the reports CSV
        named by ``label_column`` is used if given, else :func:`neural_sk.text.label_reports` labels
        the whole report (findings and impression).
    label_column : str, optional
        The exact label column, when the target's name is ambiguous (``chexpert_pneumonia`` and
        ``negbio_pneumonia``).
    target : str, default="pneumonia"
        The observation to predict.
    uncertain : {"drop", "positive", "negative"}, default="drop"
        What an uncertain (-1) label becomes; dropped studies are named in a warning. A label that
        is blank (not mentioned) is negative.
    views : tuple of str or None, default=("Frontal",)
        Projections to keep (``Frontal``, ``Lateral``); needs the projections CSV. ``None`` keeps
        every image.
    section : {"impression", "findings", "both", "full"}, default="both"
        What becomes ``report``: IU reports are short and many lack FINDINGS or IMPRESSION, so both
        by default; a missing section falls back to the other (``report_section`` says which).
        ``"full"`` is findings and impression with their headers (the indication stays in its own
        column).
    missing_report : {"error", "drop", "empty"}, default="error"
        A study with neither findings nor impression.
    one_per_study : bool, default=True
        One image per study: the first image of an allowed view, in the projections CSV's order
        (the XML's order without it). ``False`` keeps every allowed image.
    verbose : int, default=0
        Log a summary (``logging`` at INFO level).

    Returns
    -------
    X : DataFrame
        ``image`` (path, str), ``report``, ``patient_id``, ``study_id`` (both the uid: the
        collection links no two studies to one patient), ``filename``, ``view`` (when known),
        ``indication``, ``report_section``.
    y : ndarray of int64

    Notes
    -----
    Split by ``patient_id`` with ``GroupKFold`` / ``GroupShuffleSplit`` as for the other loaders;
    here it equals the study, so the groups only matter with ``one_per_study=False`` (both images
    of a study stay on the same side). Studies without an image, without an allowed view, with an
    uncertain label under ``uncertain="drop"`` or without text under ``missing_report="drop"`` are
    named in a ``UserWarning``.

    Examples
    --------
    >>> X, y = load_iu_xray("/data/iu_xray", labels="/data/iu_labels.csv",
    ...                     label_column="chexpert_pneumonia")  # doctest: +SKIP
    >>> X.groupby("view").size()  # doctest: +SKIP
    """
    check_choice("source", source, ("auto", "xml", "csv"))
    check_choice("uncertain", uncertain, UNCERTAIN_POLICIES)
    check_choice("section", section, SECTIONS)
    check_choice("missing_report", missing_report, MISSING_REPORT_POLICIES)
    if views is not None:
        views = (views,) if isinstance(views, str) else tuple(views)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{_SOURCE}: root {str(root)!r} does not exist or is not a folder")
    xml_dir = root / "ecgen-radiology"
    csv_path = Path(reports_csv) if Path(reports_csv).is_absolute() else root / reports_csv
    proj_path = Path(projections_csv) if Path(projections_csv).is_absolute() else root / projections_csv
    source = _check_source(source, xml_dir, csv_path)
    images_dir = _find_images_dir(root, images_dir)
    by_name, by_key = _index_images(images_dir)

    # Reports (one row per uid) and the images of each study (one row per image), with views.
    reports, study_images = _read_reports(source, xml_dir, csv_path)
    projections = _read_projections(proj_path, source, views)
    study_images = _with_views(study_images, projections, source)
    rows = _studies_with_images(reports, study_images, by_name, by_key, images_dir, views,
                                one_per_study)

    rows = _with_labels(rows, labels, label_column, target, csv_path)
    rows, y = keep_labelled(rows, uncertain, source=_SOURCE, target=target, id_column="uid")
    sections = (rows["findings"].tolist(), rows["impression"].tolist(), rows["_full"].tolist())
    X, y = finish_studies(rows, y, sections, section=section, missing_report=missing_report,
                          source=_SOURCE, reason="neither findings nor impression",
                          columns={"patient_id": "uid", "study_id": "uid", "filename": "filename",
                                   "view": "view", "indication": "indication"},
                          id_column="uid")
    if verbose:
        logger.info("%s: %d reports, %d images indexed; %d rows kept (%d positive)", _SOURCE,
                    len(reports), len(by_name), len(X), int(y.sum()))
    return X, y


def _check_source(source: str, xml_dir: Path, csv_path: Path) -> str:
    """The report form to read ("xml" or "csv"), checking that it exists."""
    if source == "auto":
        source = "xml" if xml_dir.is_dir() else "csv" if csv_path.is_file() else None
        if source is None:
            raise FileNotFoundError(
                f"{_SOURCE}: neither the Open-i reports folder {str(xml_dir)!r} nor the reports "
                f"CSV {str(csv_path)!r} exists")
    if source == "xml" and not xml_dir.is_dir():
        raise FileNotFoundError(f"{_SOURCE}: the Open-i reports folder {str(xml_dir)!r} does not exist")
    if source == "csv" and not csv_path.is_file():
        raise FileNotFoundError(f"{_SOURCE}: the reports CSV {str(csv_path)!r} does not exist")
    return source


def _find_images_dir(root: Path, images_dir: str | os.PathLike | None) -> Path:
    if images_dir is None:
        found = [root / d for d in _IMAGE_DIRS if (root / d).is_dir()]
        if not found:
            raise FileNotFoundError(f"{_SOURCE}: no image folder in {str(root)!r}: looked for "
                                    f"{list(_IMAGE_DIRS)}; pass images_dir=")
        images_dir = found[0]
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{_SOURCE}: images_dir {str(images_dir)!r} does not exist")
    return images_dir


def _read_reports(source: str, xml_dir: Path,
                  csv_path: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One row per uid; for the XML form also its images (the CSV form lists them in the
    projections CSV)."""
    if source == "xml":
        reports, study_images = _read_xml_reports(xml_dir)
        if reports.empty:
            raise FileNotFoundError(f"{_SOURCE}: no *.xml report in {str(xml_dir)!r}")
        study_images["filename"] = study_images["image_id"]
    else:
        reports = pd.read_csv(csv_path, low_memory=False)
        if "uid" not in reports.columns:
            raise ValueError(f"{_SOURCE}: {str(csv_path)!r} has no 'uid' column; it has "
                             f"{list(reports.columns)}")
        reports.columns = [c if c in ("MeSH", "Problems") else c.lower() for c in reports.columns]
        study_images = None
    reports = reports.drop_duplicates("uid").reset_index(drop=True)
    reports["uid"] = reports["uid"].astype(np.int64)
    return reports, study_images


def _read_projections(proj_path: Path, source: str,
                      views: tuple[str, ...] | None) -> pd.DataFrame | None:
    """The projections CSV, or None where neither the form nor ``views`` needs it."""
    if proj_path.is_file():
        projections = pd.read_csv(proj_path)
        missing_cols = {"uid", "filename", "projection"} - set(projections.columns)
        if missing_cols:
            raise ValueError(f"{_SOURCE}: {str(proj_path)!r} lacks column(s) "
                             f"{sorted(missing_cols)}; it has {list(projections.columns)}")
        projections["uid"] = projections["uid"].astype(np.int64)
        return projections
    if source == "csv":
        raise FileNotFoundError(f"{_SOURCE}: the projections CSV {str(proj_path)!r} does not "
                                f"exist; the CSV export lists its images there")
    if views is not None:
        raise FileNotFoundError(
            f"{_SOURCE}: views={list(views)} needs the projections CSV {str(proj_path)!r} (the "
            f"Open-i XML does not say which image is frontal); pass projections_csv= or views=None")
    return None


def _with_views(study_images: pd.DataFrame | None, projections: pd.DataFrame | None,
                source: str) -> pd.DataFrame:
    """The images of each study with their ``view`` (when known) and listing order."""
    if source == "csv":
        study_images = projections.rename(columns={"projection": "view"})[["uid", "filename", "view"]]
        return study_images.assign(_order=np.arange(len(study_images)))
    if projections is not None:
        # Open-i and Kaggle name the same image differently; (uid, IM-a-b) matches them.
        proj = projections.assign(_key=[_image_key(f) for f in projections["filename"]])
        view_of = dict(zip(proj["_key"], proj["projection"], strict=True))
        order_of = {k: i for i, k in enumerate(proj["_key"])}
        keys = [_image_key(i) for i in study_images["image_id"]]
        study_images["view"] = [view_of.get(k) for k in keys]
        study_images["_order"] = [order_of.get(k, len(order_of) + i) for i, k in enumerate(keys)]
    return study_images


def _studies_with_images(reports: pd.DataFrame, study_images: pd.DataFrame, by_name: dict,
                         by_key: dict, images_dir: Path, views: tuple[str, ...] | None,
                         one_per_study: bool) -> pd.DataFrame:
    """The reports joined to their found images of an allowed view (one per study with
    ``one_per_study``); images and studies left out are named in warnings."""

    def resolve(name: str) -> str | None:
        base = os.path.basename(str(name))
        hit = by_name.get(base) or by_name.get(base + ".png")
        if hit is None and (key := _image_key(base)) is not None:
            hit = by_key.get(key)
        return hit

    study_images = study_images.assign(image=[resolve(f) for f in study_images["filename"]])
    listed_missing = study_images["image"].isna()
    if listed_missing.any():
        warn_dropped(_SOURCE, study_images.loc[listed_missing, "filename"].tolist(),
                     f"listed but not found under {str(images_dir)!r}", what="images",
                     stacklevel=4)
    study_images = study_images[~listed_missing]

    # Every report is a study; name those that end up without an image.
    all_uids = reports["uid"].to_numpy()
    with_image = study_images["uid"].unique()
    warn_dropped(_SOURCE, np.setdiff1d(all_uids, with_image).tolist(), "no image found",
                 stacklevel=4)
    if views is not None:
        study_images = study_images[study_images["view"].isin(views)]
        warn_dropped(_SOURCE, np.setdiff1d(with_image, study_images["uid"].unique()).tolist(),
                     f"no image with projection in {list(views)}", stacklevel=4)
    study_images = study_images.sort_values(["uid", "_order"], kind="stable")
    if one_per_study:
        study_images = study_images.drop_duplicates("uid", keep="first")
    return study_images.merge(reports, on="uid", how="inner", suffixes=("", "_report"))


def _with_labels(rows: pd.DataFrame, labels: str | os.PathLike | None, label_column: str | None,
                 target: str, csv_path: Path) -> pd.DataFrame:
    """Add the raw label (``_label``) and the report proper (``_full``) to each study.

    The label comes from a given CSV (joined by uid; studies without a row are named and left
    out), a column of the reports, or our own report labeler.
    """
    full = [_full_text(r) for r in rows.to_dict("records")]
    if labels is not None:
        label_path = Path(labels)
        if not label_path.is_file():
            raise FileNotFoundError(f"{_SOURCE}: labels={str(labels)!r} does not exist")
        table = read_table(label_path)
        if "uid" not in table.columns:
            raise ValueError(f"{_SOURCE}: the labels file {str(label_path)!r} has no 'uid' "
                             f"column; it has {list(table.columns)}")
        col = find_target_column(table.columns, target, source=str(label_path), column=label_column)
        table = (table[["uid", col]].assign(uid=lambda d: d["uid"].astype(np.int64))
                 .drop_duplicates("uid").rename(columns={col: "_label"}))
        return join_labels(rows.assign(_full=full), table, "uid", source=_SOURCE,
                           reason=f"no row in {label_path.name}", id_column="uid")
    if label_column is not None:
        col = find_target_column(rows.columns, target, source=str(csv_path), column=label_column)
        return rows.assign(_label=rows[col].to_numpy(), _full=full)
    # Imported here: only this branch needs the text package's labeler.
    from neural_sk.text import label_reports

    found = label_reports(full)
    col = find_target_column(found.columns, target, source="label_reports output")
    return rows.assign(_label=np.asarray(found[col].to_numpy(), dtype=float), _full=full)
