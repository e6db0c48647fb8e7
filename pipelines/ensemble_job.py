"""Ensembled feature selection as a Beam batch job (DirectRunner locally, Dataflow in the cloud).

Runs ``--num-runs`` selections with seeds ``--seed``, ``--seed + 1``, ... (each on a disjoint
shard of the training rows with ``--shards``), then writes one consensus in the single-run
output format plus ``runs/run-<i>.json`` and ``ensemble.json``. Options this script does not
know are Beam pipeline options (``--runner``, ``--project``, ``--region``,
``--temp_location``, ``--setup_file``, ``--sdk_container_image``, ``--direct_running_mode``,
``--direct_num_workers``, ...).

Examples:
    python -m pipelines.ensemble_job --input data/events.parquet --label clicked \\
        --num-runs 3 --num-features 8 --output-dir runs/ensemble \\
        --direct_running_mode=multi_processing --direct_num_workers=2
    python -m pipelines.ensemble_job --input gs://bucket/events/ --label clicked \\
        --num-runs 5 --num-features 20 --output-dir gs://bucket/selection \\
        --runner=DataflowRunner --project=my-project --region=us-central1 \\
        --temp_location=gs://bucket/tmp --setup_file=./setup.py
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The job's own flags; everything else is handed to Beam.

    The flags shared with ``recsel select`` are generated from ``recsel.params``.
    """
    from recsel import params

    # allow_abbrev=False: a Beam flag such as --labels must not be taken for --label.
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.ensemble_job",
        description=__doc__.split("\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument(
        "--input", required=True, help="CSV / Parquet / TFRecord file, dir or glob."
    )
    parser.add_argument("--label", required=True, help="Binary label column.")
    parser.add_argument("--num-runs", type=int, default=3, help="Selection runs (at least 2).")
    parser.add_argument(
        "--shards", action="store_true", help="Train each run on a disjoint shard of the rows."
    )
    parser.add_argument("--features", help="Feature spec JSON (default: inferred on a worker).")
    parser.add_argument(
        "--no-refit",
        action="store_true",
        help="Do not train a ranker on the consensus; metrics are then per-run means.",
    )
    params.add_cli_args(parser, (params.CONFIG, params.FEATURES, params.DATA, params.RUN))
    parser.add_argument("--quiet", action="store_true", help="No progress lines.")
    params.add_verbose_arg(parser)
    return parser


def job_options(args: argparse.Namespace) -> dict:
    """The ``EnsembleJob`` keyword arguments of the flags ``recsel.params`` generated."""
    from recsel import params

    values = params.values_from_args(args)
    shared = {p.name: values[p.name] for p in params.on(params.BEAM) if p.group != params.CONFIG}
    return {**shared, "config": params.config_from_args(args)}


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the flags, runs the job and prints the final summary; returns the exit code."""
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    import recsel  # noqa: F401  (quiet mode and Keras 2, before Beam and TensorFlow load)

    # isort: split
    from apache_beam.options.pipeline_options import PipelineOptions

    from recsel import quiet
    from recsel.atomic import read_text
    from recsel.beam import SHORT_RULE
    from recsel.beam.ensemble import EnsembleJob, run_ensemble

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # recsel's lines: one plain line each
    quiet.install(verbose=args.verbose or None, command_line=True)
    if args.quiet:
        logging.getLogger("recsel").setLevel(logging.WARNING)
    try:
        features = None
        if args.features:
            import json

            features = json.loads(read_text(args.features))
        job = EnsembleJob(
            input=args.input,
            label=args.label,
            num_runs=args.num_runs,
            shards=args.shards,
            features=features,
            refit=not args.no_refit,
            **job_options(args),
        )
        record = run_ensemble(job, PipelineOptions(beam_args))
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"ensemble_job: error: {message}", file=sys.stderr)
        return 2
    consensus = record["consensus"]
    print(
        f"Consensus of {len(record['runs'])} runs ({SHORT_RULE}; the whole rule is in "
        "ensemble.json):\n  "
        + ", ".join(f"{n} (dim {consensus['dims'][n]})" for n in consensus["selected"])
    )
    print(f"Mean pairwise Jaccard similarity of the runs: {record['jaccard_mean']:.3f}")
    print(f"Outputs written to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
