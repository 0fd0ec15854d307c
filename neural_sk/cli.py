"""The ``neural-sk`` command: ``demo`` (the main job) and ``compress`` (build an archive)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neural-sk",
        description="NEURAL as scikit-learn estimators: attention-guided pruning of chest "
        "X-rays into unified image + report graphs.",
    )
    parser.add_argument("--version", action="version", version=f"neural-sk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="run the whole method on the embedded synthetic data set",
        description="Fit on a training split of the embedded synthetic chest X-rays, evaluate "
        "on a held-out split, print a table and write pictures.",
    )
    demo.add_argument("--n-samples", type=int, default=None, help="studies to generate")
    demo.add_argument("--image-size", type=int, default=None, help="input resolution in pixels")
    demo.add_argument("--keep-ratio", type=float, default=None, help="share of patches kept")
    demo.add_argument("--epochs", type=int, default=None, help="scorer training epochs")
    demo.add_argument("--out", default="neural_sk_demo_out", help="folder for the pictures")
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="tiny settings (seconds, for CI)")
    demo.add_argument("--json", action="store_true", help="print the figures as JSON last")
    demo.add_argument("--verbose", "-v", action="count", default=0)

    comp = sub.add_parser(
        "compress", help="compress an archive of studies with a fitted model",
        description="Score, prune and fuse studies in batches and write shards plus a manifest.",
    )
    comp.add_argument("--input", required=True, help="CSV with image,report columns, or a folder")
    comp.add_argument("--model", required=True, help="fitted pipeline or scorer (joblib file)")
    comp.add_argument("--out", required=True, help="output folder")
    comp.add_argument("--batch-size", type=int, default=32)
    comp.add_argument("--shard-size", type=int, default=256)
    comp.add_argument("--resume", action="store_true")
    comp.add_argument("--on-error", choices=["skip", "fail"], default="skip")
    comp.add_argument("--feature-dtype", choices=["float16", "float32"], default="float16",
                      help="storage type of the kept patch features")
    comp.add_argument("--pixels", choices=["png", "jpeg"], default=None,
                      help="also store the image tiles under the kept patches (viewable)")
    comp.add_argument("--scheduler", default=None, help="address of a Dask scheduler")
    comp.add_argument("--verbose", "-v", action="count", default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neural-sk`` command."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from .demo import run_demo_cli

        return run_demo_cli(args)
    if args.command == "compress":
        from .compress import run_compress_cli

        return run_compress_cli(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
