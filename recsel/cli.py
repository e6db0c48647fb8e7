"""The ``recsel`` command line: ``select`` on a file, ``demo`` on synthetic data, ``report``.

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
import sys
from collections.abc import Sequence

from recsel import params
from recsel.params import (  # noqa: F401  (public names of the CLI since before params.py)
    LatencyBudget,
    parse_latency_budget,
    parse_latency_ms,
    parse_memory_bytes,
)

# Public names of the CLI module, generated from recsel.params (the Beam job used to
# import them from here; it now imports recsel.params).
add_verbose_arg = params.add_verbose_arg
config_from_args = params.config_from_args


def add_selection_args(parser: argparse.ArgumentParser) -> None:
    """Adds the flags shared by ``recsel select``, ``recsel demo`` and the Beam jobs.

    They are generated from ``recsel.params``: the selection settings, how candidates are
    built, and where a run writes; plus ``--quiet`` and ``--verbose``.
    """
    params.add_cli_args(parser, (params.CONFIG, params.FEATURES, params.RUN))
    parser.add_argument("--quiet", action="store_true", help="No progress bars.")
    add_verbose_arg(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsel",
        description="Choose which features a ranker keeps and how wide each embedding is, "
        "with Sequential Attention.",
        epilog="examples:\n" + __doc__.split("Examples:\n", 1)[1].rstrip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sel = commands.add_parser(
        "select", help="Select features and widths on a CSV, Parquet or TFRecord file."
    )
    sel.add_argument(
        "data",
        help="Training data: .csv[.gz], .parquet or .tfrecord[.gz] file, directory or glob.",
    )
    sel.add_argument("--label", required=True, help="Binary label column.")
    spec = sel.add_mutually_exclusive_group()
    spec.add_argument("--features", help="Feature spec JSON (schemas/feature_spec.schema.json).")
    spec.add_argument("--schema", help="TFMD schema.pbtxt describing the features.")
    sel.add_argument("--statistics", help="TFDV statistics for --schema (vocabularies, valency).")
    sel.add_argument(
        "--validation-data", help="Separate validation file (default: split the data)."
    )
    sel.add_argument(
        "--time-column", help="Validate on the latest rows by this column (and exclude it)."
    )
    sel.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multi-worker"],
        default="default",
        help="tf.distribute strategy for the selection's training (streaming only): "
        "mirrored (this machine's devices) or multi-worker (workers from TF_CONFIG, as on "
        "Vertex AI Training; each worker streams its own shards, the chief writes outputs).",
    )
    params.add_cli_args(sel, (params.DATA,))
    add_selection_args(sel)

    demo = commands.add_parser(
        "demo", help="Run selection on the embedded synthetic data with planted truth."
    )
    demo.add_argument("--rows", type=int, default=40_000)
    add_selection_args(demo)
    demo.set_defaults(num_features=8)

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


def _select_and_write(args: argparse.Namespace, config, inputs, strategy=None):
    """The shared tail of both commands: one ``select()``, one output writer, a summary."""
    from recsel.outputs.write import write_outputs
    from recsel.selection.driver import select

    result = select(
        inputs.train,
        inputs.valid,
        inputs.features,
        config,
        log_dir=args.log_dir,
        progress=not args.quiet,
        checkpoint_dir=params.default_checkpoint_dir(args.output_dir, args.checkpoint_dir),
        strategy=strategy,
    )
    write_outputs(
        result,
        inputs.features,
        args.output_dir,
        input_schema=inputs.schema,
        overwrite=args.overwrite,
    )
    print(result.summary())
    return result


def run_select(args: argparse.Namespace) -> int:
    """``recsel select``: parse -> inputs.prepare -> select -> outputs.write."""
    import tempfile

    from recsel.atomic import check_output_dir
    from recsel.inputs.prepare import InputOptions, prepare
    from recsel.spec.features import FeatureSet

    # A multi-worker strategy must exist before TensorFlow runs its first op.
    strategy = _make_strategy(args.strategy)
    config = config_from_args(args)
    inputs = [args.data, args.validation_data, args.features, args.schema, args.statistics]
    check_output_dir(args.output_dir, args.overwrite, inputs)
    options = InputOptions.from_values(
        args.label, params.values_from_args(args), time_column=args.time_column, seed=config.seed
    )
    worker, workers = _worker(strategy)
    checkpoints = params.default_checkpoint_dir(args.output_dir, args.checkpoint_dir)
    inputs = prepare(
        args.data,
        options,
        stream="on" if strategy is not None else args.stream,
        validation_data=args.validation_data,
        features=FeatureSet.from_json(args.features) if args.features else None,
        schema_path=args.schema,
        statistics_path=args.statistics,
        work_dir=os.path.join(checkpoints, f"statistics-{worker}"),
        batch_size=config.batch_size,
        shuffle_buffer=args.shuffle_buffer,
        worker_index=worker,
        num_workers=workers,
    )
    if inputs.streaming:
        print(
            f"Streaming {len(inputs.train.files)} training and {len(inputs.valid.files)} "
            f"validation shard(s); {inputs.train.num_rows} training rows (from the statistics).",
            flush=True,
        )
    if worker != 0:  # the chief publishes; the other workers' copies are thrown away
        args.output_dir = tempfile.mkdtemp(prefix=f"recsel-worker-{worker}-")
        args.overwrite = True
    _select_and_write(args, config, inputs, strategy)
    print(f"Outputs written to {args.output_dir}")
    return 0


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


def run_demo(args: argparse.Namespace) -> int:
    from recsel.atomic import check_output_dir
    from recsel.data.synthetic import make_synthetic
    from recsel.inputs import splits, tabular
    from recsel.inputs.prepare import InputOptions, Inputs, build_features

    config = config_from_args(args)
    check_output_dir(args.output_dir, args.overwrite)
    data = make_synthetic(n_rows=args.rows, seed=args.seed)
    print(
        f"Synthetic data: {len(data.frame)} rows, {len(data.feature_columns())} candidate features "
        f"({len(data.informative)} informative, {len(data.duplicates)} duplicates, "
        f"{len(data.noise)} noise of which {len(data.traps)} ID-like traps)."
    )
    options = InputOptions.from_values(data.label, params.values_from_args(args), seed=args.seed)
    train, valid = splits.split_frame(data.frame, options.validation_fraction, args.seed)
    features = build_features(options, frame=train)
    train = tabular.validate_frame(train, features, data.label)
    valid = tabular.validate_frame(valid, features, data.label)
    result = _select_and_write(args, config, Inputs(train, valid, features))
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
    from recsel import quiet

    quiet.install(verbose=args.verbose or quiet.verbose_requested([]), command_line=True)
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
