"""Prunes a TFRecord (tf.Example) or Parquet dataset to the selected features, as a Beam job.

Keeps the features of a selection (``selection.json`` or its output directory), its label
and any ``--keep-columns``; writes the same format, sharded, into ``--output-dir`` and
marks it complete with ``_SUCCESS``. Options this script does not know are Beam pipeline
options (``--runner``, ``--project``, ``--region``, ``--temp_location``,
``--setup_file``, ``--sdk_container_image``, ``--direct_running_mode``,
``--direct_num_workers``, ...).

Examples:
    python -m pipelines.prune_dataset_job --input data/train.tfrecord.gz \\
        --selection runs/demo --output-dir data/train_pruned --keep-columns user_id \\
        --direct_running_mode=multi_processing --direct_num_workers=2
    python -m pipelines.prune_dataset_job --input 'gs://bucket/train/*.parquet' \\
        --selection gs://bucket/selection --output-dir gs://bucket/train_pruned \\
        --runner=DataflowRunner --project=my-project --region=us-central1 \\
        --temp_location=gs://bucket/tmp --setup_file=./setup.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The job's own flags; everything else is handed to Beam."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.prune_dataset_job",
        description=__doc__.split("\n")[0],
        allow_abbrev=False,  # never take a Beam flag for an abbreviation of ours
    )
    parser.add_argument("--input", required=True, help="TFRecord or Parquet file, dir or glob.")
    parser.add_argument(
        "--selection", required=True, help="selection.json, or the selection's output directory."
    )
    parser.add_argument("--output-dir", required=True, help="Destination (must be empty).")
    parser.add_argument(
        "--keep-columns",
        nargs="*",
        default=[],
        help="Extra columns to keep (space- or comma-separated), e.g. user_id,timestamp.",
    )
    parser.add_argument(
        "--num-shards", type=int, default=0, help="Output shards (default 0: runner decides)."
    )
    parser.add_argument(
        "--sample-records",
        type=int,
        default=1000,
        help="TFRecord records checked before launching (0: skip; the end check remains).",
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace a non-empty output.")
    from recsel.params import add_verbose_arg

    add_verbose_arg(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the flags, runs the job and prints a summary; returns the exit code."""
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    import recsel  # noqa: F401  (quiet mode and Keras 2, before Beam and TensorFlow load)

    # isort: split
    from apache_beam.options.pipeline_options import PipelineOptions

    from recsel import quiet

    quiet.install(verbose=args.verbose or None, command_line=True)
    from recsel.beam.prune_dataset import PruneJob, run_prune

    keep = [c.strip() for item in args.keep_columns for c in item.split(",") if c.strip()]
    try:
        job = PruneJob(
            input=args.input,
            selection=args.selection,
            output_dir=args.output_dir,
            keep_columns=tuple(keep),
            num_shards=args.num_shards,
            sample_records=args.sample_records,
            overwrite=args.overwrite,
        )
        manifest = run_prune(job, PipelineOptions(beam_args))
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"prune_dataset_job: error: {message}", file=sys.stderr)
        return 2
    counts = manifest["counters"]
    print(
        f"Kept {len(manifest['columns'])} columns ({', '.join(manifest['columns'])}) of "
        f"{counts.get('records_in', 0)} {manifest['format']} records; wrote "
        f"{counts.get('records_out', 0)} records in {len(manifest['files'])} file(s) to "
        f"{args.output_dir} in {manifest['seconds']:.1f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
