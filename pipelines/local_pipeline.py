"""A TFX pipeline with the selector in it: ExampleGen to Pusher, on three orchestrators.

CsvExampleGen -> StatisticsGen -> SchemaGen -> SequentialAttentionSelector -> Transform
(on the selector's pruned schema) -> SelectionAwareTrainer (a TFRS ranker whose
embeddings follow the selector's ``embedding_config.json``) -> Pusher. One definition,
``create_pipeline``, runs locally (``run_local``: LocalDagRunner), on Beam
(``run_beam``: BeamDagRunner) or compiles for Vertex AI Pipelines with Dataflow for the
Beam steps (``compile_for_vertex``).

``main()`` runs it with LocalDagRunner on synthetic data (``recsel.data.make_synthetic``)
written to CSV. CSV cannot hold lists, so the data is drawn with ``max_valency=1``:
every multi-hot cell then holds exactly one token, and it is written as that token (a
plain categorical column; a one-token bag is its token, so the planted roles hold).

Example:
    python -m pipelines.local_pipeline --rows 10000 --latency-budget 50% --output-dir runs/tfx_demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

PIPELINES_DIR = os.path.dirname(os.path.abspath(__file__))
TRANSFORM_MODULE = os.path.join(PIPELINES_DIR, "transform_module.py")
TRAINER_MODULE = os.path.join(PIPELINES_DIR, "trainer_module.py")


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    metadata_path: str | None,
    serving_model_dir: str,
    beam_pipeline_args: Sequence[str] | None = None,
    *,
    label_key: str = "label",
    train_steps: int = 200,
    trainer_config: dict[str, Any] | None = None,
    transform_module: str = TRANSFORM_MODULE,
    trainer_module: str = TRAINER_MODULE,
    enable_cache: bool = True,
    selector_tower_fn: str | None = "build_tower",
    **selector_params: Any,
):
    """The pipeline definition, for any orchestrator.

    Args:
        pipeline_name: Pipeline name (also its MLMD context).
        pipeline_root: Root of the artifacts (local path or ``gs://``).
        data_root: Directory of the CSV input files.
        metadata_path: SQLite MLMD file; None leaves metadata to the orchestrator
            (Vertex AI Pipelines).
        serving_model_dir: Where Pusher copies the trained SavedModel.
        beam_pipeline_args: Beam options of every Beam step (ExampleGen, StatisticsGen,
            the selector's statistics pass, Transform), e.g. Dataflow flags.
        label_key: The binary label column.
        train_steps: Trainer steps.
        trainer_config: Extra ``custom_config`` for ``trainer_module`` (``batch_size``,
            ``hidden_units``, ``learning_rate``, ``seed``).
        transform_module: Transform module file.
        trainer_module: Trainer module file.
        enable_cache: Reuse results of executions with unchanged inputs.
        selector_tower_fn: A tower factory in ``trainer_module`` that the selector scores
            features with, so they are chosen for the trainer's own head (its default
            widths); None uses recsel's default tower.
        **selector_params: ``SequentialAttentionSelector`` arguments (``num_features``,
            ``latency_budget_ms``, ``latency_budget_fraction``, ``embedding_dim``, ``seed``, ...).

    Returns:
        The ``tfx.dsl.Pipeline``.

    Example:
        >>> p = create_pipeline("demo", "runs/root", "runs/data", "runs/mlmd.sqlite",
        ...                     "runs/serving", num_features=8)
    """
    from tfx import v1 as tfx

    from recsel.tfx import SelectionAwareTrainer, SequentialAttentionSelector

    example_gen = tfx.components.CsvExampleGen(input_base=data_root)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    selector = SequentialAttentionSelector(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        statistics=statistics_gen.outputs["statistics"],
        label_key=label_key,
        **(
            dict(module_file=trainer_module, tower_fn=selector_tower_fn)
            if selector_tower_fn
            else {}
        ),
        **selector_params,
    )
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=selector.outputs["pruned_schema"],
        module_file=transform_module,
        custom_config={"label_key": label_key},
        materialize=False,  # the trainer applies the transform graph itself
        disable_statistics=True,
    )
    trainer = SelectionAwareTrainer(
        examples=example_gen.outputs["examples"],
        feature_selection=selector.outputs["feature_selection"],
        transform_graph=transform.outputs["transform_graph"],
        schema=selector.outputs["pruned_schema"],
        module_file=trainer_module,
        train_args=tfx.proto.TrainArgs(num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(),  # run_fn evaluates on the whole eval split
        custom_config={"label_key": label_key, **(trainer_config or {})},
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, selector, transform, trainer, pusher],
        enable_cache=enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
            if metadata_path
            else None
        ),
        beam_pipeline_args=list(beam_pipeline_args or []),
    )


def run_local(pipeline) -> None:
    """Runs the pipeline in this process with ``LocalDagRunner``.

    Args:
        pipeline: From ``create_pipeline`` (with a ``metadata_path``).

    Example:
        >>> run_local(create_pipeline("demo", root, data, "mlmd.sqlite", serving, num_features=8))
    """
    from tfx import v1 as tfx

    tfx.orchestration.LocalDagRunner().run(pipeline)


def run_beam(pipeline) -> None:
    """Runs the pipeline with ``BeamDagRunner`` (each component a Beam step).

    Args:
        pipeline: From ``create_pipeline`` (with a ``metadata_path``); its
            ``beam_pipeline_args`` configure the components' Beam steps.

    Example:
        >>> run_beam(create_pipeline("demo", root, data, "mlmd.sqlite", serving,
        ...     ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]))
    """
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    BeamDagRunner().run(pipeline)


def dataflow_beam_args(project: str, region: str, temp_location: str, image: str) -> list[str]:
    """Beam options that run every Beam step of the pipeline on Dataflow.

    Args:
        project: GCP project.
        region: Dataflow region, e.g. ``us-central1``.
        temp_location: ``gs://`` staging directory.
        image: Worker container image with recsel and TFX installed (workers import
            ``recsel.tfx.executor.Executor`` and TFDV).

    Returns:
        The ``beam_pipeline_args`` for ``create_pipeline``.

    Example:
        >>> args = dataflow_beam_args("my-project", "us-central1", "gs://b/tmp", "IMAGE")
    """
    return [
        "--runner=DataflowRunner",
        f"--project={project}",
        f"--region={region}",
        f"--temp_location={temp_location}",
        f"--sdk_container_image={image}",
        "--experiments=use_runner_v2",
    ]


def compile_for_vertex(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    serving_model_dir: str,
    project: str,
    region: str,
    image: str,
    output_file: str = "pipeline.json",
    **kwargs: Any,
) -> str:
    """Compiles the pipeline for Vertex AI Pipelines, with Dataflow for the Beam steps.

    Needs ``kfp`` 2.5 and ``kfp-pipeline-spec`` 0.2.2 (``pip install recsel[vertex]``; pinned
    in ``constraints.txt``, so ``make`` installs them).
    Paths should be ``gs://``. As with any TFX pipeline, compiling packages the module
    files into wheels under ``pipeline_root/_wheels`` (so the compiling machine needs
    write access there) and the components install them at run time. Submit the JSON
    with ``google.cloud.aiplatform.PipelineJob(template_path=output_file, ...).submit()``.

    Args:
        pipeline_name: Pipeline name.
        pipeline_root: ``gs://`` root of the artifacts.
        data_root: ``gs://`` directory of the CSV files.
        serving_model_dir: ``gs://`` push destination.
        project: GCP project.
        region: Region of Vertex and Dataflow.
        image: Container image with recsel[tfx] installed, for components and workers.
        output_file: Compiled pipeline JSON.
        **kwargs: Passed to ``create_pipeline`` (selector parameters, train_steps, ...).

    Returns:
        ``output_file``.

    Example:
        >>> compile_for_vertex("recsel", "gs://b/root", "gs://b/data", "gs://b/serving",
        ...                    "my-project", "us-central1", "IMAGE", num_features=20)
    """
    from tfx import v1 as tfx

    from recsel import quiet

    quiet.quiet_packaging()  # setuptools' chatter from packaging the module files
    beam_args = dataflow_beam_args(project, region, f"{pipeline_root}/beam-tmp", image)
    pipeline = create_pipeline(
        pipeline_name, pipeline_root, data_root, None, serving_model_dir, beam_args, **kwargs
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_filename=output_file,
    )
    runner.run(pipeline)
    return output_file


def write_synthetic_csv(data_root: str, rows: int, seed: int = 0, **synthetic_kwargs: Any):
    """Writes ``make_synthetic`` data (multi-hot cells as their single token) to CSV.

    Args:
        data_root: Directory of ``data.csv`` (local or ``gs://``).
        rows: Number of rows.
        seed: Generator seed.
        **synthetic_kwargs: Other ``make_synthetic`` arguments (not ``max_valency``).

    Returns:
        The ``SyntheticData`` (its roles describe the CSV columns).

    Example:
        >>> data = write_synthetic_csv("runs/data", 10_000, seed=0)
    """
    import tensorflow as tf

    from recsel.atomic import atomic_write_text, read_text
    from recsel.data.synthetic import make_synthetic

    data = make_synthetic(n_rows=rows, max_valency=1, seed=seed, **synthetic_kwargs)
    frame = data.frame.copy()
    for name, kind in data.kinds.items():
        if kind == "multi_categorical":  # exactly one token per cell with max_valency=1
            frame[name] = frame[name].map(lambda cell: cell[0])
    path, text = os.path.join(data_root, "data.csv"), frame.to_csv(index=False)
    # Rewriting identical data would change the file's fingerprint and defeat the cache.
    if not tf.io.gfile.exists(path) or read_text(path) != text:
        atomic_write_text(path, text)
    return data


def latest_artifact(metadata_path: str, type_name: str):
    """The newest MLMD artifact of ``type_name`` in a SQLite store.

    Args:
        metadata_path: The SQLite MLMD file.
        type_name: Artifact type, e.g. ``recsel.FeatureSelection``.

    Returns:
        The ``metadata_store_pb2.Artifact`` with the highest id.

    Raises:
        FileNotFoundError: No such artifact (the run failed or never ran).

    Example:
        >>> uri = latest_artifact("runs/tfx_demo/metadata.sqlite", "ModelRun").uri
    """
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
    artifacts = store.get_artifacts_by_type(type_name)
    if not artifacts:
        raise FileNotFoundError(f"{metadata_path}: no {type_name} artifact; did the run fail?")
    return max(artifacts, key=lambda a: a.id)


def planted_verdict(data, selected: list[str]) -> str:
    """One line scoring ``selected`` against the synthetic data's planted ground truth.

    Example:
        >>> planted_verdict(data, result.selected)  # 'Kept 8 of 8 informative feature groups; no redundant copies, no noise'
    """
    group_of = {c: g for g, members in data.groups().items() for c in members}
    hits = [group_of[s] for s in selected if s in group_of]
    copies = len(hits) - len(set(hits))
    noise = sum(s not in group_of for s in selected)
    line = f"Kept {len(set(hits))} of {len(data.informative)} informative feature groups; "
    line += (
        f"{copies} redundant {'copy' if copies == 1 else 'copies'}"
        if copies
        else "no redundant copies"
    )
    return line + (f", {noise} noise" if noise else ", no noise")


def summarise(metadata_path: str, serving_model_dir: str, data=None) -> str:
    """Kept features, widths, latency versus budget, trained AUC and artifact paths.

    Args:
        metadata_path: The run's SQLite MLMD file.
        serving_model_dir: Pusher's destination.
        data: The ``SyntheticData``, to name each kept feature's planted role.

    Returns:
        The summary lines.

    Example:
        >>> print(summarise("runs/tfx_demo/metadata.sqlite", "runs/tfx_demo/serving_model"))
    """
    from recsel.atomic import read_text
    from recsel.tfx import load_selection

    selection = load_selection(latest_artifact(metadata_path, "recsel.FeatureSelection").uri)
    result = selection.result
    run_dir = latest_artifact(metadata_path, "ModelRun").uri
    metrics = json.loads(read_text(os.path.join(run_dir, "metrics.json")))
    lines = [f"Kept {len(result.selected)} of {len(result.candidates)} features:"]
    role = {}
    if data is not None:
        role = {c: "informative" for c in data.informative}
        # A copy kept without its original stands in for that group (informative).
        kept = set(result.selected)
        role.update(
            {
                c: f"copy of {o}" + ("" if o in kept else ", for its group")
                for c, o in data.duplicates.items()
            }
        )
        role.update({c: "noise" for c in data.noise if c not in data.traps})
        role.update({c: "ID-like trap" for c in data.traps})
    for name in result.selected:
        extra = f"  ({role[name]})" if name in role else ""
        lines.append(f"  {name:<6s} dim {result.dims[name]:>3d}/{result.full_dims[name]}{extra}")
    if data is not None:
        lines.append(planted_verdict(data, result.selected))
    final = result.rounds[result.final_round]
    budget = result.budget or {}
    if budget.get("latency_ms") is not None:
        line = (
            f"Measured p50 latency {final.latency_ms_p50:.3f} ms vs budget "
            f"{result.latency_limit_ms():.3f} ms"
        )
        if budget.get("latency_fraction") is not None:
            full_ms = final.full_model_latency_ms or budget["full_model_latency_ms"]
            line += f" ({budget['latency_fraction']:.0%} of the full model's {full_ms:.3f} ms"
            line += ", timed alongside)" if final.full_model_latency_ms else ")"
        lines.append(
            f"{line}, batch {budget['serving_batch_size']}, round {final.index + 1} "
            f"of {len(result.rounds)}"
        )
    lines.append(f"Selector validation AUC {result.metrics['auc']:.4f}")
    lines.append(
        f"Trained TFRS ranker: eval AUC {metrics['auc']:.4f}, log loss {metrics['log_loss']:.4f} "
        f"on {metrics['eval_rows']} eval rows"
    )
    lines.append(f"Feature selection: {selection.uri} (report: {selection.report_path})")
    lines.append(f"Pushed model:      {serving_model_dir}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the local pipeline on synthetic CSV data and prints a summary."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--output-dir", default="runs/tfx_demo")
    parser.add_argument(
        "--latency-budget",
        default="50%",
        metavar="TIME|PCT|none",
        help="p50 serving latency budget: a time (3ms), a share of the full model's latency "
        "measured here (default 50%%), or 'none' for no budget.",
    )
    parser.add_argument(
        "--num-features",
        type=int,
        default=8,
        help="Features to keep, within the budget (default 8; 0: as many as the budget allows).",
    )
    parser.add_argument("--train-steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="Show every log line (TFX, Beam, TensorFlow); same as RECSEL_VERBOSE=1.",
    )
    args, beam_args = parser.parse_known_args(argv)
    import recsel  # noqa: F401  (quiet mode and Keras 2, before TensorFlow loads)
    from recsel import quiet
    from recsel.params import parse_latency_budget

    quiet.install(verbose=args.verbose or None, command_line=True)

    budget = None
    if args.latency_budget.lower() != "none":
        try:
            budget = parse_latency_budget(args.latency_budget)
        except argparse.ArgumentTypeError as err:
            parser.error(str(err))

    started = time.time()
    out = os.path.abspath(args.output_dir)
    data_root = os.path.join(out, "data")
    metadata_path = os.path.join(out, "metadata.sqlite")
    serving_dir = os.path.join(out, "serving_model")
    data = write_synthetic_csv(data_root, args.rows, args.seed)
    selector_params: dict[str, Any] = {"batch_size": 64, "seed": args.seed}
    if budget is not None:  # a ceiling: rounds stop at the count or the budget
        selector_params.update(latency_budget_ms=budget.ms, latency_budget_fraction=budget.fraction)
    if args.num_features or budget is None:
        selector_params["num_features"] = args.num_features or 8
    pipeline = create_pipeline(
        "recsel_tfx_demo",
        os.path.join(out, "pipeline_root"),
        data_root,
        metadata_path,
        serving_dir,
        beam_args,
        train_steps=args.train_steps,
        trainer_config={"seed": args.seed, "batch_size": 64},
        **selector_params,
    )
    # TFX packages the module files with setup.py; its chatter goes to this log.
    packaging_log = quiet.quiet_packaging(out)
    print(
        f"Running the TFX pipeline on {args.rows} synthetic rows (ExampleGen, StatisticsGen, "
        "SchemaGen, SequentialAttentionSelector, Transform, Trainer, Pusher); a few minutes.",
        flush=True,
    )
    try:
        run_local(pipeline)
    except ValueError as err:  # bad parameters, bad data or an unachievable budget
        print(f"local_pipeline: error: {err}", file=sys.stderr)
        return 2
    print(summarise(metadata_path, serving_dir, data))
    print(f"Pipeline finished in {time.time() - started:.0f} s.")
    print(f"Summary again: recsel report {args.output_dir}")
    if packaging_log:
        print(f"Module packaging output: {packaging_log} (--verbose shows all logs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
