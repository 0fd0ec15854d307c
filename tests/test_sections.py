"""Report sections: real IU reports and hand-written MIMIC-style files."""

import pandas as pd
import pytest

from neural_sk.text import CONTEXT_SECTIONS, extract_sections, section_spans

MIMIC = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with cough  // ? pna

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  ___

 FINDINGS:

 The lungs are clear.  There is no
 pleural effusion or pneumothorax.

 IMPRESSION:

 No acute cardiopulmonary process.
"""

WET_READ = """WET READ: JXSd FRI 3:17 PM
  No pneumonia.
______________________________________________________________________________
                                 FINAL REPORT
 HISTORY:  Fever.
 FINDINGS:  Heart size is normal.
 CONCLUSION:  Normal chest.
"""


@pytest.fixture(scope="module")
def iu(iu_reports_path):
    return pd.read_csv(iu_reports_path)


def test_iu_reports_split_into_their_published_sections(iu):
    # The report column joins the published FINDINGS and IMPRESSION; splitting it must give
    # them back. A few published impressions themselves contain "FINDINGS:" headers.
    clean = iu[~iu["impression"].fillna("").str.contains("FINDINGS:|IMPRESSION:")]
    assert len(clean) > 2800
    for row in clean.itertuples():
        sections = extract_sections(row.report)
        for name in ("findings", "impression"):
            published = getattr(row, name)
            if isinstance(published, str) and published.strip():
                assert sections[name] == published.strip(), (row.uid, name)
            else:
                assert name not in sections, (row.uid, name)


def test_mimic_file_sections_and_banner():
    sections = extract_sections(MIMIC)
    assert sections == {
        "examination": "CHEST (PA AND LAT)",
        "indication": "___F with cough  // ? pna",
        "technique": "Chest PA and lateral",
        "comparison": "___",
        "findings": "The lungs are clear.  There is no\n pleural effusion or pneumothorax.",
        "impression": "No acute cardiopulmonary process.",
    }


def test_wet_read_separator_and_synonyms():
    sections = extract_sections(WET_READ)
    assert sections["wet read"] == "JXSd FRI 3:17 PM\n  No pneumonia."  # time is not a header
    assert sections["history"] == "Fever."
    assert sections["impression"] == "Normal chest."  # CONCLUSION is the impression
    assert not any("___" in text for text in sections.values())


def test_headerless_text_is_findings_and_empty_is_empty():
    assert extract_sections("Heart size normal. No pneumothorax.") == {
        "findings": "Heart size normal. No pneumothorax."}
    assert extract_sections("   \n ") == {}


def test_body_after_a_context_paragraph_is_read_as_findings():
    report = "FINAL REPORT\n COMPARISON: ___.\n\n The lungs are clear.\n IMPRESSION: Normal."
    sections = extract_sections(report)
    assert sections["comparison"] == "___."
    assert sections["findings"] == "The lungs are clear."
    assert sections["impression"] == "Normal."


def test_inline_and_repeated_headers():
    report = "Findings: Small effusion. Impression: Effusion.\nIMPRESSION: Follow up."
    sections = extract_sections(report)
    assert sections["findings"] == "Small effusion."
    assert sections["impression"] == "Effusion.\nFollow up."


def test_spans_index_the_original_report():
    for report in (MIMIC, WET_READ, "FINDINGS: a.\nIMPRESSION: b."):
        for name, start, end in section_spans(report):
            text = report[start:end]
            assert text == text.strip() and text
            assert text in extract_sections(report)[name]


def test_context_sections_are_the_clinical_context():
    assert {"indication", "history", "comparison", "technique"} <= CONTEXT_SECTIONS
    assert not {"findings", "impression", "wet read"} & CONTEXT_SECTIONS


def test_non_string_report_raises():
    with pytest.raises(TypeError, match="str"):
        section_spans(None)
