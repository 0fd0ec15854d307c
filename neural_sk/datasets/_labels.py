"""Shared policy for the real-data loaders: target columns, uncertain labels, report sections.

Every loader (MIMIC-CXR, CheXpert Plus, IU/Open-i, image folders) goes through these helpers, so a
label or a section is read the same way whatever the source, and every study a loader leaves out is
named in a warning (the team rule: never drop a study silently).

Label convention of the CheXpert / NegBio / CheXbert label files:
``1.0`` positive, ``0.0`` negative, ``-1.0`` uncertain, blank (NaN) not mentioned.
A study whose report does not mention the target counts as negative (0), as in CheXpert's own
training recipe; only ``-1`` goes through the ``uncertain`` policy.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..text.lexicon import OBSERVATIONS, normalize_observation

UNCERTAIN_POLICIES = ("drop", "positive", "negative")
SECTIONS = ("impression", "findings", "both", "full")
MISSING_REPORT_POLICIES = ("error", "drop", "empty")

# How many ids a warning or an error spells out before it says "and N more".
_MAX_IDS_SHOWN = 20


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """Raise a ValueError naming the parameter and its allowed values if ``value`` is not one.

    Examples
    --------
    >>> check_choice("uncertain", "drop", UNCERTAIN_POLICIES)
    >>> check_choice("uncertain", "maybe", UNCERTAIN_POLICIES)
    Traceback (most recent call last):
    ...
    ValueError: uncertain must be one of ['drop', 'positive', 'negative'], got 'maybe'
    """
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def format_ids(ids: Iterable[object]) -> str:
    """Spell out ids for a message: the first 20, then how many more.

    Examples
    --------
    >>> format_ids([3, 1, 2])
    '[3, 1, 2]'
    >>> format_ids(range(25))
    '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] and 5 more'
    """
    ids = [i.item() if isinstance(i, np.generic) else i for i in ids]
    shown = ids[:_MAX_IDS_SHOWN]
    more = len(ids) - len(shown)
    return f"{shown!r}" + (f" and {more} more" if more else "")


def warn_dropped(source: str, ids: Sequence[object], reason: str, *, what: str = "studies",
                 stacklevel: int = 3) -> None:
    """Warn that ``ids`` were left out of a loader's output, with their count and the reason.

    Nothing happens for an empty ``ids``.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warn_dropped("load_x", [7, 8], "no report file")
    >>> str(w[0].message)
    'load_x: dropped 2 studies (no report file): [7, 8]'
    """
    ids = list(ids)
    if not ids:
        return
    warnings.warn(f"{source}: dropped {len(ids)} {what} ({reason}): {format_ids(ids)}",
                  UserWarning, stacklevel=stacklevel)


def find_target_column(columns: Iterable[object], target: str, *, source: str,
                       column: str | None = None) -> str:
    """Return the column of ``columns`` that holds the ``target`` observation.

    An exact ``column`` wins. Otherwise a column whose normalised name equals the normalised target
    (``"Pneumonia"`` for ``"pneumonia"``); failing that, one that ends with it after a prefix
    (``"chexpert_pneumonia"``). Two prefixed candidates are ambiguous and raise, naming them.

    Examples
    --------
    >>> find_target_column(["study_id", "Pneumonia", "Edema"], "pneumonia", source="labels.csv")
    'Pneumonia'
    >>> find_target_column(["uid", "chexpert_pleural-effusion"], "pleural effusion", source="x")
    'chexpert_pleural-effusion'
    """
    columns = [str(c) for c in columns]
    if column is not None:
        if column not in columns:
            raise ValueError(f"label column {column!r} is not in {source}; it has {columns}")
        return column
    want = normalize_observation(target)
    exact = [c for c in columns if normalize_observation(c) == want]
    if len(exact) == 1:
        return exact[0]
    suffixed = [c for c in columns if _observation_suffix(c, want) == want]
    if len(exact) > 1 or len(suffixed) > 1:
        raise ValueError(f"target {target!r} matches several columns of {source}: "
                         f"{exact or suffixed}; pass the one to use as label_column")
    if len(suffixed) == 1:
        return suffixed[0]
    known = [c for c in columns
             if re.split(r"[_.]", normalize_observation(c))[-1] in OBSERVATIONS]
    raise ValueError(f"target {target!r} is not a column of {source}; its observation columns "
                     f"are {known}" if known else
                     f"target {target!r} is not a column of {source}; it has {columns}")


def _observation_suffix(column: str, want: str) -> str | None:
    """The observation a prefixed column name ends with (``chexpert_pleural_effusion``).

    The longest known observation wins, so ``"effusion"`` never matches a pleural-effusion column.
    """
    key = normalize_observation(column)
    ends = [o for o in (*OBSERVATIONS, want) if key.endswith("-" + o) or key.endswith("." + o)]
    return max(ends, key=len) if ends else None


def apply_uncertain_policy(values: object, uncertain: str, *, ids: Sequence[object],
                           source: str, target: str,
                           stacklevel: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw label values into an int target and a mask of the studies to keep.

    ``1`` -> 1, ``0`` and blank (not mentioned) -> 0, ``-1`` (uncertain) -> dropped
    (``"drop"``, with a warning naming the studies), 1 (``"positive"``, the U-Ones policy) or 0
    (``"negative"``, U-Zeros). Any other value raises, naming the study. ``stacklevel`` points
    the warning at the loader's caller.

    Returns
    -------
    y : ndarray of int64, shape (n_kept,)
    keep : ndarray of bool, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> y, keep = apply_uncertain_policy([1.0, np.nan, -1.0, 0.0], "positive", ids=[1, 2, 3, 4],
    ...                                  source="demo", target="pneumonia")
    >>> y.tolist(), keep.tolist()
    ([1, 0, 1, 0], [True, True, True, True])
    """
    check_choice("uncertain", uncertain, UNCERTAIN_POLICIES)
    v = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    raw = pd.Series(values, dtype=object).to_numpy()
    ids = np.asarray(list(ids), dtype=object)
    # A value that is neither blank nor one of 1/0/-1 is a broken label file, not a study to guess.
    blank = pd.isna(raw) | np.array([isinstance(r, str) and not r.strip() for r in raw], dtype=bool)
    bad = ~blank & ~np.isin(v, (1.0, 0.0, -1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{source}: label {target!r} of study {ids[i]!r} is {raw[i]!r}; expected "
                         f"1, 0, -1 or blank ({int(bad.sum())} such studies: "
                         f"{format_ids(ids[bad])})")
    v = np.where(blank, 0.0, v)
    uncertain_mask = v == -1.0
    if uncertain == "positive":
        v[uncertain_mask] = 1.0
    elif uncertain == "negative":
        v[uncertain_mask] = 0.0
    keep = ~uncertain_mask if uncertain == "drop" else np.ones(len(v), dtype=bool)
    if uncertain == "drop":
        warn_dropped(source, ids[uncertain_mask],
                     f"{target!r} is uncertain (-1) and uncertain='drop'", stacklevel=stacklevel)
    return v[keep].astype(np.int64), keep


def compose_reports(findings: Sequence[object], impression: Sequence[object],
                    full: Sequence[object], section: str) -> tuple[list[str], list[str]]:
    """Pick the report text for each study from its sections, with a recorded fallback.

    ``section="impression"`` takes the IMPRESSION, falling back to the FINDINGS and then to the
    whole report when a study has none (many MIMIC-CXR reports have no IMPRESSION);
    ``"findings"`` the reverse; ``"both"`` joins them as ``"FINDINGS: ...\\nIMPRESSION: ..."``
    (either alone when the other is absent, else the whole report); ``"full"`` the whole text.
    What was used for each study is returned beside it (``"impression"``, ``"findings"``,
    ``"both"``, ``"full"`` or ``"none"`` for no text at all), so a fallback is visible in the
    loader's ``report_section`` column rather than silent.

    Examples
    --------
    >>> compose_reports(["Clear lungs.", None], ["Normal.", None], ["x", "Whole text."], "impression")
    (['Normal.', 'Whole text.'], ['impression', 'full'])
    """
    check_choice("section", section, SECTIONS)

    def clean(t: object) -> str:
        return t.strip() if isinstance(t, str) else ""

    reports, used = [], []
    for f, i, w in zip(findings, impression, full, strict=True):
        f, i, w = clean(f), clean(i), clean(w)
        if section == "full":
            options = [(w, "full")]
        elif section == "impression":
            options = [(i, "impression"), (f, "findings"), (w, "full")]
        elif section == "findings":
            options = [(f, "findings"), (i, "impression"), (w, "full")]
        else:
            both = f"FINDINGS: {f}\nIMPRESSION: {i}" if f and i else ""
            options = [(both, "both"), (f, "findings"), (i, "impression"), (w, "full")]
        text, how = next(((t, h) for t, h in options if t), ("", "none"))
        reports.append(text)
        used.append(how)
    return reports, used


def get_section(sections: object, name: str) -> str | None:
    """Read one section from what ``neural_sk.text.extract_sections`` returned.

    Accepts a mapping with any capitalisation of the key (``"IMPRESSION"``, ``"impression"``) or
    an object with the section as an attribute.

    Examples
    --------
    >>> get_section({"FINDINGS": "Clear.", "IMPRESSION": "Normal."}, "impression")
    'Normal.'
    >>> get_section({"findings": "Clear."}, "impression") is None
    True
    """
    if sections is None:
        return None
    if hasattr(sections, "items"):
        for key, value in sections.items():
            if str(key).strip().lower() == name:
                return value if isinstance(value, str) else None
        return None
    value = getattr(sections, name, None)
    return value if isinstance(value, str) else None


def split_report_sections(texts: Sequence[str]) -> tuple[list[str | None], list[str | None]]:
    """Findings and impression of each report text, through ``neural_sk.text.extract_sections``.

    Examples
    --------
    >>> f, i = split_report_sections(["FINDINGS: Clear lungs.\\nIMPRESSION: Normal."])
    >>> i[0].strip()
    'Normal.'
    """
    # Imported here: the text package is heavier than the loaders and unused by image folders.
    from neural_sk.text.sections import extract_sections

    findings, impression = [], []
    for text in texts:
        secs = extract_sections(text) if text else None
        findings.append(get_section(secs, "findings"))
        impression.append(get_section(secs, "impression"))
    return findings, impression


def apply_missing_report_policy(reports: list[str], ids: Sequence[object], policy: str, *,
                                source: str, reason: str = "no report text",
                                stacklevel: int = 4) -> np.ndarray:
    """Return the mask of studies to keep given which have an empty report.

    ``"error"`` raises naming the studies, ``"drop"`` warns with their count and ids,
    ``"empty"`` keeps them with ``""`` as report.

    Examples
    --------
    >>> apply_missing_report_policy(["a", ""], [1, 2], "empty", source="demo").tolist()
    [True, True]
    """
    check_choice("missing_report", policy, MISSING_REPORT_POLICIES)
    ids = np.asarray(list(ids), dtype=object)
    missing = np.array([not r for r in reports], dtype=bool)
    if missing.any():
        if policy == "error":
            raise ValueError(f"{source}: {int(missing.sum())} studies have {reason}: "
                             f"{format_ids(ids[missing])}; pass missing_report='drop' to leave "
                             f"them out or 'empty' to keep them with an empty report")
        if policy == "drop":
            warn_dropped(source, ids[missing], f"{reason}, missing_report='drop'",
                         stacklevel=stacklevel)
            return ~missing
    return np.ones(len(reports), dtype=bool)


def join_labels(table: pd.DataFrame, labels: pd.DataFrame, on: str, *, source: str,
                reason: str, id_column: str = "study_id") -> pd.DataFrame:
    """Join a label table (the target in its ``_label`` column) to the studies.

    A left merge keeps every study, so the ones without a label row are named in a warning
    (with ``reason``) before they are left out.

    Examples
    --------
    >>> import warnings
    >>> import pandas as pd
    >>> studies = pd.DataFrame({"study_id": [1, 2]})
    >>> labels = pd.DataFrame({"study_id": [1], "_label": [1.0]})
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     kept = join_labels(studies, labels, "study_id", source="demo", reason="no label")
    >>> kept["study_id"].tolist(), str(w[0].message)
    ([1], 'demo: dropped 1 studies (no label): [2]')
    """
    table = table.merge(labels, on=on, how="left", indicator="_has_label")
    no_label = (table["_has_label"] == "left_only").to_numpy()
    warn_dropped(source, table.loc[no_label, id_column].unique().tolist(), reason, stacklevel=4)
    return table[~no_label].drop(columns="_has_label")


def keep_labelled(table: pd.DataFrame, uncertain: str, *, source: str, target: str,
                  id_column: str = "study_id") -> tuple[pd.DataFrame, np.ndarray]:
    """The studies that keep a label under the ``uncertain`` policy, and their int target.

    The raw labels are the table's ``_label`` column (see :func:`apply_uncertain_policy`).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"study_id": [1, 2], "_label": [1.0, -1.0]})
    >>> kept, y = keep_labelled(table, "negative", source="demo", target="pneumonia")
    >>> list(kept.columns), y.tolist()
    (['study_id'], [1, 0])
    """
    y, keep = apply_uncertain_policy(table["_label"].to_numpy(), uncertain,
                                     ids=table[id_column].tolist(), source=source,
                                     target=target, stacklevel=5)
    return table[keep].drop(columns="_label"), y


def finish_studies(table: pd.DataFrame, y: np.ndarray,
                   sections: tuple[Sequence, Sequence, Sequence], *, section: str,
                   missing_report: str, source: str, reason: str, columns: dict[str, str],
                   id_column: str = "study_id") -> tuple[pd.DataFrame, np.ndarray]:
    """The common end of the archive loaders: report text, missing reports, the study table.

    ``sections`` holds each study's findings, impression and whole report; the ``section``
    choice picks from them with a recorded fallback (:func:`compose_reports`), the
    ``missing_report`` policy handles studies left without text (``reason`` says why, in a
    warning or error), and :func:`study_frame` assembles the output with ``columns`` and a
    ``report_section`` column.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> table = pd.DataFrame({"image": ["a.png"], "study_id": [7]})
    >>> X, y = finish_studies(table, np.array([1]), (["Clear."], [None], ["Clear."]),
    ...                       section="impression", missing_report="error", source="demo",
    ...                       reason="no text", columns={"study_id": "study_id"})
    >>> X.values.tolist(), y.tolist()
    ([['a.png', 'Clear.', 7, 'findings']], [1])
    """
    text, used = compose_reports(*sections, section)
    keep = apply_missing_report_policy(text, table[id_column].tolist(), missing_report,
                                       source=source, reason=reason, stacklevel=5)
    X = study_frame(table, text, columns)
    X["report_section"] = used
    return X[keep].reset_index(drop=True), y[keep]


def study_frame(table: pd.DataFrame, reports: Sequence[str],
                columns: dict[str, str]) -> pd.DataFrame:
    """A loader's output table: ``image`` (path, str) and ``report``, then ``columns``.

    ``columns`` maps each output column to the column of ``table`` it copies, in order; one
    that ``table`` lacks is left out (optional metadata such as ``view``).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"image": ["a.png"], "uid": [3]})
    >>> study_frame(table, ["Normal."], {"study_id": "uid", "view": "view"}).columns.tolist()
    ['image', 'report', 'study_id']
    """
    X = pd.DataFrame({"image": table["image"].astype(str).to_numpy(), "report": reports})
    for name, column in columns.items():
        if column in table.columns:
            X[name] = table[column].to_numpy()
    return X


def read_table(path: object) -> pd.DataFrame:
    """Read a CSV (plain or ``.gz``), JSON lines (``.json``/``.jsonl``) or a JSON array file.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "l.csv")
    >>> _ = open(p, "w").write("a,b\\n1,2\\n")
    >>> read_table(p).shape
    (1, 2)
    """
    path = str(path)
    name = path.lower()
    if name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
        with open(path, "rb") as fh:
            head = fh.read(1) if not name.endswith(".gz") else b"{"
        # The CheXpert Plus label files are JSON lines; accept a JSON array too.
        return pd.read_json(path, lines=head != b"[")
    return pd.read_csv(path, low_memory=False)
