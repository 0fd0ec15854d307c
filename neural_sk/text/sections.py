"""Split a radiology report into its sections (FINDINGS, IMPRESSION, INDICATION, ...).

Handles MIMIC-CXR report files (``FINAL REPORT`` banner, ``WET READ``, upper-case headers at
the start of a line, lines wrapped mid-sentence) and Open-i / IU text (``FINDINGS: ...
IMPRESSION: ...`` on one or several lines).

Rules
-----
- A header is a known section name (see ``_ALIASES``, any case) followed by a colon, at the
  start of a line or after the end of a sentence; or any other upper-case name of 3-40
  characters followed by a colon at the start of a line (``"PA AND LATERAL VIEWS:"``).
- Section names are lower case; synonyms are merged (``CONCLUSION`` -> ``"impression"``,
  ``REASON FOR EXAMINATION`` -> ``"indication"``, ``CLINICAL HISTORY`` -> ``"history"``).
  A repeated section is joined with a newline. Empty sections are left out.
- ``FINAL REPORT`` is a banner, not a section; separator lines (``____``) are dropped.
- Text that sits under no header (before the first header, after the banner, or after a
  blank line that ends a one-paragraph context section such as ``COMPARISON:``) is report
  body: it is returned as ``"findings"`` when the report has no FINDINGS header (a report
  with no header at all gives ``{"findings": text}``) and as ``"other"`` otherwise.
- Whitespace-only text gives ``{}``.
"""

from __future__ import annotations

import re

__all__ = ["extract_sections", "CONTEXT_SECTIONS", "observation_text", "section_spans"]

# Synonyms of the usual section names (upper case, single spaces) -> canonical name.
_ALIASES = {
    "FINDINGS": "findings",
    "FINDING": "findings",
    "FINDINGS AND IMPRESSION": "findings",
    "REPORT": "findings",
    "IMPRESSION": "impression",
    "IMPRESSIONS": "impression",
    "CONCLUSION": "impression",
    "CONCLUSIONS": "impression",
    "SUMMARY": "impression",
    "OPINION": "impression",
    "INTERPRETATION": "impression",
    "INDICATION": "indication",
    "INDICATIONS": "indication",
    "CLINICAL INDICATION": "indication",
    "CLINICAL INDICATIONS": "indication",
    "REASON FOR EXAM": "indication",
    "REASON FOR EXAMINATION": "indication",
    "REASON FOR STUDY": "indication",
    "REASON FOR THE EXAMINATION": "indication",
    "REASON": "indication",
    "HISTORY": "history",
    "CLINICAL HISTORY": "history",
    "MEDICAL HISTORY": "history",
    "PATIENT HISTORY": "history",
    "CLINICAL INFORMATION": "history",
    "CLINICAL DATA": "history",
    "CLINICAL DETAILS": "history",
    "COMPARISON": "comparison",
    "COMPARISONS": "comparison",
    "COMPARISON STUDY": "comparison",
    "COMPARISON STUDIES": "comparison",
    "PRIOR STUDIES": "comparison",
    "PRIOR": "comparison",
    "TECHNIQUE": "technique",
    "PROCEDURE": "technique",
    "VIEWS": "technique",
    "EXAMINATION": "examination",
    "EXAM": "examination",
    "TYPE OF EXAMINATION": "examination",
    "STUDY": "examination",
    "WET READ": "wet read",
    "RECOMMENDATION": "recommendation",
    "RECOMMENDATIONS": "recommendation",
    "NOTIFICATION": "notification",
    "NOTIFICATIONS": "notification",
    "COMMUNICATION": "notification",
    "ADDENDUM": "addendum",
}

#: Sections that say why and how the study was done, not what the image shows; their
#: suspected conditions ("evaluate for pneumonia") are not observations.
CONTEXT_SECTIONS = frozenset(
    {"indication", "history", "comparison", "technique", "examination", "recommendation",
     "notification"}
)

# Context sections are short: a blank line after their first paragraph ends them.
_ONE_PARAGRAPH = frozenset({"indication", "history", "comparison", "technique", "examination"})

_KNOWN = "|".join(sorted((re.escape(k).replace(r"\ ", r"\s+") for k in _ALIASES),
                         key=len, reverse=True))
# A known header, any case, at a line start or after a sentence end.
_KNOWN_RE = re.compile(rf"(?:(?<=^)|(?<=\n)|(?<=[.!?])|(?<=[.!?]\s))[ \t]*(?P<name>{_KNOWN})[ \t]*:",
                       re.IGNORECASE)
# Any upper-case header at the start of a line.
_UPPER_RE = re.compile(r"(?m)^[ \t]*(?P<name>[A-Z][A-Z0-9 /&(),'-]{2,39}?)[ \t]*:(?!\d)")
_BANNER_RE = re.compile(r"(?m)^[ \t]*FINAL REPORT[ \t]*$")
_SEPARATOR_RE = re.compile(r"_{8,}|={8,}")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")


def _canonical(name: str) -> str:
    key = " ".join(name.upper().split())
    return _ALIASES.get(key, " ".join(name.lower().split()))


def _headers(report: str) -> list[tuple[int, int, str | None]]:
    """Header positions ``(start, end, name)``; ``name`` None marks the FINAL REPORT banner."""
    found: dict[int, tuple[int, int, str | None]] = {}
    for m in _KNOWN_RE.finditer(report):
        found[m.start("name")] = (m.start("name"), m.end(), _canonical(m.group("name")))
    for m in _UPPER_RE.finditer(report):
        start = m.start("name")
        name = m.group("name").strip()
        # A time of day ("10:30") or a lone letter is not a header.
        if start in found or not re.search(r"[A-Z]{2}", name):
            continue
        if any(s <= start < e for s, e, _ in found.values()):
            continue
        found[start] = (start, m.end(), _canonical(name))
    for m in _BANNER_RE.finditer(report):
        found.setdefault(m.start(), (m.start(), m.end(), None))
    return [found[k] for k in sorted(found)]


def _trim(report: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` to drop surrounding whitespace."""
    while start < end and report[start].isspace():
        start += 1
    while end > start and report[end - 1].isspace():
        end -= 1
    return start, end


def section_spans(report: str) -> list[tuple[str, int, int]]:
    """Sections of ``report`` as ``(name, start, end)`` character spans, in reading order.

    The spans index the original string, so entities found in a section keep their
    offsets in the report. Names follow :func:`extract_sections`; a name may repeat.

    Parameters
    ----------
    report : str
        One report.

    Returns
    -------
    list of (str, int, int)

    Examples
    --------
    >>> section_spans("FINDINGS: Clear lungs.\\nIMPRESSION: Normal.")
    [('findings', 10, 22), ('impression', 35, 42)]
    """
    if not isinstance(report, str):
        raise TypeError(f"report must be str, got {type(report).__name__}")
    headers = _headers(report)
    pieces: list[tuple[str | None, int, int]] = []  # None = text under no header
    cursor, current = 0, None
    for start, end, name in headers:
        pieces.append((current, cursor, start))
        current = name  # None after the banner: body text
        cursor = end
    pieces.append((current, cursor, len(report)))

    spans: list[tuple[str | None, int, int]] = []
    for name, start, end in pieces:
        if name in _ONE_PARAGRAPH:
            # "COMPARISON: None.\n\nThe lungs are clear." -> the second paragraph is body.
            start, end = _trim(report, start, end)
            blank = _BLANK_LINE_RE.search(report, start, end)
            if blank:
                spans.append((name, start, blank.start()))
                spans.append((None, blank.end(), end))
                continue
        spans.append((name, start, end))

    has_findings = any(name == "findings" for name, _, _ in spans)
    out = []
    for name, start, end in spans:
        # Separator lines are layout, not text: cut the span at them.
        for part_start, part_end in _split_separators(report, start, end):
            part_start, part_end = _trim(report, part_start, part_end)
            if part_start >= part_end:
                continue
            label = name if name is not None else ("other" if has_findings else "findings")
            out.append((label, part_start, part_end))
    return out


def _split_separators(report: str, start: int, end: int) -> list[tuple[int, int]]:
    parts, cursor = [], start
    for m in _SEPARATOR_RE.finditer(report, start, end):
        parts.append((cursor, m.start()))
        cursor = m.end()
    parts.append((cursor, end))
    return parts


def extract_sections(report: str) -> dict[str, str]:
    """Split a report into its sections.

    Parameters
    ----------
    report : str
        A MIMIC-CXR report file's text or Open-i / IU style text.

    Returns
    -------
    dict of str to str
        Lower-case section name (``"findings"``, ``"impression"``, ``"indication"``,
        ``"comparison"``, ``"technique"``, ``"history"``, ``"wet read"``, or any other
        header found, lower-cased) -> the section's text, stripped. Text under no header is
        ``"findings"`` when the report has no FINDINGS header, else ``"other"``; a report
        with no header at all gives ``{"findings": report.strip()}``; an empty one ``{}``.

    Examples
    --------
    >>> extract_sections("FINDINGS: The lungs are clear.\\nIMPRESSION: No acute disease.")
    {'findings': 'The lungs are clear.', 'impression': 'No acute disease.'}
    >>> extract_sections("Heart size normal. No pneumothorax.")
    {'findings': 'Heart size normal. No pneumothorax.'}
    >>> mimic = '''                                 FINAL REPORT
    ...  INDICATION:  ___ with cough, eval for pneumonia.
    ...  FINDINGS:  Right lower lobe opacity.
    ...  IMPRESSION:  Pneumonia.'''
    >>> extract_sections(mimic)["indication"]
    '___ with cough, eval for pneumonia.'
    """
    sections: dict[str, str] = {}
    for name, start, end in section_spans(report):
        text = report[start:end]
        sections[name] = f"{sections[name]}\n{text}" if name in sections else text
    return sections


def observation_text(report: str) -> str:
    """The report without the sections that only give clinical context.

    Indication, history, comparison and technique say why the study was done ("cough and
    fever, evaluate for pneumonia"): a decoder trained on them learns the referral, not the
    image, and their suspected conditions would leak the label. The remaining sections are
    kept in order with their headers; a report with no context section is returned unchanged.

    Parameters
    ----------
    report : str

    Returns
    -------
    str

    Examples
    --------
    >>> observation_text("INDICATION: Fever.\\nFINDINGS: Clear lungs.\\nIMPRESSION: Normal.")
    'FINDINGS: Clear lungs.\\nIMPRESSION: Normal.'
    >>> observation_text("No acute disease.")
    'No acute disease.'
    """
    spans = section_spans(report)
    if not any(name in CONTEXT_SECTIONS for name, _, _ in spans):
        return report
    kept = [(name, report[s:e]) for name, s, e in spans if name not in CONTEXT_SECTIONS]
    return "\n".join(f"{name.upper()}: {text}" for name, text in kept if text.strip())
