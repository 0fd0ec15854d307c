"""Drawing a synthetic study on the pixel grid, one structure at a time (vectorised)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .anatomy import (
    LESION_ZONES,
    Patient,
    Study,
    aorta_density,
    diaphragm_y,
    dome_y,
    heart_density,
    lung_half_width,
    mediastinum_density,
    pixel_box,
    ramp,
    side_sign,
    uniform,
)
from .devices import device_layer


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


@dataclass
class _Canvas:
    """One study's pixel grid in anatomical coordinates, shared by the drawing steps."""

    p: Patient
    st: Study
    size: int
    x: np.ndarray  # anatomical x of every pixel
    y: np.ndarray
    e: float  # soft-edge width: about one pixel

    def box(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
        # Structures are drawn inside their own pixel boxes: most of them cover a small part
        # of the image, and the crops halve the time per study.
        return pixel_box(self.p, self.st, self.size, x0, x1, y0, y1)


def render_study(p: Patient, st: Study, size: int, rng: np.random.Generator,
                 findings: tuple[str, ...] = ("pneumonia",)):
    """Draw one study. Returns (uint8 image, {finding: bool mask}, bool lung mask).

    The masks are those of ``findings`` (names from :data:`.anatomy.FINDINGS`), all False
    where the study does not have the finding.

    Separate random streams for the background, the lesion, the devices and the detector keep
    a study's background identical whether or not a lesion is drawn on it.
    """
    tex_rng, les_rng, dev_rng, det_rng = rng.spawn(4)
    X0, Y0 = _base_grid(size)
    # pixel -> anatomical coordinates
    c, s = math.cos(st.rot), math.sin(st.rot)
    xn, yn = X0 - st.tx, Y0 - st.ty
    x = (c * xn + s * yn) / st.scale
    y = (-s * xn + c * yn) / (st.scale * p.aspect)
    cv = _Canvas(p, st, size, x, y, 2.4 / size)

    A, body = _draw_body(cv)
    lungs, lung_boxes = _lung_fields(cv)
    lung = lungs[0] + lungs[1]
    front, dense = _draw_dense(cv, A, body)
    lung_air = _draw_lung_air(cv, A, lungs, lung_boxes, front, tex_rng)
    _draw_bones(cv, A, body, lung * (1.0 - 0.88 * front), dense)
    _draw_soft_tissue(cv, A)

    fill = np.zeros((size, size), np.float32)  # share of the lung air replaced by findings
    masks = {name: np.zeros((size, size), dtype=bool) for name in findings}
    if st.positive:
        lesion = _fill_lesion(cv, fill, lung, front, les_rng)
        if "pneumonia" in masks:
            masks["pneumonia"] = lesion
    effusion = _fill_other_findings(cv, fill, lungs)
    if "pleural-effusion" in masks:
        masks["pleural-effusion"] = effusion
    if "cardiomegaly" in masks and p.cardiomegaly:
        b = _heart_box(cv)
        masks["cardiomegaly"][b] = heart_density(p, x[b], y[b], cv.e) > 0.5
    A += fill * lung_air
    if st.devices:
        A += device_layer(dev_rng, p, st, size)
    return _expose(cv, A, X0, Y0, det_rng), masks, lung > 0.5


def _draw_body(cv: _Canvas) -> tuple[np.ndarray, np.ndarray]:
    """Attenuation of the body: barrel-shaped chest wall whose projected thickness falls off to
    the sides, shoulders flaring out at the top, and in some patients the arms beside the
    chest. Returns (attenuation, body mask)."""
    p, x, y, e = cv.p, cv.x, cv.y, cv.e
    yy = y - 0.1
    chest_w = p.body_w * (1.0 - 0.07 * yy * yy)
    bw = chest_w + 0.5 * ramp(-0.68 - y, 0.16)
    body = ramp(bw - np.abs(x), 2 * e)
    thick = np.sqrt(np.clip(1.0 - (x / (bw + 0.04)) ** 2, 0.0, 1.0))
    A = body * (0.26 + 0.34 * thick)
    if p.arm_gap:
        for sgn in (-1.0, 1.0):
            b = cv.box(sgn * 0.75, sgn * 3.0, -3.0, 0.45)
            d_arm = np.abs(x[b]) - chest_w[b] - p.arm_gap
            arm = ramp(d_arm, 2 * e) * ramp(0.28 - d_arm, 2 * e) * ramp(0.1 - y[b], 0.25)
            humerus = np.exp(-(((d_arm - 0.14) / 0.045) ** 2)) * ramp(-0.25 - y[b], 0.2)
            A[b] += arm * (0.42 + 0.16 * humerus)
    return A, body


def _heart_box(cv: _Canvas) -> tuple[slice, slice]:
    hcx, hcy, hrx, hry, _ = cv.p.heart
    hr = max(hrx, hry) + 0.02
    return cv.box(hcx - hr, hcx + hr, hcy - hr, hcy + hr)


def _lung_fields(cv: _Canvas) -> tuple[list[np.ndarray], list[tuple[slice, slice]]]:
    """The two lungs, closed below by the domed hemidiaphragms (one box per lung)."""
    p, st, x, y, e = cv.p, cv.st, cv.x, cv.y, cv.e
    H = p.cp_y + st.inspiration - p.apex_y
    lung_boxes = [cv.box(sgn * p.lung_cx - p.lung_hw - 0.01, sgn * p.lung_cx + p.lung_hw + 0.01,
                         p.apex_y - 0.01, p.cp_y + st.inspiration + 0.05) for sgn in (-1.0, 1.0)]
    lungs = [np.zeros((cv.size, cv.size), np.float32), np.zeros((cv.size, cv.size), np.float32)]
    for k, sgn in enumerate((-1.0, 1.0)):
        b = lung_boxes[k]
        xs, ys = x[b], y[b]
        t = (ys - p.apex_y) / H
        inside = ramp(lung_half_width(p, t) - np.abs(xs - sgn * p.lung_cx), e)
        inside *= ramp(t, e / H)
        inside *= ramp(diaphragm_y(p, xs, st.inspiration) - ys, e)
        lungs[k][b] = inside
    return lungs, lung_boxes


def _draw_dense(cv: _Canvas, A: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense water-density structures: heart, mediastinum, aortic knob and the abdomen below
    the domes. Taking their maximum merges the heart into the diaphragm as on a real film.
    Returns (front: what covers the lungs, dense: front and abdomen)."""
    p, st, x, y, e = cv.p, cv.st, cv.x, cv.y, cv.e
    front = np.zeros((cv.size, cv.size), np.float32)
    b = _heart_box(cv)
    front[b] = heart_density(p, x[b], y[b], e)
    b = cv.box(p.spine_x - 0.22, p.spine_x + 0.24, -3.0, 0.45)
    front[b] = np.maximum(front[b], mediastinum_density(p, x[b], y[b], e))
    b = cv.box(p.spine_x - 0.05, p.spine_x + 0.25, -0.45, -0.15)
    front[b] = np.maximum(front[b], aorta_density(p, x[b], y[b]))
    dense = front.copy()
    b = cv.box(-3.0, 3.0, min(p.dome) + st.inspiration - 0.03, 3.0)
    xs, ys = x[b], y[b]
    dense[b] = np.maximum(dense[b], ramp(ys - diaphragm_y(p, xs, st.inspiration), e))
    A += 0.27 * dense * body
    return front, dense


def _draw_lung_air(cv: _Canvas, A: np.ndarray, lungs: list[np.ndarray], lung_boxes: list,
                   front: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Subtract the lung air and add the vessels; returns the air actually seen.

    Air is darkest in the middle of a lung and in its upper part; a mottled parenchyma;
    vessels radiating from the hila, fading to the periphery, and the hilar shadows. Findings
    later fill a share of the returned air, so a lung can never become denser than soft
    tissue however many findings overlap.
    """
    p, st, x, y = cv.p, cv.st, cv.x, cv.y
    H = p.cp_y + st.inspiration - p.apex_y
    lung_air = np.zeros((cv.size, cv.size), np.float32)
    for k, sgn in enumerate((-1.0, 1.0)):
        b = lung_boxes[k]
        xs, ys, lk, fr = x[b], y[b], lungs[k][b], front[b]
        t = np.clip((ys - p.apex_y) / H, 0.0, 1.0)
        depth = 0.75 + 0.25 * np.sqrt(np.clip(1.0 - ((xs - sgn * p.lung_cx) / p.lung_hw) ** 2,
                                              0.0, 1.0))
        air = 0.36 * lk * depth * (1.0 - 0.12 * t) * (1.0 - 0.88 * fr)
        texture = (1.0 + 0.06 * _smooth_noise(rng, xs.shape, cv.size / 8)
                   + 0.05 * _smooth_noise(rng, xs.shape, 9.0 * cv.size / 224))
        hx, hy = sgn * 0.17 + p.spine_x, -0.04
        r = np.hypot(xs - hx, ys - hy)
        th = np.arctan2(ys - hy, (xs - hx) * sgn)
        ph = rng.uniform((0.0, 0.0, 4.0, 19.0), (2 * np.pi, 2 * np.pi, 7.0, 27.0))
        # Thin, wavy bright lines: a high power of a cosine (by squaring, cheaper than **).
        pat = 0.5 + 0.5 * np.cos(ph[3] * th + 2.5 * np.sin(ph[2] * r + ph[0]) + ph[1])
        pat *= pat
        pat *= pat
        pat *= pat
        vessels = (pat * np.exp(-r / 0.3) + 0.8 * np.exp(-((r / 0.075) ** 2))) * lk
        air *= texture
        lung_air[b] += air
        A[b] += 0.1 * vessels * (1.0 - 0.88 * fr) - air
    return lung_air


def _draw_bones(cv: _Canvas, A: np.ndarray, body: np.ndarray, lung_vis: np.ndarray,
                dense: np.ndarray) -> None:
    """Trachea, spine, ribs and clavicles, added to ``A`` in place."""
    p, x, y, e = cv.p, cv.x, cv.y, cv.e
    # Trachea (air column) and spine with disc spaces, seen through the mediastinum.
    b = cv.box(p.spine_x - 0.05, p.spine_x + 0.05, -3.0, -0.2)
    trachea = ramp(0.026 - np.abs(x[b] - p.spine_x), e) * ramp(-0.28 - y[b], 0.04)
    A[b] -= 0.07 * trachea * body[b]
    b = cv.box(p.spine_x - 0.08, p.spine_x + 0.08, -3.0, 3.0)
    spine = ramp(0.058 - np.abs(x[b] - p.spine_x), e)
    spine *= 0.8 + 0.2 * np.cos((2 * np.pi / 0.105) * (y[b] - p.rib_phase))
    A[b] += 0.07 * spine * body[b]

    # Posterior ribs (flat near the spine, curving down at the chest wall) and fainter anterior
    # ribs (falling medially), visible within the thoracic cage.
    cage_w = p.lung_cx + p.lung_hw + 0.07
    b = cv.box(-cage_w - 0.05, cage_w + 0.05, -0.97, p.cp_y + 0.4)
    xs, ys = x[b], y[b]
    a = np.abs(xs - p.spine_x)
    cage = ramp(cage_w - a, 0.03) * ramp(ys + 0.92, 0.04) * ramp(p.cp_y + 0.25 - ys, 0.1)
    phase = (ys + 0.1 * a - p.rib_curve * a * a * a) * (2 * np.pi / p.rib_spacing)
    post = np.clip((np.cos(phase - 2 * np.pi * p.rib_phase) - 0.15) * (1 / 0.85), 0.0, 1.0)
    phase2 = (ys + 0.55 * a) * (2 * np.pi / (1.3 * p.rib_spacing)) - 2 * np.pi * p.rib_phase
    ant = np.clip((np.cos(phase2) - 0.4) * (1 / 0.6), 0.0, 1.0) * ramp(a - 0.3, 0.1)
    rib_vis = (0.3 + 0.7 * lung_vis[b]) * (1.0 - 0.8 * dense[b]) * ramp(a - 0.07, 0.03) * cage
    A[b] += rib_vis * (0.08 * post + 0.035 * ant)

    # Clavicles: from the sternal end up and out to the shoulder.
    b = cv.box(-0.75, 0.75, p.clavicle_y - 0.3, p.clavicle_y + 0.12)
    ca = np.abs(x[b] - p.spine_x) - 0.06
    cy = p.clavicle_y - 0.3 * ca + 0.2 * ca * ca
    clav = np.exp(-(((y[b] - cy) / 0.042) ** 2)) * ramp(ca, 0.02) * ramp(0.62 - ca, 0.05)
    A[b] += 0.15 * clav * body[b]


def _draw_soft_tissue(cv: _Canvas, A: np.ndarray) -> None:
    """Breast shadows and the gastric bubble, added to ``A`` in place."""
    p, st, x, y, e = cv.p, cv.st, cv.x, cv.y, cv.e
    # Breast shadows over the lower lateral lung zones.
    if p.breasts:
        for sgn in (-1.0, 1.0):
            b = cv.box(sgn * 0.5 - 0.45, sgn * 0.5 + 0.45, 0.15, 1.0)
            rr = np.hypot((x[b] - sgn * 0.5) / 0.38, (y[b] - 0.62) / 0.32)
            A[b] += p.breasts * ramp(1.0 - rr, 0.15) * ramp(y[b] - 0.25, 0.1)
    # Gastric bubble under the left hemidiaphragm.
    if p.bubble:
        bx = p.lung_cx + 0.02
        b = cv.box(bx - 0.15, bx + 0.15, p.dome[1] + st.inspiration - 0.05, p.cp_y + 0.35)
        xs, ys = x[b], y[b]
        dome_l = dome_y(p, 1, xs, st.inspiration)
        bub = ramp(1.0 - np.hypot((xs - bx) / 0.11, (ys - dome_l - 0.1) / 0.06), 0.2)
        A[b] -= 0.12 * bub * ramp(ys - dome_l - 0.02, e)


def _fill_lesion(cv: _Canvas, fill: np.ndarray, lung: np.ndarray, front: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Write the pneumonia's share of the lung air into ``fill``; return its pixel mask."""
    p, st, x, y, size = cv.p, cv.st, cv.x, cv.y, cv.size
    lesion_mask = np.zeros((size, size), dtype=bool)
    lx, ly = st.centre
    reach = 2.05 * max(st.radii)
    rs, cs = pixel_box(p, st, size, lx - reach, lx + reach, ly - reach, ly + reach)
    xs, ys = x[rs, cs], y[rs, cs]
    ca_, sa_ = math.cos(st.angle), math.sin(st.angle)
    u = ((xs - lx) * ca_ + (ys - ly) * sa_) / st.radii[0]
    v = (-(xs - lx) * sa_ + (ys - ly) * ca_) / st.radii[1]
    d2 = u * u + v * v
    # Smoothed noise makes the outline irregular; it fades towards the centre so that the
    # core of the lesion is always there.
    spacing = size / min(max(4.0, 2.2 / st.radii[0]), size / 3.0)
    noise = _smooth_noise(rng, xs.shape, spacing)
    field_ = np.exp(-0.8 * d2) + 0.45 * noise * (1.0 - np.exp(-1.5 * d2))
    dens = ramp(field_ - 0.45, 0.22) * ramp(4.0 - d2, 1.0)
    # Patchy airspace filling.
    fine = _smooth_noise(rng, xs.shape, max(3.0, size / 32))
    dens = dens * np.clip(0.75 + 0.4 * fine, 0.35, 1.0)
    if st.bronchograms:
        hxs = side_sign(LESION_ZONES[st.zone][0]) * 0.17
        ang = math.atan2(ly + 0.04, lx - hxs)
        for da in (0.0, uniform(rng, 0.35, 0.6) * (1 if rng.random() < 0.5 else -1)):
            cb, sb = math.cos(ang + da), math.sin(ang + da)
            along = (xs - lx) * cb + (ys - ly) * sb
            across = -(xs - lx) * sb + (ys - ly) * cb
            tube = np.exp(-((across / 0.009) ** 2)) * ramp(along + 0.8 * st.radii[0], 0.03)
            tube *= ramp(0.7 * st.radii[0] - along, 0.03)
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
    return lesion_mask


def _fill_other_findings(cv: _Canvas, fill: np.ndarray, lungs: list[np.ndarray]) -> np.ndarray:
    """Effusion, atelectasis and nodule: their share of the lung air, into ``fill``.

    Returns the effusion's mask: where the fluid fills most of the lung.
    """
    p, st, x, y, size = cv.p, cv.st, cv.x, cv.y, cv.size
    fluid_seen = np.zeros((size, size), np.float32)
    for side, h in st.effusion:
        k = 0 if side == "right" else 1
        sgn = side_sign(side)
        lat = np.clip(sgn * (x - sgn * p.lung_cx) / p.lung_hw, -1.0, 1.0)  # 1 at the chest wall
        level = p.cp_y + st.inspiration - h * (0.55 + 0.45 * lat)  # meniscus rises laterally
        fluid = ramp(y - level, 0.03) * lungs[k]
        fill[...] = np.maximum(fill, 0.85 * fluid)
        fluid_seen = np.maximum(fluid_seen, fluid)
    effusion = fluid_seen > 0.5
    if st.effusion and not effusion.any():
        # Tiny images: a small effusion can fall between pixel centres; keep its fullest pixel.
        effusion.flat[int(np.argmax(fluid_seen))] = True

    if st.atelectasis is not None:
        side, _, ax0, ay0, length, thick_, ang = st.atelectasis
        reach = 0.5 * length + 0.05
        rs, cs = pixel_box(p, st, size, ax0 - reach, ax0 + reach, ay0 - reach, ay0 + reach)
        xs, ys = x[rs, cs], y[rs, cs]
        cb, sb = math.cos(ang), math.sin(ang)
        along = (xs - ax0) * cb + (ys - ay0) * sb
        across = -(xs - ax0) * sb + (ys - ay0) * cb
        band = np.exp(-((across / thick_) ** 2)) * ramp(0.5 * length - np.abs(along), 0.04)
        fill[rs, cs] = np.maximum(fill[rs, cs], 0.7 * band)

    if st.nodule is not None:
        _, _, nx_, ny_, nr = st.nodule
        rs, cs = pixel_box(p, st, size, nx_ - nr, nx_ + nr, ny_ - nr, ny_ + nr)
        rr = np.hypot(x[rs, cs] - nx_, y[rs, cs] - ny_) / nr
        fill[rs, cs] = np.maximum(fill[rs, cs], 0.65 * np.sqrt(np.clip(1.0 - rr * rr, 0.0, 1.0)))
    return effusion


def _expose(cv: _Canvas, A: np.ndarray, X0: np.ndarray, Y0: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """Exposure and detector: shading, gamma and noise; attenuation -> uint8 image."""
    st, size = cv.st, cv.size
    # Smooth shading and a slight tilt of exposure across the film (heel effect).
    A += 0.035 * _smooth_noise(rng, (size, size), size / 3)
    A += float(rng.uniform(-0.04, 0.04)) * X0 + float(rng.uniform(-0.05, 0.05)) * Y0
    # Every edge above is already about a pixel soft, so no anti-aliasing blur is needed.
    img = (A - st.lo) * (1.0 / (st.hi - st.lo))
    # Gamma through a lookup table: far cheaper than a power per pixel.
    lut = np.linspace(0.0, 1.0, 4096, dtype=np.float32) ** np.float32(st.gamma)
    img = lut[(np.clip(img, 0.0, 1.0) * 4095.0 + 0.5).astype(np.intp)]
    # Uniform noise with the same standard deviation looks the same and is six times cheaper
    # to draw than Gaussian noise.
    img += (st.noise * math.sqrt(12.0)) * (rng.random((size, size), dtype=np.float32) - 0.5)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
