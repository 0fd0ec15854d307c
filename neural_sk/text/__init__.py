"""Reading radiology report text: sections, findings with status, anatomy, labels.

Rule-based and offline (spaCy's blank English pipeline and a curated lexicon); nothing
here imports scikit-learn estimators or torch.

Examples
--------
>>> from neural_sk.text import extract_sections, extract_entities, label_reports
>>> extract_sections("FINDINGS: No effusion.\\nIMPRESSION: Normal.")["impression"]
'Normal.'
>>> [(e.concept, e.status) for e in extract_entities(["No pneumothorax."])[0]]
[('pneumothorax', 'absent')]
>>> int(label_reports(["Small left pleural effusion."])["pleural-effusion"][0])
1
"""

from .entities import Entity, extract_entities
from .labeler import label_reports, labels_from_reports
from .lexicon import ANATOMY, CONCEPTS, OBSERVATIONS, STATUSES, load_lexicon
from .sections import CONTEXT_SECTIONS, extract_sections, observation_text, section_spans

__all__ = [
    "ANATOMY",
    "CONCEPTS",
    "CONTEXT_SECTIONS",
    "OBSERVATIONS",
    "STATUSES",
    "Entity",
    "extract_entities",
    "extract_sections",
    "observation_text",
    "label_reports",
    "labels_from_reports",
    "load_lexicon",
    "section_spans",
]
