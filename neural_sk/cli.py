"""The ``neural-sk`` command: ``demo`` (the main job) and ``compress`` (build an archive)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

from ._version import __version__

_DEMO_EXAMPLES = """examples:
  neural-sk demo                          the main job: table, pictures, progress as it runs
  neural-sk demo --quick --json -q        tiny settings in seconds, quiet, figures as JSON last
"""
_COMPRESS_EXAMPLES = """examples:
  neural-sk compress --input studies.csv --model pipeline.joblib --out archive/
  neural-sk compress --input studies.csv --model pipeline.joblib --out archive/ --resume --pixels png
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Show each option's default, where it has one worth showing; keep the examples' layout."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_default = any(action.default is v for v in (None, False, argparse.SUPPRESS))
        if no_default or "%(default)" in text:
            return text
        return text + " (default: %(default)s)"


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` and a counted ``-v``: progress is on by default (verbosity 1)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--verbose", "-v", action="count", default=1,
                       help="more detail; repeat for more")
    group.add_argument("--quiet", "-q", dest="verbose", action="store_const", const=0,
                       help="no progress, only the result and errors")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from .demo import DemoSettings

    full, quick = DemoSettings(), DemoSettings.quick()
    demo = sub.add_parser(
        "demo", help="run the whole method on the embedded synthetic data set",
        description="Fit on a training split of the embedded synthetic chest X-rays, evaluate on a\n"
        "held-out split, print a table and write pictures. Says which step runs and shows\n"
        "progress bars on stderr unless -q.",
        epilog=_DEMO_EXAMPLES, formatter_class=_HelpFormatter,
    )
    for flag, field, kind, text in (
        ("--n-samples", "n_samples", int, "studies to generate"),
        ("--image-size", "image_size", int, "input resolution in pixels"),
        ("--keep-ratio", "keep_ratio", float, "share of patches kept"),
        ("--epochs", "epochs", _epochs, "scorer training epochs, or 'auto'"),
    ):
        demo.add_argument(flag, type=kind, default=None, help=f"{text} (default: "
                          f"{getattr(full, field)}; with --quick: {getattr(quick, field)})")
    demo.add_argument("--out", default="neural_sk_demo_out", help="folder for the pictures")
    demo.add_argument("--random-state", type=int, default=0, help="seed of data, split and models")
    demo.add_argument("--quick", action="store_true", help="tiny settings (seconds, for CI)")
    demo.add_argument("--json", action="store_true", help="print the figures as JSON last")
    _add_verbosity(demo)


def _epochs(text: str) -> int | str:
    """An ``--epochs`` value: a count, or "auto" (the scorer's own choice)."""
    return text if text == "auto" else int(text)


def _add_compress(sub: argparse._SubParsersAction) -> None:
    comp = sub.add_parser(
        "compress", help="compress an archive of studies with a fitted model",
        description="Score, prune and fuse studies in batches and write shards plus a manifest. "
        "Exit status: 0 every study archived; 3 some studies failed (listed with their reasons "
        "in manifest.json); 1 the run stopped (configuration, model, input); 2 usage error.",
        epilog=_COMPRESS_EXAMPLES, formatter_class=_HelpFormatter,
    )
    comp.add_argument("--input", required=True, help="CSV with image,report columns, or a folder")
    comp.add_argument("--model", required=True, help="fitted pipeline or scorer (joblib file)")
    comp.add_argument("--out", required=True, help="output folder")
    comp.add_argument("--batch-size", type=int, default=32, help="studies scored at once")
    comp.add_argument("--shard-size", type=int, default=256, help="studies per shard")
    comp.add_argument("--resume", action="store_true", help="continue an interrupted run")
    comp.add_argument("--on-error", choices=["skip", "fail"], default="skip",
                      help="what a study that cannot be read does to the run")
    comp.add_argument("--feature-dtype", choices=["float16", "float32", "int8"],
                      default="float16", help="storage type of the kept patch features "
                      "(int8: one scale per study, lossy)")
    comp.add_argument("--fields", nargs="+", default=None, metavar="FIELD",
                      help="StudySet fields to store (default: the graphs, from which the keep "
                      "mask and fused graphs are rebuilt; to keep the full attention map and "
                      "the text too: --fields visual_graphs report_graphs graphs attention "
                      "reports)")
    comp.add_argument("--pixels", choices=["png", "jpeg"], default=None,
                      help="also store the image tiles under the kept patches (viewable)")
    comp.add_argument("--scheduler", default=None, help="address of a Dask scheduler")
    comp.add_argument("--device", default=None,
                      help="device for the model (cpu, cuda, auto); default: as it was saved")
    _add_verbosity(comp)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neural-sk",
        description="NEURAL as scikit-learn estimators: attention-guided pruning of chest "
        "X-rays into unified image + report graphs.",
        epilog="Run 'neural-sk COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"neural-sk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub)
    _add_compress(sub)
    return parser


@contextlib.contextmanager
def _log_steps(verbose: int) -> Iterator[None]:
    """While a command runs, send neural_sk's log (the step that runs) to stderr."""
    logger = logging.getLogger("neural_sk")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if verbose <= 0 else
                    logging.INFO if verbose == 1 else logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neural-sk`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: the command line).

    Returns
    -------
    int
        The exit status: 0 on success, 2 for a usage error (no command included).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    with _log_steps(args.verbose):
        if args.command == "demo":
            from .demo import run_demo_cli

            return run_demo_cli(args)
        from .compress import run_compress_cli

        return run_compress_cli(args)


if __name__ == "__main__":
    sys.exit(main())
