"""Support devices of a synthetic study: ECG leads, tubes, lines and pacemakers."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .anatomy import Patient, Study, to_pixels, uniform


def _bezier(points: list[tuple[float, float]], n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 3:
        out = (1 - t) ** 2 * pts[0] + 2 * (1 - t) * t * pts[1] + t**2 * pts[2]
    else:
        out = ((1 - t) ** 3 * pts[0] + 3 * (1 - t) ** 2 * t * pts[1]
               + 3 * (1 - t) * t**2 * pts[2] + t**3 * pts[3])
    return out[:, 0], out[:, 1]


def device_layer(rng, p: Patient, st: Study, size: int) -> np.ndarray:
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
            cx, cy = uniform(rng, -0.8, 0.8), uniform(rng, -0.8, 0.7)
            r = uniform(rng, 0.022, 0.032)
            a = np.linspace(0, 2 * np.pi, n // 4)
            add(cx + r * np.cos(a), cy + r * np.sin(a), 0.9)
            add(cx + 0.25 * r * np.cos(a), cy + 0.25 * r * np.sin(a), 1.2)
            ex = float(np.sign(cx) or 1.0) * uniform(rng, 0.9, 1.3)
            bx, by = _bezier([(cx, cy), (uniform(rng, -0.5, 0.5), uniform(rng, -0.6, 0.9)),
                              (ex, uniform(rng, -1.1, 1.1))], n)
            add(bx, by, 0.5)
    if "ett" in st.devices:
        tip = -0.35 - 0.03 * st.ett_cm
        for off in (-0.018, 0.018):
            bx, by = _bezier([(p.spine_x + off, -1.2), (p.spine_x + off + 0.01, -0.8),
                              (p.spine_x + off, tip)], n // 2)
            add(bx, by, 0.8)
    if "cvc" in st.devices:
        bx, by = _bezier([(-0.55, -1.1), (-0.35, -0.8), (-0.12, -0.55),
                          (-0.06, uniform(rng, -0.25, -0.05))], n)
        add(bx, by, 1.0)
    if "enteric" in st.devices:
        bx, by = _bezier([(p.spine_x - 0.01, -1.2), (p.spine_x + 0.03, 0.2),
                          (0.12, 0.9), (uniform(rng, 0.3, 0.45), uniform(rng, 0.65, 0.8))], 2 * n)
        add(bx, by, 0.9)
    if "pacemaker" in st.devices:
        gx, gy = uniform(rng, 0.45, 0.6), uniform(rng, -0.72, -0.6)
        u, v = np.meshgrid(np.linspace(-0.09, 0.09, n // 8), np.linspace(-0.06, 0.06, n // 12))
        add((gx + u).ravel(), (gy + v).ravel(), 0.45)
        for end in ((hx - 0.1, hy - 0.05), (hx + 0.05, hy + 0.1)):
            bx, by = _bezier([(gx, gy), (0.1, -0.5), (-0.05, -0.1), end], n)
            add(bx, by, 1.0)
    layer = np.zeros((size, size), dtype=np.float32)
    if not xs:
        return layer
    r, c = to_pixels(st, p, np.concatenate(xs), np.concatenate(ys), size)
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
