"""The ``msma`` command."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ._run import _Terminated

__all__ = ["main"]


def _auto_or_positive_int(value: str):
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f'expected "auto" or a positive integer, got {value!r}')
    return number


def _layers(value: str):
    if value == "all":
        return "all"
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layers must be 'all' or comma-separated integers (e.g. 0,6,12), got {value!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    from .. import __version__
    from ._config import FIELDS

    parser = argparse.ArgumentParser(
        prog="msma", description="Multi-Scale Manifold Alignment for language models."
    )
    parser.add_argument("--version", action="version", version=f"msma_sklearn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    ext = sub.add_parser("extract", help="pooled per-layer hidden states of texts -> .npz")
    ext.add_argument("--model", default="minilm", help="offline name, local dir or Hub id")
    ext.add_argument("--texts", required=True, help=".txt (one per line), .csv or .jsonl")
    ext.add_argument(
        "--out",
        required=True,
        help="output .npz file, or a directory: a sharded store (resumable; see --scheduler)",
    )
    ext.add_argument("--layers", type=_layers, default="all")
    ext.add_argument(
        "--pooling", default="mean", choices=["mean", "mean_all", "first", "cls", "last", "max"]
    )
    ext.add_argument("--max-length", type=int, default=128)
    ext.add_argument(
        "--batch-size",
        type=_auto_or_positive_int,
        default="auto",
        help='texts per forward pass ("auto": 32 on CPU, a 16,384-token budget on GPU)',
    )
    ext.add_argument("--device", default="auto")
    ext.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ext.add_argument("--stack", default="auto", choices=["auto", "encoder", "decoder"])
    ext.add_argument("--text-column", default="text", help="column/key for .csv/.jsonl")
    ext.add_argument(
        "--scheduler", help="dask.distributed scheduler address (tcp://host:8786) for the shards"
    )
    ext.add_argument("--shard-size", type=int, default=1024, help="texts per shard")
    ext.add_argument("--n-jobs", type=int, default=-1, help="parallel shards (joblib)")

    run = sub.add_parser(
        "run",
        help="run the whole study (default config, or --config FILE) and write a report",
        description="Run the study and write results/<run-id>/ with report.html. Flags "
        "override the config file's values. Re-running with the same --run-id resumes "
        "from the stages that finished.",
    )
    run.add_argument("--config", help="YAML config (write the default with `msma init-config`)")
    fields = {f.path: f for f in FIELDS}
    run.add_argument(
        "--quick",
        action="store_const",
        const=True,
        help=fields["quick"].comment + " (models: " + ",".join(fields["models"].quick) + ")",
    )
    run.add_argument("--out-dir", help=f"default: {fields['output.dir'].default}")
    run.add_argument("--run-id", help="one folder name (default: a timestamp)")
    run.add_argument(
        "--models",
        help="comma-separated model specs (default: " + ",".join(fields["models"].default) + ")",
    )
    run.add_argument(
        "--texts", help=fields["texts"].comment + f" (default: {fields['texts'].default})"
    )
    run.add_argument("--device")
    run.add_argument(
        "--restart",
        action="store_true",
        help="recompute every stage of this run id (the earlier report moves to previous/)",
    )

    init = sub.add_parser("init-config", help="write the default config, with comments")
    init.add_argument("path", nargs="?", default="msma.yaml", help="default: msma.yaml; - = stdout")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def _extract(args) -> int:
    import numpy as np

    from ..datasets import load_texts
    from ..extraction import HiddenStateExtractor
    from ..utils._io import atomic_path

    out = Path(args.out)
    if out.suffix and out.suffix != ".npz":
        raise ValueError(
            f"--out must name a .npz file or a directory (no suffix), got {str(out)!r}."
        )
    if args.scheduler and out.suffix:
        raise ValueError("--scheduler writes a sharded store: give --out a directory.")
    texts = load_texts(args.texts, text_column=args.text_column)
    ext = HiddenStateExtractor(
        args.model,
        layers=args.layers,
        pooling=args.pooling,
        max_length=args.max_length,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        stack=args.stack,
        shard_size=args.shard_size,
        verbose=1,
    )
    if not out.suffix:
        from ..extraction import extract_to_store

        t0 = time.perf_counter()
        store = extract_to_store(texts, out, ext, n_jobs=args.n_jobs, scheduler=args.scheduler)
        print(
            f"Wrote store {out}: {store.n_rows} texts x {store.n_features} features in "
            f"{store.manifest['n_shards']} shards ({args.model}, "
            f"{time.perf_counter() - t0:.1f} s)"
        )
        return 0
    ext.fit(texts)
    t0 = time.perf_counter()
    X = ext.transform(texts)
    seconds = time.perf_counter() - t0
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                X=X,
                layers=ext.layers_,
                feature_names=ext.get_feature_names_out().astype(str),
                model=np.array(str(args.model)),
                pooling=np.array(args.pooling),
            )
    print(
        f"Wrote {out}: {X.shape[0]} texts x {len(ext.layers_)} layers x {ext.hidden_size_} "
        f"({args.model}, {seconds:.1f} s)"
    )
    return 0


def _run(args) -> int:
    from ._run import load_config, run_study

    models = None
    if args.models is not None:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if not models:
            raise ValueError("--models is empty: name at least one model.")
    config = load_config(
        args.config,
        **{
            "models": models,
            "quick": args.quick,
            "output.dir": args.out_dir,
            "output.run_id": args.run_id,
            "texts": args.texts,
            "device": args.device,
        },
    )
    t0 = time.perf_counter()
    run_dir = run_study(config, restart=args.restart)
    print(
        f"Results in {run_dir} ({time.perf_counter() - t0:.0f} s); open {run_dir / 'report.html'}"
    )
    return 0


def _init_config(args) -> int:
    from ..utils._io import atomic_write_text
    from ._config import default_config_text

    text = default_config_text()
    if args.path == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.path)
    if path.exists() and not args.force:
        raise ValueError(f"{str(path)!r} exists; pass --force to overwrite it.")
    atomic_write_text(path, text)
    print(f"Wrote {path}; edit it, then: msma run --config {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``msma`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "extract":
            return _extract(args)
        if args.command == "init-config":
            return _init_config(args)
        return _run(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"msma {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except _Terminated as exc:
        print(f"msma {args.command}: stopped by {exc}; the same command resumes.", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(
            f"msma {args.command}: interrupted; the same command resumes from the last "
            "finished stage.",
            file=sys.stderr,
        )
        return 130
