"""Patients and studies of the synthetic set: their anatomy, findings and where they sit.

Everything here is in "anatomical" coordinates (x from -1 at the image left to 1 at the image
right, y from -1 at the top to 1 at the bottom) before a study's position, scale and rotation
are applied; :func:`to_pixels` applies them. The patient's right is the image LEFT (PA view).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Canonical pneumonia zones, as ``(side, level)``; side is the patient's side.
LESION_ZONES: dict[str, tuple[str, str]] = {
    "right upper lobe": ("right", "upper"),
    "right middle lobe": ("right", "middle"),
    "right lower lobe": ("right", "lower"),
    "left upper lobe": ("left", "upper"),
    "lingula": ("left", "middle"),
    "left lower lobe": ("left", "lower"),
}
#: The findings a study can be labelled with (and has a mask for), in CheXpert spelling.
FINDINGS = ("pneumonia", "pleural-effusion", "cardiomegaly")

# Lower lobes are the commonest site of community-acquired pneumonia.
_ZONE_WEIGHTS = np.array([0.13, 0.14, 0.25, 0.13, 0.10, 0.25])

# Vertical extent of each level, as a fraction of the apex -> costophrenic-angle height.
_LEVEL_T = {"upper": (0.12, 0.36), "middle": (0.38, 0.62), "lower": (0.66, 0.93)}

# Rates of the distractor findings; they are drawn independently of the label.
# Effusion and cardiomegaly are findings to predict when asked (then ``prevalence`` is their rate).
P_CARDIOMEGALY = 0.18  # per patient: a chronic finding, shared by all of a patient's studies
P_EFFUSION = 0.15
_P_ATELECTASIS = 0.18
_P_NODULE = 0.12
_P_DEVICES = 0.22
_P_BREASTS = 0.45  # per patient


@dataclass
class Patient:
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
class Study:
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


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_patient(rng: np.random.Generator, p_cardiomegaly: float = P_CARDIOMEGALY) -> Patient:
    cardiomegaly = bool(rng.random() < p_cardiomegaly)
    heart_rx = uniform(rng, 0.33, 0.38) * (uniform(rng, 1.25, 1.4) if cardiomegaly else 1.0)
    heart_ry = uniform(rng, 0.22, 0.27) * (uniform(rng, 1.08, 1.2) if cardiomegaly else 1.0)
    dome_r = uniform(rng, 0.22, 0.34)
    return Patient(
        body_w=uniform(rng, 0.86, 0.98),
        apex_y=uniform(rng, -0.80, -0.70),
        cp_y=uniform(rng, 0.50, 0.62),
        lung_cx=uniform(rng, 0.38, 0.43),
        lung_hw=uniform(rng, 0.32, 0.38),
        dome=(dome_r, dome_r + uniform(rng, 0.02, 0.09)),
        heart=(
            uniform(rng, 0.08, 0.13) + (0.07 if cardiomegaly else 0.0),
            uniform(rng, 0.2, 0.28),
            heart_rx,
            heart_ry,
            math.radians(uniform(rng, -35, -20)),
        ),
        cardiomegaly=cardiomegaly,
        rib_spacing=uniform(rng, 0.105, 0.13),
        rib_phase=uniform(rng, 0.0, 1.0),
        rib_curve=uniform(rng, 0.55, 0.8),
        clavicle_y=uniform(rng, -0.78, -0.68),
        spine_x=uniform(rng, -0.015, 0.015),
        breasts=uniform(rng, 0.05, 0.11) if rng.random() < _P_BREASTS else 0.0,
        aspect=uniform(rng, 0.94, 1.06),
        arm_gap=uniform(rng, 0.03, 0.1) if rng.random() < 0.5 else 0.0,
        bubble=bool(rng.random() < 0.7),
    )


def side_sign(side: str) -> float:
    # The patient's right lung is on the image left (negative x).
    return -1.0 if side == "right" else 1.0


def lung_half_width(p: Patient, t: np.ndarray | float) -> np.ndarray | float:
    # Narrow, rounded apex widening to the base.
    tt = np.clip(t, 0.0, 1.0)
    return p.lung_hw * np.sqrt(tt * (2.0 - tt))


def dome_y(p: Patient, side_index: int, x: np.ndarray | float, inspiration: float):
    s = -1.0 if side_index == 0 else 1.0
    top = p.dome[side_index] + inspiration
    k = p.cp_y + inspiration + 0.04 - top
    return top + k * ((x - s * p.lung_cx) / p.lung_hw) ** 2


def diaphragm_y(p: Patient, x, inspiration: float):
    """Top of the abdomen: the lower of the two domes, whose medial ends meet under the heart."""
    dome = np.minimum(dome_y(p, 0, x, inspiration), dome_y(p, 1, x, inspiration))
    cap = 0.5 * (p.dome[0] + p.dome[1]) + inspiration + 0.12
    medial = np.clip((p.lung_cx - np.abs(x - p.spine_x)) * 10.0 + 0.5, 0.0, 1.0)
    return dome - medial * np.maximum(dome - cap, 0.0)


def _heart_r(p: Patient, x, y):
    """Normalised distance to the cardiac silhouette (< 1 inside): a tilted ellipse for the
    ventricles plus a smaller one for the right atrium, which makes the right heart border."""
    cx, cy, rx, ry, rot = p.heart
    c, s = math.cos(rot), math.sin(rot)
    dx, dy = x - cx, y - cy
    u, v = c * dx + s * dy, -s * dx + c * dy
    ventricles = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    atrium = np.hypot((x - cx + 0.6 * rx) / (0.42 * rx), (y - cy - 0.05) / (0.75 * ry))
    return np.minimum(ventricles, atrium)


def heart_density(p: Patient, x, y, e: float):
    return ramp(1.0 - _heart_r(p, x, y), e / p.heart[2])


def mediastinum_density(p: Patient, x, y, e: float):
    # Borders widen downwards into the right atrium (image left) and the left heart border,
    # so the mediastinal outline runs on into the heart without a notch.
    low = np.clip((y + 0.15) * (1 / 0.35), 0.0, 1.0)
    mediast = (ramp(x - p.spine_x + 0.095 + 0.1 * low, e)
               * ramp(p.spine_x + 0.125 + 0.08 * low - x, e) * ramp(0.3 - y, 0.1))
    # Above the apices the mediastinum fades into the soft tissue of the neck.
    return mediast * (0.45 + 0.55 * ramp(y - p.apex_y + 0.05, 0.2))


def aorta_density(p: Patient, x, y):
    return ramp(1.0 - np.hypot((x - 0.1 - p.spine_x) / 0.085, (y + 0.3) / 0.075), 0.08)


def front_density(p: Patient, x, y, e: float = 0.01):
    """How much heart, mediastinum or aortic knob covers (x, y): 0 in the clear lung."""
    return np.maximum(np.maximum(heart_density(p, x, y, e), mediastinum_density(p, x, y, e)),
                      aorta_density(p, x, y))


# Eight directions around a candidate point, for the clearance checks below.
_AROUND = np.exp(1j * np.linspace(0, 2 * np.pi, 8, endpoint=False))


def _lung_point(rng, p: Patient, st: Study, side: str, level: str, medial: bool | None,
                margin: float) -> tuple[float, float]:
    """A point inside the named lung zone, ``margin`` clear of its edges, the diaphragm, the
    heart and the mediastinum. Where a big heart leaves no such room, the margin shrinks, and
    at worst the least covered point tried is used."""
    s = side_sign(side)
    t_lo, t_hi = _LEVEL_T[level]
    best, best_cover = (s * p.lung_cx, p.apex_y + 0.5 * (t_lo + t_hi) * (p.cp_y - p.apex_y)), 2.0
    for attempt in range(90):
        m = margin * (1.0 - attempt // 30 * 0.5)  # margin, then half, then none
        t = uniform(rng, t_lo, t_hi)
        y = p.apex_y + t * (p.cp_y + st.inspiration - p.apex_y)
        hw = float(lung_half_width(p, t)) - m
        if hw <= 0.01:
            continue
        if medial is None:
            frac = uniform(rng, -0.85, 0.85)
        elif medial:
            frac = uniform(rng, 0.0, 0.8)
        else:
            frac = uniform(rng, -0.85, 0.1)
        x = s * (p.lung_cx - frac * hw)  # frac > 0 is medial
        if y > float(diaphragm_y(p, x, st.inspiration)) - m:
            continue
        # Clear of the heart and the mediastinum, at the point and ``m`` around it.
        cover = float(front_density(p, np.append(x + m * _AROUND.real, x),
                                     np.append(y + m * _AROUND.imag, y)).max())
        if cover <= 0.05:
            return x, y
        if cover < best_cover:
            best, best_cover = (x, y), cover
    return best


_DEVICES = ("ecg", "ett", "cvc", "enteric", "pacemaker")
_DEVICE_P = (0.6, 0.3, 0.35, 0.25, 0.12)


def sample_study(rng: np.random.Generator, p: Patient, positive: bool,
                 p_effusion: float = P_EFFUSION) -> Study:
    st = Study(
        positive=positive,
        tx=uniform(rng, -0.05, 0.05),
        ty=uniform(rng, -0.04, 0.06),
        scale=uniform(rng, 0.86, 1.02),
        rot=math.radians(uniform(rng, -5, 5)),
        inspiration=uniform(rng, -0.05, 0.06),
        lo=uniform(rng, -0.08, 0.06),
        hi=uniform(rng, 0.95, 1.2),
        gamma=float(np.exp(rng.normal(0.0, 0.18))),
        noise=uniform(rng, 0.008, 0.03),
        cardiomegaly=p.cardiomegaly,
    )
    zone_names = list(LESION_ZONES)
    if positive:
        st.zone = zone_names[int(rng.choice(len(zone_names), p=_ZONE_WEIGHTS))]
        side, level = LESION_ZONES[st.zone]
        medial = True if level == "middle" else None
        r = float(np.exp(rng.uniform(np.log(0.05), np.log(0.19))))
        st.centre = _lung_point(rng, p, st, side, level, medial, margin=0.5 * r + 0.02)
        st.radii = (r * uniform(rng, 0.8, 1.3), r * uniform(rng, 0.7, 1.1))
        st.angle = uniform(rng, 0, math.pi)
        # Faintness: a skewed draw keeps a share of hard, faint cases.
        st.contrast = float(0.12 + 0.78 * rng.beta(1.6, 1.3))
        st.bronchograms = bool(r > 0.08 and st.contrast > 0.45 and rng.random() < 0.6)
        st.location = zone_phrase(rng, st.zone)
    elif rng.random() < 0.12:
        st.resolved_zone = zone_names[int(rng.choice(len(zone_names), p=_ZONE_WEIGHTS))]

    if rng.random() < p_effusion:
        sides = ["right", "left"] if rng.random() < 0.2 else [str(rng.choice(["right", "left"]))]
        st.effusion = [(side, uniform(rng, 0.05, 0.26)) for side in sides]
    if rng.random() < _P_ATELECTASIS:
        side = str(rng.choice(["right", "left"]))
        level = "lower" if rng.random() < 0.75 else "middle"
        x, y = _lung_point(rng, p, st, side, level, None, margin=0.06)
        st.atelectasis = (side, level, x, y, uniform(rng, 0.12, 0.26), uniform(rng, 0.010, 0.02),
                          math.radians(uniform(rng, -18, 18)))
    if rng.random() < _P_NODULE:
        side = str(rng.choice(["right", "left"]))
        level = str(rng.choice(["upper", "middle", "lower"]))
        x, y = _lung_point(rng, p, st, side, level, None, margin=0.05)
        st.nodule = (side, level, x, y, uniform(rng, 0.016, 0.035))
    if rng.random() < _P_DEVICES:
        st.devices = [d for d, q in zip(_DEVICES, _DEVICE_P) if rng.random() < q] or ["ecg"]
        st.ett_cm = int(rng.integers(2, 7))
    return st



def ramp(d, width):
    """Soft step from 0 (d << 0) to 1 (d >> 0) over ``width`` (cheaper than a sigmoid)."""
    return np.clip(0.5 + d * (0.5 / width), 0.0, 1.0)


def to_pixels(st: Study, p: Patient, x: np.ndarray, y: np.ndarray, size: int):
    """Anatomical -> pixel (row, col) coordinates: the inverse of the grid transform."""
    c, s = math.cos(st.rot), math.sin(st.rot)
    xs, ys = x * st.scale, y * st.scale * p.aspect
    xn = c * xs - s * ys + st.tx
    yn = s * xs + c * ys + st.ty
    return (yn + 1.0) * (size / 2.0) - 0.5, (xn + 1.0) * (size / 2.0) - 0.5



def pixel_box(p: "Patient", st: "Study", size: int, x0: float, x1: float, y0: float,
               y1: float) -> tuple[slice, slice]:
    """Pixel rows and columns covering an anatomical rectangle (plus a margin)."""
    r, c = to_pixels(st, p, np.array([x0, x0, x1, x1]), np.array([y0, y1, y0, y1]), size)
    r0, r1 = max(0, int(math.floor(r.min())) - 2), min(size, int(math.ceil(r.max())) + 3)
    c0, c1 = max(0, int(math.floor(c.min())) - 2), min(size, int(math.ceil(c.max())) + 3)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))



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
LEVEL_PHRASES = {
    ("right", "upper"): "right upper lobe", ("right", "middle"): "right middle lobe",
    ("right", "lower"): "right lower lobe", ("left", "upper"): "left upper lobe",
    ("left", "middle"): "lingula", ("left", "lower"): "left lower lobe",
}


def zone_phrase(rng: np.random.Generator, zone: str) -> str:
    options = _ZONE_PHRASES[zone]
    # The canonical lobe name is the commonest wording.
    return zone if rng.random() < 0.45 else str(rng.choice(options))

