"""The ``recsel`` command line: ``recsel select`` on a file, ``recsel demo`` on synthetic data.

Examples:
    recsel select data.parquet --label clicked --num-features 20 --output-dir out/
    recsel select train.tfrecord.gz --label clicked --latency-budget 3ms --output-dir out/
    recsel select train.tfrecord.gz --label clicked --latency-budget 50% --output-dir out/
    recsel demo --output-dir runs/demo
    recsel report out/
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import NamedTuple

_LATENCY_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_MEMORY_UNITS = {
    "b": 1,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def _quantity(text: str, units: dict[str, float], what: str, default_unit: str) -> float:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ]*)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number with a unit (e.g. 3ms).")
    value, unit = float(match.group(1)), (match.group(2) or default_unit).lower()
    if unit not in units:
        raise argparse.ArgumentTypeError(
            f"{what} {text!r} has unknown unit {match.group(2)!r}; use one of {', '.join(units)}."
        )
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{what} must be positive, got {text!r}.")
    return value * units[unit]


def parse_latency_ms(text: str) -> float:
    """'3ms' -> 3.0; '500us' -> 0.5; '0.01s' -> 10.0 (bare numbers are milliseconds)."""
    return _quantity(text, _LATENCY_UNITS, "Latency budget", "ms")


class LatencyBudget(NamedTuple):
    """A parsed ``--latency-budget``: milliseconds, or a share of the full model's latency."""

    ms: float | None = None
    fraction: float | None = None


def parse_latency_budget(text: str) -> LatencyBudget:
    """'3ms' -> 3 ms; '50%' -> half the full model's measured latency on this machine."""
    if text.strip().endswith("%"):
        try:
            percent = float(text.strip()[:-1])
        except ValueError:
            percent = float("nan")
        if not 0 < percent <= 100:
            raise argparse.ArgumentTypeError(
                f"Latency budget {text!r} must be a percentage in (0, 100] of the full model's latency."
            )
        return LatencyBudget(fraction=percent / 100)
    return LatencyBudget(ms=parse_latency_ms(text))


def parse_memory_bytes(text: str) -> float:
    """'2GB' -> 2e9; '512MiB' -> 536870912 (bare numbers are bytes)."""
    return _quantity(text, _MEMORY_UNITS, "Memory budget", "b")


def add_selection_args(parser: argparse.ArgumentParser) -> None:
    """Adds the selection flags shared by ``recsel select``, ``recsel demo`` and the Beam jobs."""
    group = parser.add_argument_group("selection")
    count = group.add_mutually_exclusive_group()
    count.add_argument("--num-features", type=int, help="Features to keep.")
    count.add_argument("--fraction", type=float, help="Share of the candidate features to keep.")
    group.add_argument(
        "--latency-budget",
        type=parse_latency_budget,
        metavar="TIME|PCT",
        help="p50 serving latency budget at --serving-batch-size: a time (3ms) or a share of "
        "the full model's latency measured on this machine (50%%).",
    )
    group.add_argument(
        "--memory-budget",
        type=parse_memory_bytes,
        metavar="SIZE",
        help="Embedding-table memory budget, e.g. 2GB.",
    )
    group.add_argument("--serving-batch-size", type=int, default=512)
    group.add_argument("--chunk-size", type=int, default=8, help="Columns per chunk candidate.")
    group.add_argument(
        "--dim-multiple", type=int, default=8, help="Round widths up to this multiple."
    )
    group.add_argument("--min-dim", type=int, default=8)
    group.add_argument("--max-dim", type=int)
    group.add_argument(
        "--embedding-dim", type=int, default=32, help="Full width of inferred features."
    )
    group.add_argument(
        "--min-count",
        type=int,
        help="Vocabulary frequency threshold of inferred features: values seen fewer times in "
        "training map to OOV (default 5, recsel.inference.DEFAULT_MIN_COUNT; 1 keeps every "
        "value). Rare values can only be memorised, which lets ID-like columns win selection.",
    )
    group.add_argument("--batch-size", type=int, default=256)
    group.add_argument(
        "--epochs", type=float, default=1.0, help="Passes over the training rows (keep ~1)."
    )
    group.add_argument(
        "--train-steps", type=int, help="Training steps of the whole run (overrides --epochs)."
    )
    group.add_argument("--learning-rate", type=float, default=3e-3)
    group.add_argument("--seed", type=int, default=0)
    group.add_argument(
        "--tower",
        metavar="SPEC",
        help="Custom selection tower: 'file.py:function' or 'package.module:function' returning "
        "a tf_keras layer from the embedding vector to one logit (see recsel.tower).",
    )
    parser.add_argument("--output-dir", required=True, help="Where the outputs go (must be empty).")
    parser.add_argument(
        "--overwrite", action="store_true", help="Replace a non-empty --output-dir."
    )
    parser.add_argument("--log-dir", help="TensorBoard log directory for attention traces.")
    parser.add_argument(
        "--checkpoint-dir",
        help="Checkpoints (default: <output-dir>.checkpoint); rerunning "
        "the same command resumes from them. Removed on success.",
    )
    parser.add_argument("--quiet", action="store_true", help="No progress bars.")
    add_verbose_arg(parser)


def add_verbose_arg(parser: argparse.ArgumentParser) -> None:
    """Adds ``--verbose``: every third-party log line too (see ``recsel._quiet``)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="Also show third-party log lines (TF, TFX, Beam); same as RECSEL_VERBOSE=1.",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsel", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    sel = commands.add_parser(
        "select", help="Select features and widths on a CSV, Parquet or TFRecord file."
    )
    sel.add_argument(
        "data", help="Training data: .csv, .parquet or .tfrecord[.gz] file, directory or glob."
    )
    sel.add_argument("--label", required=True, help="Binary label column.")
    spec = sel.add_mutually_exclusive_group()
    spec.add_argument("--features", help="Feature spec JSON (schemas/feature_spec.schema.json).")
    spec.add_argument("--schema", help="TFMD schema.pbtxt describing the features.")
    sel.add_argument("--statistics", help="TFDV statistics for --schema (vocabularies, valency).")
    sel.add_argument(
        "--validation-data", help="Separate validation file (default: split the data)."
    )
    sel.add_argument("--validation-fraction", type=float, default=0.2)
    sel.add_argument(
        "--time-column", help="Validate on the latest rows by this column (and exclude it)."
    )
    sel.add_argument("--exclude", nargs="*", default=[], help="Columns that are not candidates.")
    sel.add_argument(
        "--categorical", nargs="*", default=[], help="Integer columns to treat as categorical."
    )
    sel.add_argument(
        "--stream",
        choices=["auto", "on", "off"],
        default="auto",
        help="Stream the shards (one statistics pass, bounded memory) instead of reading "
        "them into memory. auto: stream TFRecord or Parquet data of two or more shards.",
    )
    sel.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multi-worker"],
        default="default",
        help="tf.distribute strategy for the selection's training (streaming only): "
        "mirrored (this machine's devices) or multi-worker (workers from TF_CONFIG, as on "
        "Vertex AI Training; each worker streams its own shards, the chief writes outputs).",
    )
    sel.add_argument(
        "--shuffle-buffer",
        type=int,
        default=10_000,
        help="Rows in the streaming shuffle buffer (memory is bounded by it).",
    )
    sel.add_argument(
        "--nan-policy",
        choices=["raise", "impute"],
        default="raise",
        help="NaN/inf in numeric features: fail (default) or impute the column mean.",
    )
    add_selection_args(sel)

    demo = commands.add_parser(
        "demo", help="Run selection on the embedded synthetic data with planted truth."
    )
    demo.add_argument("--rows", type=int, default=40_000)
    add_selection_args(demo)
    demo.set_defaults(num_features=8, embedding_dim=16)

    report = commands.add_parser(
        "report", help="Print the summary of a finished selection and where its report is."
    )
    report.add_argument(
        "output_dir",
        help="A recsel output directory (CLI or ensemble job), a TFX selector artifact, or a "
        "directory above them such as a TFX pipeline's output (the newest selection is shown).",
    )
    add_verbose_arg(report)
    return parser


def config_from_args(args: argparse.Namespace):
    """The ``SelectionConfig`` for flags added by ``add_selection_args`` (shared with Beam jobs)."""
    from recsel.config import SelectionConfig

    return SelectionConfig(
        num_features=args.num_features,
        feature_fraction=args.fraction,
        latency_budget_ms=args.latency_budget.ms if args.latency_budget else None,
        latency_budget_fraction=args.latency_budget.fraction if args.latency_budget else None,
        memory_budget_bytes=args.memory_budget,
        serving_batch_size=args.serving_batch_size,
        chunk_size=args.chunk_size,
        dim_multiple=args.dim_multiple,
        min_dim=args.min_dim,
        max_dim=args.max_dim,
        batch_size=args.batch_size,
        epochs=args.epochs,
        train_steps=getattr(args, "train_steps", None),
        learning_rate=args.learning_rate,
        seed=args.seed,
        tower=getattr(args, "tower", None),
    )


def _checkpoint_dir(args: argparse.Namespace) -> str:
    return args.checkpoint_dir or args.output_dir.rstrip("/") + ".checkpoint"


def _select_and_write(
    args: argparse.Namespace, config, train, valid, features, schema=None, strategy=None
):
    """The shared tail of both commands: one ``select()``, one output writer, a summary."""
    from recsel.outputs import write_outputs
    from recsel.selection import select

    result = select(
        train,
        valid,
        features,
        config,
        log_dir=args.log_dir,
        progress=not args.quiet,
        checkpoint_dir=_checkpoint_dir(args),
        strategy=strategy,
    )
    write_outputs(result, features, args.output_dir, input_schema=schema, overwrite=args.overwrite)
    print(result.summary())
    return result


def run_select(args: argparse.Namespace) -> int:
    from recsel import inference, tabular
    from recsel.atomic import check_output_dir

    # A multi-worker strategy must exist before TensorFlow runs its first op.
    strategy = _make_strategy(args.strategy)
    config = config_from_args(args)
    check_output_dir(args.output_dir, args.overwrite)
    if strategy is not None or _should_stream(args):
        return _run_select_streaming(args, config, strategy)
    features, schema = _given_features(args)
    if _is_parquet(args):
        return _run_select_table(args, config, features, schema)
    frame = tabular.read_table(args.data, label=args.label)
    if args.validation_data:
        train, valid = frame, tabular.read_table(args.validation_data, label=args.label)
    else:
        train, valid = tabular.split_frame(
            frame, args.validation_fraction, args.seed, args.time_column
        )
    exclude = [*args.exclude, *([args.time_column] if args.time_column else [])]
    if features is None:
        features = inference.infer_feature_set(
            train,
            args.label,
            embedding_dim=args.embedding_dim,
            min_count=args.min_count or inference.DEFAULT_MIN_COUNT,
            categorical=args.categorical,
            exclude=exclude,
        )
    train = tabular.validate_frame(
        train, features, args.label, nan_policy=args.nan_policy, source=args.data
    )
    valid = tabular.validate_frame(
        valid,
        features,
        args.label,
        nan_policy=args.nan_policy,
        source=args.validation_data or args.data,
    )
    _select_and_write(args, config, train, valid, features, schema)
    print(f"Outputs written to {args.output_dir}")
    return 0


def _given_features(args: argparse.Namespace):
    """(features, input schema) from --features or --schema; (None, None) to infer them."""
    from recsel import schema_io
    from recsel.features import FeatureSet

    if args.features:
        features = FeatureSet.from_json(args.features)
        if features.label is None:
            features = FeatureSet(features.features, args.label)
        return features, None
    if args.schema:
        schema = schema_io.read_schema(args.schema)
        stats = schema_io.read_statistics(args.statistics) if args.statistics else None
        features = schema_io.feature_set_from_schema(
            schema, args.label, stats, embedding_dim=args.embedding_dim
        )
        return features, schema
    return None, None


def _is_parquet(args: argparse.Namespace) -> bool:
    from recsel.inputs.arrow_table import is_parquet

    paths = [args.data, *([args.validation_data] if args.validation_data else [])]
    return all(is_parquet(p) for p in paths)


def _run_select_table(args: argparse.Namespace, config, features, schema) -> int:
    """``recsel select`` on Parquet in memory: Arrow columns to compact tensors, no frame."""
    from recsel import inference
    from recsel.inputs.arrow_table import prepare_table

    inputs = prepare_table(
        args.data,
        args.label,
        validation_data=args.validation_data,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        time_column=args.time_column,
        features=features,
        nan_policy=args.nan_policy,
        exclude=args.exclude,
        embedding_dim=args.embedding_dim,
        min_count=args.min_count or inference.DEFAULT_MIN_COUNT,
        categorical=args.categorical,
    )
    _select_and_write(args, config, inputs.train, inputs.valid, inputs.features, schema)
    print(f"Outputs written to {args.output_dir}")
    return 0


def _should_stream(args: argparse.Namespace) -> bool:
    if args.stream != "auto":
        return args.stream == "on"
    from recsel._table_io import format_of
    from recsel.inputs.readers import resolve_paths

    files = resolve_paths(args.data)
    return len(files) >= 2 and format_of(files[0]) in ("tfrecord", "parquet")


def _make_strategy(name: str):
    if name == "default":
        return None
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "--strategy multi-worker reads the cluster from TF_CONFIG, which is not set; "
            "set it on every worker (Vertex AI Training does), or use --strategy mirrored."
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def _worker(strategy) -> tuple[int, int]:
    """(this worker's index, number of workers); the chief, if any, is worker 0."""
    if strategy is None or not strategy.extended._in_multi_worker_mode():
        return 0, 1
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    chiefs = len(cluster.get("chief", []))
    index = 0 if resolver.task_type == "chief" else resolver.task_id + chiefs
    return index, chiefs + len(cluster.get("worker", []))


def _run_select_streaming(args: argparse.Namespace, config, strategy=None) -> int:
    """``recsel select`` on a stream: statistics pass, specs, FileStreams; no frame."""
    import tempfile

    from recsel import inference
    from recsel.features import FeatureSet
    from recsel.inputs.prepare import prepare_streams

    if args.time_column or args.nan_policy != "raise":
        flag = "--time-column" if args.time_column else "--nan-policy impute"
        raise ValueError(
            f"{flag} needs the whole table in memory; it is not available while streaming. "
            "Write the split (or the imputed values) into the shards, or pass --stream off."
        )
    features = FeatureSet.from_json(args.features) if args.features else None
    if features is not None and features.label is None:
        features = FeatureSet(features.features, args.label)
    worker, workers = _worker(strategy)
    inputs = prepare_streams(
        args.data,
        args.label,
        work_dir=os.path.join(_checkpoint_dir(args), f"statistics-{worker}"),
        worker_index=worker,
        num_workers=workers,
        validation_data=args.validation_data,
        validation_fraction=args.validation_fraction,
        features=features,
        schema_path=args.schema,
        statistics_path=args.statistics,
        categorical=args.categorical,
        exclude=args.exclude,
        embedding_dim=args.embedding_dim,
        frequency_threshold=args.min_count or inference.DEFAULT_MIN_COUNT,
        batch_size=config.batch_size,
        shuffle_buffer=args.shuffle_buffer,
        seed=config.seed,
    )
    print(
        f"Streaming {len(inputs.train.files)} training and {len(inputs.valid.files)} "
        f"validation shard(s); {inputs.train.num_rows} training rows (from the statistics).",
        flush=True,
    )
    if worker != 0:  # the chief publishes; the other workers' copies are thrown away
        args.output_dir = tempfile.mkdtemp(prefix=f"recsel-worker-{worker}-")
        args.overwrite = True
    _select_and_write(
        args, config, inputs.train, inputs.valid, inputs.features, inputs.schema, strategy
    )
    print(f"Outputs written to {args.output_dir}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from recsel import inference, tabular
    from recsel.atomic import check_output_dir
    from recsel.data.synthetic import make_synthetic

    config = config_from_args(args)
    check_output_dir(args.output_dir, args.overwrite)
    data = make_synthetic(n_rows=args.rows, seed=args.seed)
    print(
        f"Synthetic data: {len(data.frame)} rows, {len(data.feature_columns())} candidate features "
        f"({len(data.informative)} informative, {len(data.duplicates)} duplicates, "
        f"{len(data.noise)} noise of which {len(data.traps)} ID-like traps)."
    )
    train, valid = tabular.split_frame(data.frame, 0.2, args.seed)
    features = inference.infer_feature_set(
        train,
        data.label,
        embedding_dim=args.embedding_dim,
        min_count=args.min_count or inference.DEFAULT_MIN_COUNT,
    )
    train = tabular.validate_frame(train, features, data.label)
    valid = tabular.validate_frame(valid, features, data.label)
    result = _select_and_write(args, config, train, valid, features)
    group_of = {c: g for g, members in data.groups().items() for c in members}
    recovered = {group_of[s] for s in result.selected if s in group_of}
    role = {
        **{c: "informative" for c in data.informative},
        **{c: f"copy of {o}" for c, o in data.duplicates.items()},
        **{c: "noise" for c in data.noise},
        **{c: "ID-like trap" for c in data.traps},
    }
    print("Planted truth: " + ", ".join(f"{s} ({role[s]})" for s in result.selected))
    print(
        f"Recovered {len(recovered)} of {len(data.informative)} informative features; "
        f"{len(result.selected) - len(recovered)} redundant or noise picks."
    )
    print(f"Outputs written to {args.output_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from recsel import _quiet  # importing recsel pins Keras 2 before TensorFlow loads

    _quiet.install(verbose=args.verbose or _quiet.verbose_requested([]))
    from recsel._cli_report import run_report

    commands = {"select": run_select, "demo": run_demo, "report": run_report}
    try:
        return commands[args.command](args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"recsel: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
