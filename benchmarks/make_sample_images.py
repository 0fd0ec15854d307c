"""Write a contact sheet of synthetic studies (image, lesion outline, report) as PNG.

Usage::

    python benchmarks/make_sample_images.py [--out benchmarks/results/samples/] [--n 8]
        [--image-size 224] [--seed 0]

Each panel shows one study with the pneumonia lesion outlined in red (positives), its label,
zone and distractor flags, and the report text beside it. The script prints a JSON line with
the file it wrote and how long generation took.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neural_sk.datasets import make_synthetic_cxr  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/samples/")
    parser.add_argument("--n", type=int, default=8, help="number of studies on the sheet")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prevalence", type=float, default=0.5)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    X, y, masks = make_synthetic_cxr(args.n, image_size=args.image_size,
                                     prevalence=args.prevalence, random_state=args.seed,
                                     return_masks=True)
    seconds = time.perf_counter() - start

    cols = 2
    rows = int(np.ceil(args.n / cols))
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(8 * cols, 4.1 * rows),
                             gridspec_kw={"width_ratios": [1, 1.15] * cols})
    axes = np.atleast_2d(axes)
    flags = ["effusion", "cardiomegaly", "atelectasis", "nodule", "support_devices"]
    for k in range(rows * cols):
        ax_img, ax_txt = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
        ax_img.axis("off")
        ax_txt.axis("off")
        if k >= args.n:
            continue
        row = X.iloc[k]
        ax_img.imshow(row["image"], cmap="gray", vmin=0, vmax=255)
        if masks[k].any():
            ax_img.contour(masks[k], levels=[0.5], colors="red", linewidths=0.8)
        present = [f for f in flags if row[f]]
        title = (f"{row['study_id']} / {row['patient_id']}  y={y[k]}"
                 + (f"\n{row['lesion_zone']} (contrast {row['lesion_contrast']:.2f})"
                    if y[k] else "\nno pneumonia")
                 + (f"\n{', '.join(present)}" if present else ""))
        ax_img.set_title(title, fontsize=8)
        wrapped = "\n".join(
            "\n".join(textwrap.wrap(line, 58)) for line in row["report"].splitlines()
        )
        ax_txt.text(0.0, 1.0, wrapped, va="top", ha="left", fontsize=7, family="monospace",
                    transform=ax_txt.transAxes)
    fig.tight_layout()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"synthetic_cxr_seed{args.seed}_{args.image_size}px.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    result = {"file": str(path), "n": args.n, "image_size": args.image_size,
              "seed": args.seed, "generate_seconds": round(seconds, 3)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
