"""How close AttentionScorer.transform gets to the model's own forward pass, and what the public
code's way of scoring (one study at a time) costs on top of it.

Prints one JSON object. On the same fitted tiny model (tiny Swin + tiny T5, 224 px,
cross-attention, the paper's setting) and the same PNG files + reports, in one run:

- model_images_per_s: the bare encoder + decoder teacher-forced forward on ready tensors,
  batched (the physical limit of the model);
- ours_images_per_s: AttentionScorer.transform from a DataFrame of image paths and reports to
  a StudySet;
- reference_images_per_s: a faithful re-implementation of the public code's way: one study at
  a time, the image transform rebuilt per study, attention returned for every decoder layer,
  NumPy round trips;
- ratio = ours / reference, model_fraction = model time / our total time.

Ours and the model-only pass run interleaved ``--repeats`` times and the best of each counts
(the machines here are shared: the load changes from one run to the next).

    python benchmarks/bench_scoring.py [--quick] [--device cuda] [--precision 32] [--repeats 3]
                                       [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image


def _write_studies(n: int, image_size: int, folder: Path) -> pd.DataFrame:
    from neural_sk.datasets import make_synthetic_cxr

    X, y = make_synthetic_cxr(n, image_size=image_size, random_state=0)
    paths = []
    for i, img in enumerate(X["image"]):
        path = folder / f"study_{i:05d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return pd.DataFrame({"image": paths, "report": X["report"].tolist()}), y


def _reference_scores(scorer, frame: pd.DataFrame, device) -> np.ndarray:
    """The public code's loop: per study, rebuild the transform, run, copy every layer out."""
    model = scorer.model_.to(device).eval()
    encoder = model.encoder
    out = []
    for path, report in zip(frame["image"], frame["report"]):
        size = scorer.image_size

        def transform(img, size=size):  # rebuilt for every study, as in the public code
            img = img.convert("L").resize((size, size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
            arr = (arr - np.array(encoder.mean[:1])) / np.array(encoder.std[:1])
            return torch.tensor(arr, dtype=torch.float32)[None, None]

        pixels = transform(Image.open(path)).to(device)
        pixels = pixels.expand(-1, encoder.in_channels, -1, -1)
        enc = scorer.tokenizer_(report, truncation=True, max_length=scorer.max_report_tokens,
                                return_tensors="pt")
        with torch.no_grad():
            feats = encoder(pixels)
            mem, ones = model.memory(feats)
            res = model.decoder(encoder_outputs=mem, attention_mask=ones,
                                labels=enc["input_ids"].to(device), output_attentions=True)
        layers = [a.cpu().numpy() for a in res.cross_attentions]  # every layer, to NumPy
        last = layers[-1][0][..., : feats.shape[1]]  # [heads, T, P]: the patches, not the
        # conditioning tokens after them
        scores = last.mean(0).mean(0)
        out.append(scores / scores.sum())
    return np.stack(out)


def _model_only(scorer, pixels: torch.Tensor, reports: list[str], device) -> float:
    from neural_sk.models.encoders import normalize
    from neural_sk.models.precision import autocast, resolve_precision
    from neural_sk.models.vlm import encode_reports

    model = scorer.model_.to(device).eval()
    labels = encode_reports(scorer.tokenizer_, reports, scorer.max_report_tokens)[0]
    batches = range(0, len(pixels), scorer.batch_size)
    start = time.perf_counter()
    # The scorer's own precision, so the share compares like with like.
    with torch.inference_mode(), autocast(resolve_precision(scorer.precision, device), device):
        for b in batches:
            x = normalize(pixels[b : b + scorer.batch_size], model.encoder).to(device)
            feats = model.encoder(x)
            model.cross_attention(feats, labels[b : b + scorer.batch_size].to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", help="the scorer's (auto: bf16 on CUDA)")
    parser.add_argument("--num-workers", default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="best of, interleaved")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    from neural_sk import AttentionScorer
    from neural_sk.datasets.images import read_image
    from neural_sk.models.encoders import images_to_tensor

    n = args.n or (32 if args.quick else 256)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        frame, y = _write_studies(n, 224, Path(tmp))
        scorer = AttentionScorer(vision_model="tiny-swin", image_size=224, epochs=1,
                                 method="cross_attention", batch_size=32, device=args.device,
                                 random_state=0).fit(frame.iloc[:32], y[:32])
        workers = args.num_workers if args.num_workers == "auto" else int(args.num_workers)
        scorer.set_params(precision=args.precision, num_workers=workers)
        scorer.transform(frame.iloc[:4])  # warm-up
        pixels = images_to_tensor([read_image(p) for p in frame["image"]], 224)
        ours_times, model_times = [], []
        # Interleaved, best of --repeats: on a shared machine the load changes between runs.
        for _ in range(args.repeats):
            t = time.perf_counter()
            ours = scorer.transform(frame)
            if device.type == "cuda":
                torch.cuda.synchronize()
            ours_times.append(time.perf_counter() - t)
            model_times.append(_model_only(scorer, pixels, frame["report"].tolist(), device))
        ours_s, model_s = min(ours_times), min(model_times)

        m = n // 2 if args.quick else min(n, 256)  # the reference is slow: time a part
        t = time.perf_counter()
        ref = _reference_scores(scorer, frame.iloc[:m], device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        ref_s = (time.perf_counter() - t) * n / m
        agree = float(np.mean(np.argmax(ref, 1) == np.argmax(ours.attention[:m], 1)))
    result = {
        "benchmark": "bench_scoring",
        "n_images": n,
        "device": str(device),
        "precision": args.precision,
        "num_workers": args.num_workers,
        "model_images_per_s": round(n / model_s, 2),
        "ours_images_per_s": round(n / ours_s, 2),
        "reference_images_per_s": round(n / ref_s, 2),
        "ratio": round(ref_s / ours_s, 3),
        "model_fraction": round(model_s / ours_s, 3),
        "repeats": args.repeats,
        "top_patch_agreement_with_reference": agree,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "command": "python benchmarks/bench_scoring.py" + (" --quick" if args.quick else "")
        + (f" --device {args.device}" if args.device != "cpu" else "")
        + (f" --precision {args.precision}" if args.precision != "auto" else "")
        + (f" --num-workers {args.num_workers}" if args.num_workers != "auto" else ""),
    }
    text = json.dumps(result)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
