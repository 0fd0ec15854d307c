"""Synthetic frontal chest X-rays with radiology reports and finding masks (pneumonia by default).

The generator is the embedded data set of the demo, the tests and the benchmarks. It aims to be
a fair test rather than a toy:

* the anatomy looks like a PA chest film (thorax, two dark lung fields, heart and mediastinum to
  the patient's left, domed hemidiaphragms, curved posterior and anterior ribs, clavicles, spine,
  trachea, lung vessels radiating from the hila, breast shadows in some patients) with random
  position, size, rotation, inspiration, exposure, gamma, smooth shading and noise;
* pneumonia is a patchy, irregular airspace opacity built from smoothed noise (some with air
  bronchograms) inside a named lung zone, of varying size and faintness;
* findings that are *not* pneumonia (pleural effusion, cardiomegaly, plate-like atelectasis,
  nodules, support devices) occur in both classes at the same rates; pleural effusion (fluid
  at the costophrenic angle) and cardiomegaly can be labelled findings too (``findings=``),
  each with its mask;
* reports have ``FINDINGS:`` and ``IMPRESSION:`` sections in varied wording, with negation and
  uncertainty, and name the lesion's location where it was drawn;
* several studies belong to the same patient (same anatomy, new exposure and findings), so a split
  that ignores ``patient_id`` leaks.

Orientation: the image is a standard PA view, so the patient's right is the image LEFT.

Every study has its own random generator derived from ``(seed, study number)``: a study's image
and report do not depend on the other studies, and its findings and report do not depend on
``image_size``.

The package: :mod:`.anatomy` draws patients and studies (anatomy, findings, zones and their
names), :mod:`.render` and :mod:`.devices` draw a study on the pixel grid, :mod:`.reports`
writes its report; this module plans the set and assembles the frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from ...utils.validation import check_seed
from .anatomy import FINDINGS, LESION_ZONES, P_CARDIOMEGALY, P_EFFUSION, sample_patient, sample_study
from .render import render_study
from .reports import write_report

try:  # installed with scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    def threadpool_limits(*args: Any, **kwargs: Any) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

__all__ = ["make_synthetic_cxr", "FINDINGS", "LESION_ZONES"]

# Studies per patient: most patients have one study, some have a few (as in MIMIC-CXR).
_STUDIES_PER_PATIENT = (np.array([1, 2, 3, 4, 5]), np.array([0.55, 0.22, 0.12, 0.07, 0.04]))


# --------------------------------------------------------------------------------------------
# Public function
# --------------------------------------------------------------------------------------------


def make_synthetic_cxr(
    n_samples: int = 200,
    *,
    image_size: int = 224,
    prevalence: float = 0.4,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    return_masks: bool = False,
    findings: str | tuple[str, ...] = ("pneumonia",),
) -> tuple[pd.DataFrame, np.ndarray] | tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Generate synthetic frontal chest X-rays, their reports and finding labels.

    Parameters
    ----------
    n_samples : int, default=200
        Number of studies.
    image_size : int, default=224
        Height and width of the square images, in pixels (at least 32).
    prevalence : float, default=0.4
        Share of pneumonia-positive studies; exactly ``round(prevalence * n_samples)`` studies
        are positive. For ``"pleural-effusion"`` and ``"cardiomegaly"`` among ``findings``, the
        chance that a study has an effusion, or a patient an enlarged heart (then in all of
        their studies).
    random_state : int, RandomState, Generator or None, default=None
        Seed. The same integer gives the same images, reports and ids.
    return_masks : bool, default=False
        Also return the masks of the findings.
    findings : str or tuple of str, default=("pneumonia",)
        The findings to label, from :data:`FINDINGS`: ``"pneumonia"`` (a patchy opacity in a
        lung zone), ``"pleural-effusion"`` (fluid at the costophrenic angle, one side or both)
        and ``"cardiomegaly"`` (an enlarged heart). Each is drawn on the image and named in the
        report, and they occur independently, so a study can have several. One finding gives
        a binary ``y``; several give one column each. Pneumonia is drawn only when asked;
        effusion and cardiomegaly, when not asked, are distractors at fixed rates.

    Returns
    -------
    X : pandas.DataFrame
        One row per study. Columns: ``image`` (2-D uint8 array, ``image_size`` squared),
        ``report`` (str, with ``FINDINGS:`` and ``IMPRESSION:`` sections), ``patient_id`` (str;
        some patients have several studies, so split with a group-aware splitter), then
        ``study_id`` (str), ``lesion_zone`` (one of :data:`LESION_ZONES`, ``""`` for negatives),
        ``lesion_location`` (the words the report uses for the lesion's place, ``""`` for
        negatives), ``lesion_contrast`` (float in (0, 1], how much of the local lung air the
        consolidation replaces; 0 for negatives) and the bool distractor flags ``effusion``,
        ``cardiomegaly``, ``atelectasis``, ``nodule`` and ``support_devices``.
    y : ndarray of int of shape (n_samples,) or (n_samples, n_findings)
        1 where the study has the finding, 0 otherwise; one column per finding, in the order
        of ``findings``, when there are several (scikit-learn's multilabel-indicator format).
    masks : ndarray of bool
        Only when ``return_masks``: the finding's pixels (all False where it is absent): the
        pneumonia's opacity in the visible lung, the effusion's fluid, the heart's silhouette.
        Of shape (n_samples, image_size, image_size) for one finding, else
        (n_samples, n_findings, image_size, image_size).

    Notes
    -----
    The images are PA views: the patient's right is the image left. Distractor findings occur
    in both classes at the same rates, and faint or small lesions make some positives hard.

    Examples
    --------
    >>> X, y, masks = make_synthetic_cxr(4, image_size=64, random_state=0, return_masks=True)
    >>> list(X.columns[:3]), X["image"][0].shape, X["image"][0].dtype, masks.shape
    (['image', 'report', 'patient_id'], (64, 64), dtype('uint8'), (4, 64, 64))
    >>> bool(masks[y == 0].any())
    False
    >>> "IMPRESSION:" in X["report"][0]
    True

    Several findings:

    >>> X, Y, masks = make_synthetic_cxr(
    ...     6, image_size=64, random_state=0, return_masks=True,
    ...     findings=("pneumonia", "pleural-effusion", "cardiomegaly"))
    >>> Y.shape, masks.shape
    ((6, 3), (6, 3, 64, 64))
    >>> bool((masks.any(axis=(2, 3)) == Y.astype(bool)).all())
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    image_size = _check_int(image_size, "image_size", 32)
    if (
        isinstance(prevalence, bool)
        or not isinstance(prevalence, Real)
        or not 0.0 <= float(prevalence) <= 1.0
    ):
        raise ValueError(f"prevalence must be a float in [0, 1], got {prevalence!r}")
    if not isinstance(return_masks, (bool, np.bool_)):
        raise TypeError(f"return_masks must be a bool, got {return_masks!r}")
    findings = _check_findings(findings)
    seed = check_seed(random_state)

    plan = _plan(n_samples, float(prevalence), seed, findings)
    images = np.empty(n_samples, dtype=object)
    masks = (np.zeros((n_samples, len(findings), image_size, image_size), dtype=bool)
             if return_masks else None)
    reports, rows = [], []
    # The matrix products are tiny: BLAS threads would only fight over the cores.
    with threadpool_limits(limits=1, user_api="blas"):
        for i in range(n_samples):
            image, drawn, _, study, report = _make_study(plan, i, image_size)
            images[i] = image
            if masks is not None:
                for j, name in enumerate(findings):
                    masks[i, j] = drawn[name]
            reports.append(report)
            rows.append(study)
    patients, patient_of_study = plan.patients, plan.patient_of_study

    X = pd.DataFrame(
        {
            "image": images,
            "report": reports,
            "patient_id": plan.patient_ids,
            "study_id": plan.study_ids,
            "lesion_zone": [s.zone for s in rows],
            "lesion_location": [s.location for s in rows],
            "lesion_contrast": np.array([s.contrast for s in rows], dtype=np.float64),
            "effusion": np.array([bool(s.effusion) for s in rows]),
            "cardiomegaly": np.array([patients[p].cardiomegaly for p in patient_of_study]),
            "atelectasis": np.array([s.atelectasis is not None for s in rows]),
            "nodule": np.array([s.nodule is not None for s in rows]),
            "support_devices": np.array([bool(s.devices) for s in rows]),
        }
    )
    has = {"pneumonia": plan.y.astype(bool), "pleural-effusion": X["effusion"].to_numpy(),
           "cardiomegaly": X["cardiomegaly"].to_numpy()}
    y = np.stack([has[name] for name in findings], axis=1).astype(np.int64)
    if len(findings) == 1:  # binary: today's shapes
        y, masks = y[:, 0], None if masks is None else masks[:, 0]
    if return_masks:
        return X, y, masks
    return X, y


def _check_findings(findings: Any) -> tuple[str, ...]:
    names = (findings,) if isinstance(findings, str) else findings
    if (not isinstance(names, (tuple, list)) or not names
            or any(name not in FINDINGS for name in names) or len(set(names)) < len(names)):
        raise ValueError(f"findings must be one or several distinct names from {list(FINDINGS)}, "
                         f"got {findings!r}")
    return tuple(names)


@dataclass
class _Plan:
    """Who is who: labels, patients and ids, drawn before any study is rendered."""

    seed: int
    y: np.ndarray  # pneumonia
    patient_of_study: np.ndarray
    patients: list
    patient_ids: list
    study_ids: list
    findings: tuple[str, ...] = ("pneumonia",)
    p_effusion: float = P_EFFUSION


def _plan(n_samples: int, prevalence: float, seed: int,
          findings: tuple[str, ...] = ("pneumonia",)) -> _Plan:
    design = np.random.default_rng((seed, 0))
    patient_of_study, n_patients = _assign_patients(design, n_samples)
    y = np.zeros(n_samples, dtype=np.int64)
    # Drawn whatever the findings, so that the ids and the other draws stay the same.
    positives = design.permutation(n_samples)[: int(round(prevalence * n_samples))]
    if "pneumonia" in findings:
        y[positives] = 1
    patient_numbers = design.choice(9_000_000, size=n_patients, replace=False) + 10_000_000
    study_numbers = design.choice(40_000_000, size=n_samples, replace=False) + 50_000_000
    p_cardiomegaly = prevalence if "cardiomegaly" in findings else P_CARDIOMEGALY
    patients = [sample_patient(np.random.default_rng((seed, 1, p)), p_cardiomegaly)
                for p in range(n_patients)]
    return _Plan(seed, y, patient_of_study, patients,
                 [f"p{patient_numbers[p]}" for p in patient_of_study],
                 [f"s{s}" for s in study_numbers], findings,
                 prevalence if "pleural-effusion" in findings else P_EFFUSION)


def _make_study(plan: _Plan, i: int, image_size: int, draw_lesion: bool = True):
    """Study ``i`` of a plan: (image, {finding: mask}, lung mask, Study, report).

    Its random generator depends only on the seed and ``i``, never on the other studies; the
    findings and the report have their own streams, so they do not depend on ``image_size``.
    ``draw_lesion=False`` renders the same study without its lesion (for tests).
    """
    f_rng, r_rng, t_rng = np.random.default_rng((plan.seed, 2, i)).spawn(3)
    patient = plan.patients[plan.patient_of_study[i]]
    study = sample_study(f_rng, patient, bool(plan.y[i]), plan.p_effusion)
    drawn = study if draw_lesion else dataclasses.replace(study, positive=False)
    image, masks, lung = render_study(patient, drawn, image_size, r_rng, plan.findings)
    return image, masks, lung, study, write_report(t_rng, study)


# --------------------------------------------------------------------------------------------
# Validation and seeding
# --------------------------------------------------------------------------------------------


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _assign_patients(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    sizes, probs = _STUDIES_PER_PATIENT
    counts = []
    while sum(counts) < n:
        counts.append(int(rng.choice(sizes, p=probs)))
    counts[-1] -= sum(counts) - n
    patient_of_study = np.repeat(np.arange(len(counts)), counts)
    # Interleave the patients' studies so neighbouring rows are not the same patient.
    return patient_of_study[rng.permutation(n)], len(counts)
