"""Synthetic frontal chest X-rays with radiology reports and pneumonia lesion masks.

The generator is the embedded data set of the demo, the tests and the benchmarks. It aims to be
a fair test rather than a toy:

* the anatomy looks like a PA chest film (thorax, two dark lung fields, heart and mediastinum to
  the patient's left, domed hemidiaphragms, curved posterior and anterior ribs, clavicles, spine,
  trachea, lung vessels radiating from the hila, breast shadows in some patients) with random
  position, size, rotation, inspiration, exposure, gamma, smooth shading and noise;
* pneumonia is a patchy, irregular airspace opacity built from smoothed noise (some with air
  bronchograms) inside a named lung zone, of varying size and faintness;
* findings that are *not* pneumonia (pleural effusion, cardiomegaly, plate-like atelectasis,
  nodules, support devices) occur in both classes at the same rates;
* reports have ``FINDINGS:`` and ``IMPRESSION:`` sections in varied wording, with negation and
  uncertainty, and name the lesion's location where it was drawn;
* several studies belong to the same patient (same anatomy, new exposure and findings), so a split
  that ignores ``patient_id`` leaks.

Orientation: the image is a standard PA view, so the patient's right is the image LEFT.

Every study has its own random generator derived from ``(seed, study number)``: a study's image
and report do not depend on the other studies, and its findings and report do not depend on
``image_size``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

try:  # installed with scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    def threadpool_limits(*args: Any, **kwargs: Any) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

__all__ = ["make_synthetic_cxr", "LESION_ZONES"]

#: Canonical pneumonia zones, as ``(side, level)``; side is the patient's side.
LESION_ZONES: dict[str, tuple[str, str]] = {
    "right upper lobe": ("right", "upper"),
    "right middle lobe": ("right", "middle"),
    "right lower lobe": ("right", "lower"),
    "left upper lobe": ("left", "upper"),
    "lingula": ("left", "middle"),
    "left lower lobe": ("left", "lower"),
}
# Lower lobes are the commonest site of community-acquired pneumonia.
_ZONE_WEIGHTS = np.array([0.13, 0.14, 0.25, 0.13, 0.10, 0.25])

# Vertical extent of each level, as a fraction of the apex -> costophrenic-angle height.
_LEVEL_T = {"upper": (0.12, 0.36), "middle": (0.38, 0.62), "lower": (0.66, 0.93)}

# Rates of the distractor findings; they are drawn independently of the label.
_P_CARDIOMEGALY = 0.18  # per patient: a chronic finding, shared by all of a patient's studies
_P_EFFUSION = 0.15
_P_ATELECTASIS = 0.18
_P_NODULE = 0.12
_P_DEVICES = 0.22
_P_BREASTS = 0.45  # per patient

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
) -> tuple[pd.DataFrame, np.ndarray] | tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Generate synthetic frontal chest X-rays, their reports and pneumonia labels.

    Parameters
    ----------
    n_samples : int, default=200
        Number of studies.
    image_size : int, default=224
        Height and width of the square images, in pixels (at least 32).
    prevalence : float, default=0.4
        Share of pneumonia-positive studies; exactly ``round(prevalence * n_samples)`` studies
        are positive.
    random_state : int, RandomState, Generator or None, default=None
        Seed. The same integer gives the same images, reports and ids.
    return_masks : bool, default=False
        Also return the lesion masks.

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
    y : ndarray of int of shape (n_samples,)
        1 for pneumonia, 0 otherwise.
    masks : ndarray of bool of shape (n_samples, image_size, image_size)
        Only when ``return_masks``: the lesion's pixels (all False for negatives).

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
    seed = _resolve_seed(random_state)

    plan = _plan(n_samples, float(prevalence), seed)
    images = np.empty(n_samples, dtype=object)
    masks = np.zeros((n_samples, image_size, image_size), dtype=bool) if return_masks else None
    reports, rows = [], []
    # The matrix products are tiny: BLAS threads would only fight over the cores.
    with threadpool_limits(limits=1, user_api="blas"):
        for i in range(n_samples):
            image, lesion, _, study, report = _make_study(plan, i, image_size)
            images[i] = image
            if masks is not None:
                masks[i] = lesion
            reports.append(report)
            rows.append(study)
    patients, patient_of_study, y = plan.patients, plan.patient_of_study, plan.y

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
    if return_masks:
        return X, y.copy(), masks
    return X, y.copy()


@dataclass
class _Plan:
    """Who is who: labels, patients and ids, drawn before any study is rendered."""

    seed: int
    y: np.ndarray
    patient_of_study: np.ndarray
    patients: list
    patient_ids: list
    study_ids: list


def _plan(n_samples: int, prevalence: float, seed: int) -> _Plan:
    design = np.random.default_rng((seed, 0))
    patient_of_study, n_patients = _assign_patients(design, n_samples)
    y = np.zeros(n_samples, dtype=np.int64)
    y[design.permutation(n_samples)[: int(round(prevalence * n_samples))]] = 1
    patient_numbers = design.choice(9_000_000, size=n_patients, replace=False) + 10_000_000
    study_numbers = design.choice(40_000_000, size=n_samples, replace=False) + 50_000_000
    patients = [_sample_patient(np.random.default_rng((seed, 1, p))) for p in range(n_patients)]
    return _Plan(seed, y, patient_of_study, patients,
                 [f"p{patient_numbers[p]}" for p in patient_of_study],
                 [f"s{s}" for s in study_numbers])


def _make_study(plan: _Plan, i: int, image_size: int, draw_lesion: bool = True):
    """Study ``i`` of a plan: (image, lesion mask, lung mask, _Study, report).

    Its random generator depends only on the seed and ``i``, never on the other studies; the
    findings and the report have their own streams, so they do not depend on ``image_size``.
    ``draw_lesion=False`` renders the same study without its lesion (for tests).
    """
    f_rng, r_rng, t_rng = np.random.default_rng((plan.seed, 2, i)).spawn(3)
    patient = plan.patients[plan.patient_of_study[i]]
    study = _sample_study(f_rng, patient, bool(plan.y[i]))
    drawn = study if draw_lesion else dataclasses.replace(study, positive=False)
    image, lesion, lung = _render_study(patient, drawn, image_size, r_rng)
    return image, lesion, lung, study, _write_report(t_rng, study)


# --------------------------------------------------------------------------------------------
# Validation and seeding
# --------------------------------------------------------------------------------------------


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _resolve_seed(random_state: Any) -> int:
    if isinstance(random_state, bool):
        raise ValueError(f"random_state must be an int, a RandomState, a Generator or None, "
                         f"got {random_state!r}")
    if isinstance(random_state, Integral):
        if int(random_state) < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state!r}")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    if random_state is None or isinstance(random_state, np.random.RandomState):
        from sklearn.utils import check_random_state

        return int(check_random_state(random_state).randint(0, 2**31 - 1))
    raise ValueError(
        f"random_state must be an int, a RandomState, a Generator or None, got {random_state!r}"
    )


def _assign_patients(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    sizes, probs = _STUDIES_PER_PATIENT
    counts = []
    while sum(counts) < n:
        counts.append(int(rng.choice(sizes, p=probs)))
    counts[-1] -= sum(counts) - n
    patient_of_study = np.repeat(np.arange(len(counts)), counts)
    # Interleave the patients' studies so neighbouring rows are not the same patient.
    return patient_of_study[rng.permutation(n)], len(counts)


# --------------------------------------------------------------------------------------------
# Patient anatomy and study findings (all in "anatomical" coordinates: x from -1 at the image
# left to 1 at the image right, y from -1 at the top to 1 at the bottom, before the study's
# position, scale and rotation are applied)
# --------------------------------------------------------------------------------------------


@dataclass
class _Patient:
    body_w: float  # half-width of the thorax
    apex_y: float  # top of the lung apices
    cp_y: float  # level of the costophrenic angles
    lung_cx: float  # |x| of the lung centre lines
    lung_hw: float  # half-width of a lung at its widest
    dome: tuple[float, float]  # top of the (right, left) hemidiaphragm
    heart: tuple[float, float, float, float, float]  # cx, cy, rx, ry, rotation (rad)
    cardiomegaly: bool
    rib_spacing: float
    rib_phase: float
    rib_curve: float
    clavicle_y: float
    spine_x: float
    breasts: float  # 0 when absent, else the shadow's strength
    aspect: float
    arm_gap: float  # 0 when the arms are out of the field
    bubble: bool  # gastric air bubble


@dataclass
class _Study:
    positive: bool
    # position: shift, scale, rotation, inspiration (dome shift)
    tx: float
    ty: float
    scale: float
    rot: float
    inspiration: float
    # exposure
    lo: float
    hi: float
    gamma: float
    noise: float
    # pneumonia
    zone: str = ""
    location: str = ""  # the words the report uses
    centre: tuple[float, float] = (0.0, 0.0)
    radii: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    contrast: float = 0.0
    bronchograms: bool = False
    # distractors
    effusion: list[tuple[str, float]] = field(default_factory=list)  # (side, height)
    atelectasis: tuple[str, str, float, float, float, float, float] | None = None
    nodule: tuple[str, str, float, float, float] | None = None  # side, level, x, y, r
    devices: list[str] = field(default_factory=list)
    ett_cm: int = 4
    resolved_zone: str = ""  # negatives: a prior opacity said to have resolved
    cardiomegaly: bool = False


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _sample_patient(rng: np.random.Generator) -> _Patient:
    cardiomegaly = bool(rng.random() < _P_CARDIOMEGALY)
    heart_rx = _u(rng, 0.33, 0.38) * (_u(rng, 1.25, 1.4) if cardiomegaly else 1.0)
    heart_ry = _u(rng, 0.22, 0.27) * (_u(rng, 1.08, 1.2) if cardiomegaly else 1.0)
    dome_r = _u(rng, 0.22, 0.34)
    return _Patient(
        body_w=_u(rng, 0.86, 0.98),
        apex_y=_u(rng, -0.80, -0.70),
        cp_y=_u(rng, 0.50, 0.62),
        lung_cx=_u(rng, 0.38, 0.43),
        lung_hw=_u(rng, 0.32, 0.38),
        dome=(dome_r, dome_r + _u(rng, 0.02, 0.09)),
        heart=(
            _u(rng, 0.08, 0.13) + (0.07 if cardiomegaly else 0.0),
            _u(rng, 0.2, 0.28),
            heart_rx,
            heart_ry,
            math.radians(_u(rng, -35, -20)),
        ),
        cardiomegaly=cardiomegaly,
        rib_spacing=_u(rng, 0.105, 0.13),
        rib_phase=_u(rng, 0.0, 1.0),
        rib_curve=_u(rng, 0.55, 0.8),
        clavicle_y=_u(rng, -0.78, -0.68),
        spine_x=_u(rng, -0.015, 0.015),
        breasts=_u(rng, 0.05, 0.11) if rng.random() < _P_BREASTS else 0.0,
        aspect=_u(rng, 0.94, 1.06),
        arm_gap=_u(rng, 0.03, 0.1) if rng.random() < 0.5 else 0.0,
        bubble=bool(rng.random() < 0.7),
    )


def _side_sign(side: str) -> float:
    # The patient's right lung is on the image left (negative x).
    return -1.0 if side == "right" else 1.0


def _lung_half_width(p: _Patient, t: np.ndarray | float) -> np.ndarray | float:
    # Narrow, rounded apex widening to the base.
    tt = np.clip(t, 0.0, 1.0)
    return p.lung_hw * np.sqrt(tt * (2.0 - tt))


def _dome_y(p: _Patient, side_index: int, x: np.ndarray | float, inspiration: float):
    s = -1.0 if side_index == 0 else 1.0
    top = p.dome[side_index] + inspiration
    k = p.cp_y + inspiration + 0.04 - top
    return top + k * ((x - s * p.lung_cx) / p.lung_hw) ** 2


def _diaphragm_y(p: _Patient, x, inspiration: float):
    """Top of the abdomen: the lower of the two domes, whose medial ends meet under the heart."""
    dome = np.minimum(_dome_y(p, 0, x, inspiration), _dome_y(p, 1, x, inspiration))
    cap = 0.5 * (p.dome[0] + p.dome[1]) + inspiration + 0.12
    medial = np.clip((p.lung_cx - np.abs(x - p.spine_x)) * 10.0 + 0.5, 0.0, 1.0)
    return dome - medial * np.maximum(dome - cap, 0.0)


def _heart_r(p: _Patient, x, y):
    """Normalised distance to the cardiac silhouette (< 1 inside): a tilted ellipse for the
    ventricles plus a smaller one for the right atrium, which makes the right heart border."""
    cx, cy, rx, ry, rot = p.heart
    c, s = math.cos(rot), math.sin(rot)
    dx, dy = x - cx, y - cy
    u, v = c * dx + s * dy, -s * dx + c * dy
    ventricles = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    atrium = np.hypot((x - cx + 0.6 * rx) / (0.42 * rx), (y - cy - 0.05) / (0.75 * ry))
    return np.minimum(ventricles, atrium)


def _heart_density(p: _Patient, x, y, e: float):
    return _ramp(1.0 - _heart_r(p, x, y), e / p.heart[2])


def _mediastinum_density(p: _Patient, x, y, e: float):
    # Borders widen downwards into the right atrium (image left) and the left heart border,
    # so the mediastinal outline runs on into the heart without a notch.
    low = np.clip((y + 0.15) * (1 / 0.35), 0.0, 1.0)
    mediast = (_ramp(x - p.spine_x + 0.095 + 0.1 * low, e)
               * _ramp(p.spine_x + 0.125 + 0.08 * low - x, e) * _ramp(0.3 - y, 0.1))
    # Above the apices the mediastinum fades into the soft tissue of the neck.
    return mediast * (0.45 + 0.55 * _ramp(y - p.apex_y + 0.05, 0.2))


def _aorta_density(p: _Patient, x, y):
    return _ramp(1.0 - np.hypot((x - 0.1 - p.spine_x) / 0.085, (y + 0.3) / 0.075), 0.08)


def _front_density(p: _Patient, x, y, e: float = 0.01):
    """How much heart, mediastinum or aortic knob covers (x, y): 0 in the clear lung."""
    return np.maximum(np.maximum(_heart_density(p, x, y, e), _mediastinum_density(p, x, y, e)),
                      _aorta_density(p, x, y))


# Eight directions around a candidate point, for the clearance checks below.
_AROUND = np.exp(1j * np.linspace(0, 2 * np.pi, 8, endpoint=False))


def _lung_point(rng, p: _Patient, st: _Study, side: str, level: str, medial: bool | None,
                margin: float) -> tuple[float, float]:
    """A point inside the named lung zone, ``margin`` clear of its edges, the diaphragm, the
    heart and the mediastinum. Where a big heart leaves no such room, the margin shrinks, and
    at worst the least covered point tried is used."""
    s = _side_sign(side)
    t_lo, t_hi = _LEVEL_T[level]
    best, best_cover = (s * p.lung_cx, p.apex_y + 0.5 * (t_lo + t_hi) * (p.cp_y - p.apex_y)), 2.0
    for attempt in range(90):
        m = margin * (1.0 - attempt // 30 * 0.5)  # margin, then half, then none
        t = _u(rng, t_lo, t_hi)
        y = p.apex_y + t * (p.cp_y + st.inspiration - p.apex_y)
        hw = float(_lung_half_width(p, t)) - m
        if hw <= 0.01:
            continue
        if medial is None:
            frac = _u(rng, -0.85, 0.85)
        elif medial:
            frac = _u(rng, 0.0, 0.8)
        else:
            frac = _u(rng, -0.85, 0.1)
        x = s * (p.lung_cx - frac * hw)  # frac > 0 is medial
        if y > float(_diaphragm_y(p, x, st.inspiration)) - m:
            continue
        # Clear of the heart and the mediastinum, at the point and ``m`` around it.
        cover = float(_front_density(p, np.append(x + m * _AROUND.real, x),
                                     np.append(y + m * _AROUND.imag, y)).max())
        if cover <= 0.05:
            return x, y
        if cover < best_cover:
            best, best_cover = (x, y), cover
    return best


_DEVICES = ("ecg", "ett", "cvc", "enteric", "pacemaker")
_DEVICE_P = (0.6, 0.3, 0.35, 0.25, 0.12)


def _sample_study(rng: np.random.Generator, p: _Patient, positive: bool) -> _Study:
    st = _Study(
        positive=positive,
        tx=_u(rng, -0.05, 0.05),
        ty=_u(rng, -0.04, 0.06),
        scale=_u(rng, 0.86, 1.02),
        rot=math.radians(_u(rng, -5, 5)),
        inspiration=_u(rng, -0.05, 0.06),
        lo=_u(rng, -0.08, 0.06),
        hi=_u(rng, 0.95, 1.2),
        gamma=float(np.exp(rng.normal(0.0, 0.18))),
        noise=_u(rng, 0.008, 0.03),
        cardiomegaly=p.cardiomegaly,
    )
    zone_names = list(LESION_ZONES)
    if positive:
        st.zone = zone_names[int(rng.choice(len(zone_names), p=_ZONE_WEIGHTS))]
        side, level = LESION_ZONES[st.zone]
        medial = True if level == "middle" else None
        r = float(np.exp(rng.uniform(np.log(0.05), np.log(0.19))))
        st.centre = _lung_point(rng, p, st, side, level, medial, margin=0.5 * r + 0.02)
        st.radii = (r * _u(rng, 0.8, 1.3), r * _u(rng, 0.7, 1.1))
        st.angle = _u(rng, 0, math.pi)
        # Faintness: a skewed draw keeps a share of hard, faint cases.
        st.contrast = float(0.12 + 0.78 * rng.beta(1.6, 1.3))
        st.bronchograms = bool(r > 0.08 and st.contrast > 0.45 and rng.random() < 0.6)
        st.location = _zone_phrase(rng, st.zone)
    elif rng.random() < 0.12:
        st.resolved_zone = zone_names[int(rng.choice(len(zone_names), p=_ZONE_WEIGHTS))]

    if rng.random() < _P_EFFUSION:
        sides = ["right", "left"] if rng.random() < 0.2 else [str(rng.choice(["right", "left"]))]
        st.effusion = [(side, _u(rng, 0.05, 0.26)) for side in sides]
    if rng.random() < _P_ATELECTASIS:
        side = str(rng.choice(["right", "left"]))
        level = "lower" if rng.random() < 0.75 else "middle"
        x, y = _lung_point(rng, p, st, side, level, None, margin=0.06)
        st.atelectasis = (side, level, x, y, _u(rng, 0.12, 0.26), _u(rng, 0.010, 0.02),
                          math.radians(_u(rng, -18, 18)))
    if rng.random() < _P_NODULE:
        side = str(rng.choice(["right", "left"]))
        level = str(rng.choice(["upper", "middle", "lower"]))
        x, y = _lung_point(rng, p, st, side, level, None, margin=0.05)
        st.nodule = (side, level, x, y, _u(rng, 0.016, 0.035))
    if rng.random() < _P_DEVICES:
        st.devices = [d for d, q in zip(_DEVICES, _DEVICE_P) if rng.random() < q] or ["ecg"]
        st.ett_cm = int(rng.integers(2, 7))
    return st


# --------------------------------------------------------------------------------------------
# Rendering (vectorised over the pixel grid)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _base_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    return np.meshgrid(c, c)  # X varies along columns, Y along rows


@functools.lru_cache(maxsize=64)
def _smoothing_matrix(n: int, spacing: float) -> np.ndarray:
    """(n, k) Gaussian interpolation weights from k random knots ``spacing`` pixels apart.

    Rows are normalised so that the interpolated noise has unit variance everywhere. The first
    m rows and ``ceil(m / spacing) + 4`` columns are the matrix for m pixels, so one cached
    matrix per spacing serves every crop size.
    """
    k = int(math.ceil(n / spacing)) + 4
    centres = (np.arange(k) - 2.0) * spacing
    pos = np.arange(n) + 0.5
    w = np.exp(-0.5 * ((pos[:, None] - centres[None, :]) / (0.6 * spacing)) ** 2)
    w /= np.sqrt((w**2).sum(axis=1, keepdims=True))
    return w.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], spacing: float) -> np.ndarray:
    """Band-limited Gaussian noise with unit variance and blobs about ``spacing`` pixels apart.

    Interpolating a small grid of random knots with two small matrix products costs far less
    than filtering a full-size white-noise image.
    """
    spacing = max(2.0, round(2.0 * spacing) / 2.0)  # a few cached matrices serve all studies
    h, w = int(shape[0]), int(shape[1])
    full = _smoothing_matrix(1 << max(6, (max(h, w) - 1).bit_length()), spacing)
    mh = full[:h, : int(math.ceil(h / spacing)) + 4]
    mw = full[:w, : int(math.ceil(w / spacing)) + 4]
    g = rng.standard_normal((mh.shape[1], mw.shape[1]), dtype=np.float32)
    return (mh @ g) @ mw.T


def _pixel_box(p: "_Patient", st: "_Study", size: int, x0: float, x1: float, y0: float,
               y1: float) -> tuple[slice, slice]:
    """Pixel rows and columns covering an anatomical rectangle (plus a margin)."""
    r, c = _to_pixels(st, p, np.array([x0, x0, x1, x1]), np.array([y0, y1, y0, y1]), size)
    r0, r1 = max(0, int(math.floor(r.min())) - 2), min(size, int(math.ceil(r.max())) + 3)
    c0, c1 = max(0, int(math.floor(c.min())) - 2), min(size, int(math.ceil(c.max())) + 3)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _ramp(d, width):
    """Soft step from 0 (d << 0) to 1 (d >> 0) over ``width`` (cheaper than a sigmoid)."""
    return np.clip(0.5 + d * (0.5 / width), 0.0, 1.0)


def _to_pixels(st: _Study, p: _Patient, x: np.ndarray, y: np.ndarray, size: int):
    """Anatomical -> pixel (row, col) coordinates: the inverse of the grid transform."""
    c, s = math.cos(st.rot), math.sin(st.rot)
    xs, ys = x * st.scale, y * st.scale * p.aspect
    xn = c * xs - s * ys + st.tx
    yn = s * xs + c * ys + st.ty
    return (yn + 1.0) * (size / 2.0) - 0.5, (xn + 1.0) * (size / 2.0) - 0.5


def _bezier(points: list[tuple[float, float]], n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 3:
        out = (1 - t) ** 2 * pts[0] + 2 * (1 - t) * t * pts[1] + t**2 * pts[2]
    else:
        out = ((1 - t) ** 3 * pts[0] + 3 * (1 - t) ** 2 * t * pts[1]
               + 3 * (1 - t) * t**2 * pts[2] + t**3 * pts[3])
    return out[:, 0], out[:, 1]


def _device_layer(rng, p: _Patient, st: _Study, size: int) -> np.ndarray:
    """Thin radio-opaque lines and circles, splatted on the pixel grid then blurred once."""
    xs, ys, ws = [], [], []
    n = 4 * size

    def add(x, y, weight):
        xs.append(x)
        ys.append(y)
        ws.append(np.full(len(x), weight))

    hx, hy = p.heart[0], p.heart[1]
    if "ecg" in st.devices:
        for _ in range(int(rng.integers(3, 6))):
            cx, cy = _u(rng, -0.8, 0.8), _u(rng, -0.8, 0.7)
            r = _u(rng, 0.022, 0.032)
            a = np.linspace(0, 2 * np.pi, n // 4)
            add(cx + r * np.cos(a), cy + r * np.sin(a), 0.9)
            add(cx + 0.25 * r * np.cos(a), cy + 0.25 * r * np.sin(a), 1.2)
            ex = float(np.sign(cx) or 1.0) * _u(rng, 0.9, 1.3)
            bx, by = _bezier([(cx, cy), (_u(rng, -0.5, 0.5), _u(rng, -0.6, 0.9)),
                              (ex, _u(rng, -1.1, 1.1))], n)
            add(bx, by, 0.5)
    if "ett" in st.devices:
        tip = -0.35 - 0.03 * st.ett_cm
        for off in (-0.018, 0.018):
            bx, by = _bezier([(p.spine_x + off, -1.2), (p.spine_x + off + 0.01, -0.8),
                              (p.spine_x + off, tip)], n // 2)
            add(bx, by, 0.8)
    if "cvc" in st.devices:
        bx, by = _bezier([(-0.55, -1.1), (-0.35, -0.8), (-0.12, -0.55),
                          (-0.06, _u(rng, -0.25, -0.05))], n)
        add(bx, by, 1.0)
    if "enteric" in st.devices:
        bx, by = _bezier([(p.spine_x - 0.01, -1.2), (p.spine_x + 0.03, 0.2),
                          (0.12, 0.9), (_u(rng, 0.3, 0.45), _u(rng, 0.65, 0.8))], 2 * n)
        add(bx, by, 0.9)
    if "pacemaker" in st.devices:
        gx, gy = _u(rng, 0.45, 0.6), _u(rng, -0.72, -0.6)
        u, v = np.meshgrid(np.linspace(-0.09, 0.09, n // 8), np.linspace(-0.06, 0.06, n // 12))
        add((gx + u).ravel(), (gy + v).ravel(), 0.45)
        for end in ((hx - 0.1, hy - 0.05), (hx + 0.05, hy + 0.1)):
            bx, by = _bezier([(gx, gy), (0.1, -0.5), (-0.05, -0.1), end], n)
            add(bx, by, 1.0)
    layer = np.zeros((size, size), dtype=np.float32)
    if not xs:
        return layer
    r, c = _to_pixels(st, p, np.concatenate(xs), np.concatenate(ys), size)
    r, c = np.rint(r).astype(np.intp), np.rint(c).astype(np.intp)
    ok = (r >= 0) & (r < size) & (c >= 0) & (c < size)
    if not ok.any():
        return layer
    r, c = r[ok], c[ok]
    layer += np.bincount(r * size + c, weights=np.concatenate(ws)[ok],
                         minlength=size * size).reshape(size, size).astype(np.float32)
    # One blur for all devices, over their bounding box only; the weight keeps lines about as
    # bright at any image size.
    sigma = max(0.6, 0.7 * size / 224)
    pad = int(math.ceil(4 * sigma))
    b = (slice(max(0, r.min() - pad), r.max() + pad + 1),
         slice(max(0, c.min() - pad), c.max() + pad + 1))
    layer[b] = ndimage.gaussian_filter(layer[b], sigma)
    return np.minimum(layer * (0.22 * sigma / (0.25 * n / size)), 0.35)


def _render_study(p: _Patient, st: _Study, size: int, rng: np.random.Generator):
    """Draw one study. Returns (uint8 image, bool lesion mask, bool lung mask).

    Separate random streams for the background, the lesion, the devices and the detector keep
    a study's background identical whether or not a lesion is drawn on it.
    """
    tex_rng, les_rng, dev_rng, det_rng = rng.spawn(4)
    X0, Y0 = _base_grid(size)
    e = 2.4 / size  # soft-edge width: about one pixel
    # pixel -> anatomical coordinates
    c, s = math.cos(st.rot), math.sin(st.rot)
    xn, yn = X0 - st.tx, Y0 - st.ty
    x = (c * xn + s * yn) / st.scale
    y = (-s * xn + c * yn) / (st.scale * p.aspect)

    # Structures are drawn inside their own pixel boxes: most of them cover a small part of
    # the image, and the crops halve the time per study.
    def box(x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
        return _pixel_box(p, st, size, x0, x1, y0, y1)

    # Body: barrel-shaped chest wall whose projected thickness falls off to the sides, shoulders
    # flaring out at the top, and in some patients the arms beside the chest.
    yy = y - 0.1
    chest_w = p.body_w * (1.0 - 0.07 * yy * yy)
    bw = chest_w + 0.5 * _ramp(-0.68 - y, 0.16)
    body = _ramp(bw - np.abs(x), 2 * e)
    thick = np.sqrt(np.clip(1.0 - (x / (bw + 0.04)) ** 2, 0.0, 1.0))
    A = body * (0.26 + 0.34 * thick)
    if p.arm_gap:
        for sgn in (-1.0, 1.0):
            b = box(sgn * 0.75, sgn * 3.0, -3.0, 0.45)
            d_arm = np.abs(x[b]) - chest_w[b] - p.arm_gap
            arm = _ramp(d_arm, 2 * e) * _ramp(0.28 - d_arm, 2 * e) * _ramp(0.1 - y[b], 0.25)
            humerus = np.exp(-(((d_arm - 0.14) / 0.045) ** 2)) * _ramp(-0.25 - y[b], 0.2)
            A[b] += arm * (0.42 + 0.16 * humerus)

    # Lungs, closed below by the domed hemidiaphragms (one box per lung).
    H = p.cp_y + st.inspiration - p.apex_y
    lung_boxes = [box(sgn * p.lung_cx - p.lung_hw - 0.01, sgn * p.lung_cx + p.lung_hw + 0.01,
                      p.apex_y - 0.01, p.cp_y + st.inspiration + 0.05) for sgn in (-1.0, 1.0)]
    lungs = [np.zeros((size, size), np.float32), np.zeros((size, size), np.float32)]
    for k, sgn in enumerate((-1.0, 1.0)):
        b = lung_boxes[k]
        xs, ys = x[b], y[b]
        t = (ys - p.apex_y) / H
        inside = _ramp(_lung_half_width(p, t) - np.abs(xs - sgn * p.lung_cx), e)
        inside *= _ramp(t, e / H)
        inside *= _ramp(_diaphragm_y(p, xs, st.inspiration) - ys, e)
        lungs[k][b] = inside
    lung = lungs[0] + lungs[1]

    # Dense water-density structures: heart, mediastinum, aortic knob and the abdomen below the
    # domes. Taking their maximum merges the heart into the diaphragm as on a real film.
    front = np.zeros((size, size), np.float32)
    hcx, hcy, hrx, hry, _ = p.heart
    hr = max(hrx, hry) + 0.02
    b = box(hcx - hr, hcx + hr, hcy - hr, hcy + hr)
    front[b] = _heart_density(p, x[b], y[b], e)
    b = box(p.spine_x - 0.22, p.spine_x + 0.24, -3.0, 0.45)
    front[b] = np.maximum(front[b], _mediastinum_density(p, x[b], y[b], e))
    b = box(p.spine_x - 0.05, p.spine_x + 0.25, -0.45, -0.15)
    front[b] = np.maximum(front[b], _aorta_density(p, x[b], y[b]))
    dense = front.copy()
    b = box(-3.0, 3.0, min(p.dome) + st.inspiration - 0.03, 3.0)
    xs, ys = x[b], y[b]
    dense[b] = np.maximum(dense[b], _ramp(ys - _diaphragm_y(p, xs, st.inspiration), e))
    A += 0.27 * dense * body

    # Air is darkest in the middle of a lung and in its upper part; a mottled parenchyma;
    # vessels radiating from the hila, fading to the periphery, and the hilar shadows.
    # The air actually seen; findings fill a share of it, so a lung can never become denser
    # than soft tissue however many findings overlap.
    lung_air = np.zeros((size, size), np.float32)
    for k, sgn in enumerate((-1.0, 1.0)):
        b = lung_boxes[k]
        xs, ys, lk, fr = x[b], y[b], lungs[k][b], front[b]
        t = np.clip((ys - p.apex_y) / H, 0.0, 1.0)
        depth = 0.75 + 0.25 * np.sqrt(np.clip(1.0 - ((xs - sgn * p.lung_cx) / p.lung_hw) ** 2,
                                              0.0, 1.0))
        air = 0.36 * lk * depth * (1.0 - 0.12 * t) * (1.0 - 0.88 * fr)
        texture = (1.0 + 0.06 * _smooth_noise(tex_rng, xs.shape, size / 8)
                   + 0.05 * _smooth_noise(tex_rng, xs.shape, 9.0 * size / 224))
        hx, hy = sgn * 0.17 + p.spine_x, -0.04
        r = np.hypot(xs - hx, ys - hy)
        th = np.arctan2(ys - hy, (xs - hx) * sgn)
        ph = tex_rng.uniform((0.0, 0.0, 4.0, 19.0), (2 * np.pi, 2 * np.pi, 7.0, 27.0))
        # Thin, wavy bright lines: a high power of a cosine (by squaring, cheaper than **).
        pat = 0.5 + 0.5 * np.cos(ph[3] * th + 2.5 * np.sin(ph[2] * r + ph[0]) + ph[1])
        pat *= pat
        pat *= pat
        pat *= pat
        vessels = (pat * np.exp(-r / 0.3) + 0.8 * np.exp(-((r / 0.075) ** 2))) * lk
        air *= texture
        lung_air[b] += air
        A[b] += 0.1 * vessels * (1.0 - 0.88 * fr) - air
    lung_vis = lung * (1.0 - 0.88 * front)

    # Trachea (air column) and spine with disc spaces, seen through the mediastinum.
    b = box(p.spine_x - 0.05, p.spine_x + 0.05, -3.0, -0.2)
    trachea = _ramp(0.026 - np.abs(x[b] - p.spine_x), e) * _ramp(-0.28 - y[b], 0.04)
    A[b] -= 0.07 * trachea * body[b]
    b = box(p.spine_x - 0.08, p.spine_x + 0.08, -3.0, 3.0)
    spine = _ramp(0.058 - np.abs(x[b] - p.spine_x), e)
    spine *= 0.8 + 0.2 * np.cos((2 * np.pi / 0.105) * (y[b] - p.rib_phase))
    A[b] += 0.07 * spine * body[b]

    # Posterior ribs (flat near the spine, curving down at the chest wall) and fainter anterior
    # ribs (falling medially), visible within the thoracic cage.
    cage_w = p.lung_cx + p.lung_hw + 0.07
    b = box(-cage_w - 0.05, cage_w + 0.05, -0.97, p.cp_y + 0.4)
    xs, ys = x[b], y[b]
    a = np.abs(xs - p.spine_x)
    cage = _ramp(cage_w - a, 0.03) * _ramp(ys + 0.92, 0.04) * _ramp(p.cp_y + 0.25 - ys, 0.1)
    phase = (ys + 0.1 * a - p.rib_curve * a * a * a) * (2 * np.pi / p.rib_spacing)
    post = np.clip((np.cos(phase - 2 * np.pi * p.rib_phase) - 0.15) * (1 / 0.85), 0.0, 1.0)
    phase2 = (ys + 0.55 * a) * (2 * np.pi / (1.3 * p.rib_spacing)) - 2 * np.pi * p.rib_phase
    ant = np.clip((np.cos(phase2) - 0.4) * (1 / 0.6), 0.0, 1.0) * _ramp(a - 0.3, 0.1)
    rib_vis = (0.3 + 0.7 * lung_vis[b]) * (1.0 - 0.8 * dense[b]) * _ramp(a - 0.07, 0.03) * cage
    A[b] += rib_vis * (0.08 * post + 0.035 * ant)

    # Clavicles: from the sternal end up and out to the shoulder.
    b = box(-0.75, 0.75, p.clavicle_y - 0.3, p.clavicle_y + 0.12)
    ca = np.abs(x[b] - p.spine_x) - 0.06
    cy = p.clavicle_y - 0.3 * ca + 0.2 * ca * ca
    clav = np.exp(-(((y[b] - cy) / 0.042) ** 2)) * _ramp(ca, 0.02) * _ramp(0.62 - ca, 0.05)
    A[b] += 0.15 * clav * body[b]

    # Breast shadows over the lower lateral lung zones.
    if p.breasts:
        for sgn in (-1.0, 1.0):
            b = box(sgn * 0.5 - 0.45, sgn * 0.5 + 0.45, 0.15, 1.0)
            rr = np.hypot((x[b] - sgn * 0.5) / 0.38, (y[b] - 0.62) / 0.32)
            A[b] += p.breasts * _ramp(1.0 - rr, 0.15) * _ramp(y[b] - 0.25, 0.1)

    # Gastric bubble under the left hemidiaphragm.
    if p.bubble:
        bx = p.lung_cx + 0.02
        b = box(bx - 0.15, bx + 0.15, p.dome[1] + st.inspiration - 0.05, p.cp_y + 0.35)
        xs, ys = x[b], y[b]
        dome_l = _dome_y(p, 1, xs, st.inspiration)
        bub = _ramp(1.0 - np.hypot((xs - bx) / 0.11, (ys - dome_l - 0.1) / 0.06), 0.2)
        A[b] -= 0.12 * bub * _ramp(ys - dome_l - 0.02, e)

    # ---- Findings ----
    lesion_mask = np.zeros((size, size), dtype=bool)
    fill = np.zeros((size, size), np.float32)  # share of the lung air replaced by findings
    if st.positive:
        lx, ly = st.centre
        reach = 2.05 * max(st.radii)
        rs, cs = _pixel_box(p, st, size, lx - reach, lx + reach, ly - reach, ly + reach)
        xs, ys = x[rs, cs], y[rs, cs]
        ca_, sa_ = math.cos(st.angle), math.sin(st.angle)
        u = ((xs - lx) * ca_ + (ys - ly) * sa_) / st.radii[0]
        v = (-(xs - lx) * sa_ + (ys - ly) * ca_) / st.radii[1]
        d2 = u * u + v * v
        # Smoothed noise makes the outline irregular; it fades towards the centre so that the
        # core of the lesion is always there.
        spacing = size / min(max(4.0, 2.2 / st.radii[0]), size / 3.0)
        noise = _smooth_noise(les_rng, xs.shape, spacing)
        field_ = np.exp(-0.8 * d2) + 0.45 * noise * (1.0 - np.exp(-1.5 * d2))
        dens = _ramp(field_ - 0.45, 0.22) * _ramp(4.0 - d2, 1.0)
        # Patchy airspace filling.
        fine = _smooth_noise(les_rng, xs.shape, max(3.0, size / 32))
        dens = dens * np.clip(0.75 + 0.4 * fine, 0.35, 1.0)
        if st.bronchograms:
            hxs = _side_sign(LESION_ZONES[st.zone][0]) * 0.17
            ang = math.atan2(ly + 0.04, lx - hxs)
            for da in (0.0, _u(les_rng, 0.35, 0.6) * (1 if les_rng.random() < 0.5 else -1)):
                cb, sb = math.cos(ang + da), math.sin(ang + da)
                along = (xs - lx) * cb + (ys - ly) * sb
                across = -(xs - lx) * sb + (ys - ly) * cb
                tube = np.exp(-((across / 0.009) ** 2)) * _ramp(along + 0.8 * st.radii[0], 0.03)
                tube *= _ramp(0.7 * st.radii[0] - along, 0.03)
                dens = dens * (1.0 - 0.7 * tube)
        fill[rs, cs] = st.contrast * dens
        # The mask keeps the lesion's pixels in the visible lung: a consolidation hidden
        # behind the heart or the mediastinum is not something a model can point at.
        seen = lung[rs, cs] * (1.0 - front[rs, cs])
        box_mask = (dens > 0.3) & (seen > 0.5)
        if not box_mask.any() and box_mask.size:
            # Tiny images: the lesion can fall between pixel centres; keep its strongest pixel.
            weight = dens * seen if (dens * seen).max() > 0 else dens * lung[rs, cs]
            box_mask.flat[int(np.argmax(weight))] = True
        lesion_mask[rs, cs] = box_mask

    for side, h in st.effusion:
        k = 0 if side == "right" else 1
        sgn = _side_sign(side)
        lat = np.clip(sgn * (x - sgn * p.lung_cx) / p.lung_hw, -1.0, 1.0)  # 1 at the chest wall
        level = p.cp_y + st.inspiration - h * (0.55 + 0.45 * lat)  # meniscus rises laterally
        fluid = _ramp(y - level, 0.03) * lungs[k]
        fill = np.maximum(fill, 0.85 * fluid)

    if st.atelectasis is not None:
        side, _, ax0, ay0, length, thick_, ang = st.atelectasis
        reach = 0.5 * length + 0.05
        rs, cs = _pixel_box(p, st, size, ax0 - reach, ax0 + reach, ay0 - reach, ay0 + reach)
        xs, ys = x[rs, cs], y[rs, cs]
        cb, sb = math.cos(ang), math.sin(ang)
        along = (xs - ax0) * cb + (ys - ay0) * sb
        across = -(xs - ax0) * sb + (ys - ay0) * cb
        band = np.exp(-((across / thick_) ** 2)) * _ramp(0.5 * length - np.abs(along), 0.04)
        fill[rs, cs] = np.maximum(fill[rs, cs], 0.7 * band)

    if st.nodule is not None:
        _, _, nx_, ny_, nr = st.nodule
        rs, cs = _pixel_box(p, st, size, nx_ - nr, nx_ + nr, ny_ - nr, ny_ + nr)
        rr = np.hypot(x[rs, cs] - nx_, y[rs, cs] - ny_) / nr
        fill[rs, cs] = np.maximum(fill[rs, cs], 0.65 * np.sqrt(np.clip(1.0 - rr * rr, 0.0, 1.0)))

    A += fill * lung_air

    if st.devices:
        A += _device_layer(dev_rng, p, st, size)

    # ---- Exposure and detector ----
    # Smooth shading and a slight tilt of exposure across the film (heel effect).
    A += 0.035 * _smooth_noise(det_rng, (size, size), size / 3)
    A += float(det_rng.uniform(-0.04, 0.04)) * X0 + float(det_rng.uniform(-0.05, 0.05)) * Y0
    # Every edge above is already about a pixel soft, so no anti-aliasing blur is needed.
    img = (A - st.lo) * (1.0 / (st.hi - st.lo))
    # Gamma through a lookup table: far cheaper than a power per pixel.
    lut = np.linspace(0.0, 1.0, 4096, dtype=np.float32) ** np.float32(st.gamma)
    img = lut[(np.clip(img, 0.0, 1.0) * 4095.0 + 0.5).astype(np.intp)]
    # Uniform noise with the same standard deviation looks the same and is six times cheaper
    # to draw than Gaussian noise.
    img += (st.noise * math.sqrt(12.0)) * (det_rng.random((size, size), dtype=np.float32) - 0.5)
    image = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image, lesion_mask, lung > 0.5


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------

_ZONE_PHRASES = {
    "right upper lobe": ["right upper lobe", "right upper zone", "right upper lung",
                         "right upper lung zone", "right apical region"],
    "right middle lobe": ["right middle lobe", "right mid lung zone", "right mid lung",
                          "right middle lobe, along the right heart border"],
    "right lower lobe": ["right lower lobe", "right lung base", "right lower zone",
                         "right base", "right basilar region", "right lower lung"],
    "left upper lobe": ["left upper lobe", "left upper zone", "left upper lung",
                        "left upper lung zone", "left apical region"],
    "lingula": ["lingula", "lingular segment", "left mid lung zone", "left mid lung"],
    "left lower lobe": ["left lower lobe", "left lung base", "left lower zone", "left base",
                        "left basilar region", "left lower lung"],
}
_LEVEL_PHRASES = {
    ("right", "upper"): "right upper lobe", ("right", "middle"): "right middle lobe",
    ("right", "lower"): "right lower lobe", ("left", "upper"): "left upper lobe",
    ("left", "middle"): "lingula", ("left", "lower"): "left lower lobe",
}
_OPACITY = ["airspace opacity", "consolidation", "airspace consolidation", "patchy opacity",
            "ill-defined opacity", "focal opacity", "patchy consolidation", "opacification",
            "airspace disease", "infiltrate"]
# Words that read badly after "a" / "an".
_MASS_NOUNS = {"airspace consolidation", "patchy consolidation", "opacification",
               "airspace disease"}
# "Right lower lobe pneumonia", "Lingular pneumonia".
_ZONE_ADJECTIVE = {z: z for z in LESION_ZONES} | {"lingula": "lingular"}
_FAINT = ["subtle", "faint", "hazy", "mild", "ill-defined", "vague"]


def _zone_phrase(rng: np.random.Generator, zone: str) -> str:
    options = _ZONE_PHRASES[zone]
    # The canonical lobe name is the commonest wording.
    return zone if rng.random() < 0.45 else str(rng.choice(options))


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _a(noun: str) -> str:
    """``noun`` with its indefinite article, or bare for a mass noun."""
    return noun if noun in _MASS_NOUNS else f"{_article(noun)} {noun}"


def _write_report(rng: np.random.Generator, st: _Study) -> str:
    findings: list[str] = []
    impression: list[str] = []

    # Devices first, as radiologists usually do.
    dev_text = {
        "ett": [f"Endotracheal tube terminates approximately {st.ett_cm} cm above the carina.",
                f"ET tube in standard position, {st.ett_cm} cm above the carina.",
                f"The endotracheal tube tip is {st.ett_cm} cm from the carina."],
        "cvc": ["Right internal jugular central venous catheter terminates in the mid SVC.",
                "Right-sided central line with tip in the lower SVC.",
                "A right central venous catheter tip projects over the SVC."],
        "enteric": ["Enteric tube courses below the diaphragm with the tip in the stomach.",
                    "Nasogastric tube tip is in the stomach.",
                    "An orogastric tube passes below the diaphragm, out of view."],
        "ecg": ["EKG leads overlie the chest.", "Cardiac monitoring leads are noted.",
                "External monitoring leads project over the thorax."],
        "pacemaker": ["Left-sided pacemaker with leads in the right atrium and right ventricle.",
                      "Left chest wall dual-chamber pacemaker, leads in expected position.",
                      "A left pectoral cardiac device is present with intact leads."],
    }
    for d in st.devices:
        findings.append(_pick(rng, dev_text[d]))

    body: list[str] = []
    faint = st.positive and st.contrast < 0.35
    if st.positive:
        loc = st.location
        op = _pick(rng, _OPACITY)
        if faint:
            q = _pick(rng, _FAINT)
            sent = _pick(rng, [
                f"There is {'' if op in _MASS_NOUNS else _article(q) + ' '}{q} {op} in the {loc}.",
                f"{_cap(q)} {op} projects over the {loc}.",
                f"{_cap(q)} increased opacity in the {loc}.",
                f"Possible {q} {op} in the {loc}.",
            ])
        else:
            sent = _pick(rng, [
                f"There is {_a(op)} in the {loc}.",
                f"{_cap(op)} is seen in the {loc}.",
                f"New {op} in the {loc}.",
                f"Focal consolidation is present in the {loc}.",
                f"Dense {op} in the {loc}.",
                f"{_cap(_a(op))} involves the {loc}.",
            ])
        if st.bronchograms and rng.random() < 0.7:
            sent = sent[:-1] + " with air bronchograms."
        body.append(sent)
        if st.atelectasis is None and st.nodule is None:
            body.append(_pick(rng, ["The remaining lungs are clear.", "The other lung is clear.",
                                    "Elsewhere the lungs are clear.", ""]))
    if st.atelectasis is not None:
        side, level = st.atelectasis[0], st.atelectasis[1]
        where = (f"{side} lung base" if level == "lower" else f"{side} mid lung")
        body.append(_pick(rng, [
            f"Linear opacity at the {where} likely reflects subsegmental atelectasis.",
            f"Plate-like atelectasis in the {where}.",
            f"Minimal {side} {'basilar' if level == 'lower' else 'mid lung'} atelectasis.",
            f"Streaky opacity in the {where}, compatible with atelectasis.",
        ]))
    if st.nodule is not None:
        mm = max(4, int(round(st.nodule[4] * 190)))
        loc_n = _zone_phrase(rng, _LEVEL_PHRASES[(st.nodule[0], st.nodule[1])])
        body.append(_pick(rng, [
            f"A {mm} mm nodular opacity projects over the {loc_n}.",
            f"{mm}-mm nodule in the {loc_n}.",
            f"There is a {mm} mm well-circumscribed nodule in the {loc_n}.",
        ]))
    if not st.positive:
        others = st.atelectasis is not None or st.nodule is not None
        if st.resolved_zone:
            body.append(_pick(rng, [
                f"Previously noted {_zone_phrase(rng, st.resolved_zone)} opacity has resolved.",
                f"Interval resolution of the {_zone_phrase(rng, st.resolved_zone)} "
                "consolidation.",
            ]))
        clear = (["Lungs are otherwise clear.", "No focal consolidation.",
                  "No other focal airspace opacity.", "The lungs are otherwise clear."]
                 if others else
                 ["The lungs are clear.", "Lungs are clear without focal consolidation.",
                  "No focal consolidation.", "There is no focal airspace consolidation.",
                  "No focal opacity to suggest pneumonia.",
                  "The lungs are well expanded and clear.",
                  "No consolidation."])
        body.append(_pick(rng, clear))

    # Pleura.
    if st.effusion:
        size_word = lambda h: "small" if h < 0.15 else "moderate"  # noqa: E731
        if len(st.effusion) == 2:
            body.append(_pick(rng, ["Small bilateral pleural effusions.",
                                    "Bilateral pleural effusions with blunting of both "
                                    "costophrenic angles."]))
        else:
            side, h = st.effusion[0]
            body.append(_pick(rng, [
                f"{_cap(size_word(h))} {side} pleural effusion.",
                f"Blunting of the {side} costophrenic angle, consistent with a "
                f"{size_word(h)} effusion.",
                f"{_cap(size_word(h))} {side} pleural effusion with a basilar meniscus.",
            ]))
        body.append(_pick(rng, ["No pneumothorax.", "There is no pneumothorax.", ""]))
    else:
        body.append(_pick(rng, ["No pleural effusion or pneumothorax.",
                                "There is no pleural effusion or pneumothorax.",
                                "No pleural effusion. No pneumothorax.",
                                "Costophrenic angles are sharp.",
                                "No pleural effusion.", ""]))

    # Heart.
    if st.cardiomegaly:
        body.append(_pick(rng, ["The heart is enlarged.", "Moderate cardiomegaly.",
                                "Cardiac silhouette is enlarged.", "Heart size is enlarged.",
                                "Stable cardiomegaly."]))
    else:
        body.append(_pick(rng, ["Heart size is normal.",
                                "The cardiomediastinal silhouette is within normal limits.",
                                "Normal heart size.", "Cardiac and mediastinal contours are "
                                "normal.", "The heart is not enlarged."]))
    body.append(_pick(rng, ["No acute osseous abnormality.", "Osseous structures are intact.",
                            "", "", ""]))
    # Radiologists vary the order of the lung / pleura / heart statements.
    if rng.random() < 0.35:
        body = body[-2:] + body[:-2]
    findings.extend(s for s in body if s)

    # ---- Impression ----
    if st.positive:
        loc2 = st.location if rng.random() < 0.6 else _zone_phrase(rng, st.zone)
        op = _pick(rng, _OPACITY)
        if faint:
            impression.append(_pick(rng, [
                f"Subtle {loc2} opacity; early pneumonia cannot be excluded.",
                f"Possible early pneumonia in the {loc2}.",
                f"Faint opacity in the {loc2} may represent early infection in the "
                "appropriate clinical setting.",
                f"Cannot exclude early infection in the {loc2}.",
                f"Questionable {op} in the {loc2}, which could reflect an early pneumonia.",
            ]))
        else:
            impression.append(_pick(rng, [
                f"{_cap(_ZONE_ADJECTIVE[st.zone])} pneumonia.",
                f"{_cap(op)} in the {loc2}, consistent with pneumonia.",
                f"{_cap(op)} in the {loc2}, consistent with infection.",
                f"Findings compatible with pneumonia in the {loc2}.",
                f"{_cap(op)} in the {loc2} concerning for pneumonia.",
                f"{_cap(op)} in the {loc2}, likely infectious.",
                f"{_cap(loc2)} consolidation compatible with an infectious process.",
            ]))
    if st.effusion:
        impression.append("Bilateral pleural effusions." if len(st.effusion) == 2 else
                          f"{_cap(st.effusion[0][0])} pleural effusion.")
    if st.cardiomegaly and rng.random() < 0.7:
        impression.append(_pick(rng, ["Cardiomegaly.", "Enlarged cardiac silhouette."]))
    if st.nodule is not None:
        impression.append(_pick(rng, [
            "Pulmonary nodule; nonemergent CT is recommended for further evaluation.",
            "Nodule as described; recommend chest CT.",
        ]))
    if not st.positive:
        if st.atelectasis is not None and rng.random() < 0.6:
            side = st.atelectasis[0]
            impression.append(_pick(rng, [
                f"{_cap(side)} basilar opacity most likely atelectasis; pneumonia is less likely.",
                f"Atelectasis at the {side} base. No convincing evidence of pneumonia.",
                f"Linear {side} opacity, favoring atelectasis over infection.",
            ]))
        else:
            impression.append(_pick(rng, [
                "No acute cardiopulmonary process.", "No evidence of pneumonia.",
                "No acute intrathoracic abnormality.", "No radiographic evidence of pneumonia.",
                "No focal consolidation to suggest pneumonia.",
                "No acute cardiopulmonary abnormality.",
                "No evidence of acute disease.",
            ]))
    if st.devices and rng.random() < 0.5:
        impression.append("Support devices as described.")

    if len(impression) > 1 and rng.random() < 0.5:
        imp_text = " ".join(f"{i + 1}. {s}" for i, s in enumerate(impression))
    else:
        imp_text = " ".join(impression)

    header = []
    if rng.random() < 0.5:
        header.append("INDICATION: " + _pick(rng, [
            "Cough.", "Shortness of breath.", "Fever, evaluate for pneumonia.", "Chest pain.",
            "Preoperative evaluation.", "___-year-old with dyspnea.", "Follow-up.",
            "Hypoxia.", "Cough and fever."]))
    if rng.random() < 0.4:
        header.append("COMPARISON: " + _pick(rng, ["None.", "___.", "Chest radiograph from ___."]))
    return "\n".join(header + ["FINDINGS: " + " ".join(findings), "IMPRESSION: " + imp_text])
