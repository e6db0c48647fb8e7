"""The whole local TFX pipeline: ExampleGen to Pusher with the selector, run twice.

Checks lineage and caching in MLMD (SQLite), the pushed model's serving signature, and
that Beam options (multi-processing DirectRunner) do not change the selection (all
``slow``), and that the same definition compiles for Vertex AI Pipelines (kfp 2.5 and
``kfp-pipeline-spec`` are pinned, so that test always runs).
"""

import glob
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow.python.framework import tensor_util
from tfx import v1 as tfx

from pipelines.local_pipeline import (
    TRAINER_MODULE,
    create_pipeline,
    planted_verdict,
    run_local,
    summarise,
    write_synthetic_csv,
)
from recsel.model.serving import serialize_examples
from recsel.spec.features import FeatureSet
from recsel.tfx import SequentialAttentionSelector, load_selection

NAME = "recsel_test"
SELECTOR = "SequentialAttentionSelector"
MULTI_PROCESSING = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
SETTINGS = dict(
    train_steps=40,
    trainer_config={"batch_size": 64, "hidden_units": [16], "seed": 0},
    num_features=3,
    batch_size=32,
    seed=0,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    paths = {
        "pipeline_root": str(root / "pipeline_root"),
        "data_root": str(root / "data"),
        "metadata_path": str(root / "metadata.sqlite"),
        "serving_model_dir": str(root / "serving"),
    }
    data = write_synthetic_csv(
        paths["data_root"],
        4000,  # one pass must give every selection event its steps (issue 14)
        seed=0,
        n_informative=3,
        n_duplicates=1,
        n_noise=3,
        n_traps=1,
        signal_strength=2.0,
    )
    for _ in range(2):  # the second run must be served from the cache
        run_local(create_pipeline(NAME, **paths, **SETTINGS))
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(paths["metadata_path"])
    )
    return paths, data, store


def _executions(store, component_id):
    """Executions of one pipeline node, oldest first."""
    contexts = [
        c
        for c in store.get_contexts_by_type("node")
        if c.name.startswith(f"{NAME}.") and c.name.endswith(f".{component_id}")
    ]
    executions = [e for c in contexts for e in store.get_executions_by_context(c.id)]
    return sorted(executions, key=lambda e: e.id)


def _artifact_ids(store, execution, kind, key):
    events = store.get_events_by_execution_ids([execution.id])
    return {
        e.artifact_id for e in events if e.type == kind and any(s.key == key for s in e.path.steps)
    }


def _output_uri(store, execution, key):
    (artifact_id,) = _artifact_ids(store, execution, metadata_store_pb2.Event.OUTPUT, key)
    return store.get_artifacts_by_id([artifact_id])[0].uri


@pytest.mark.slow
def test_transform_and_trainer_consume_the_pruned_schema(run):
    _, _, store = run
    selector = _executions(store, SELECTOR)[0]
    pruned = _artifact_ids(store, selector, metadata_store_pb2.Event.OUTPUT, "pruned_schema")
    selection = _artifact_ids(store, selector, metadata_store_pb2.Event.OUTPUT, "feature_selection")
    transform = _executions(store, "Transform")[0]
    trainer = _executions(store, "SelectionAwareTrainer")[0]
    assert len(pruned) == 1
    assert _artifact_ids(store, transform, metadata_store_pb2.Event.INPUT, "schema") == pruned
    assert _artifact_ids(store, trainer, metadata_store_pb2.Event.INPUT, "schema") == pruned
    assert (
        _artifact_ids(store, trainer, metadata_store_pb2.Event.INPUT, "feature_selection")
        == selection
    )


@pytest.mark.slow
def test_selector_scored_features_with_the_trainers_tower(run):
    """The trainer module reached the selector as a TFX-packaged wheel (module_path)."""
    _, _, store = run
    selector = _executions(store, SELECTOR)[0]
    module_path = selector.custom_properties["module_path"].string_value  # exec property
    assert module_path.split("@")[1].endswith(".whl"), f"no packaged wheel: {module_path}"
    result = load_selection(_output_uri(store, selector, "feature_selection")).result
    assert result.config["tower"].endswith(":build_tower"), result.config["tower"]


@pytest.mark.slow
def test_second_run_is_served_from_the_cache(run):
    _, _, store = run
    for component in (SELECTOR, "Transform", "SelectionAwareTrainer"):
        first, second = _executions(store, component)
        assert first.last_known_state == metadata_store_pb2.Execution.COMPLETE
        assert second.last_known_state == metadata_store_pb2.Execution.CACHED, component


def _parse_keys(signature) -> set[str]:
    """Feature keys of every tf.Example parse op inside a serving signature."""
    keys = set()
    for function in signature.graph.as_graph_def().library.function:
        nodes = {n.name: n for n in function.node_def}
        for node in function.node_def:
            if node.op != "ParseExampleV2":
                continue
            for position in (2, 3, 4):  # sparse_keys, dense_keys, ragged_keys
                const = nodes[node.input[position].split(":")[0]]
                values = tensor_util.MakeNdarray(const.attr["value"].tensor).reshape(-1)
                keys.update(v.decode() for v in values)
    return keys


@pytest.mark.slow
def test_pushed_model_serves_only_the_kept_features(run):
    paths, data, store = run
    selection = load_selection(
        _output_uri(store, _executions(store, SELECTOR)[0], "feature_selection")
    )
    kept = selection.kept.names
    pushed = sorted(glob.glob(os.path.join(paths["serving_model_dir"], "*")))
    model = tf.saved_model.load(pushed[-1])
    serve = model.signatures["serving_default"]
    assert list(serve.structured_input_signature[1]) == ["examples"]
    assert _parse_keys(serve) == set(kept)
    # Widths follow the embedding config: one table per kept feature, at the chosen width.
    tables = {v.name.split(":")[0]: v.shape for v in model.variables if v.name.endswith("_table:0")}
    config = selection.embedding_config["features"]
    assert {f["table_name"]: f["embedding_dim"] for f in config} == {
        name: shape[1] for name, shape in tables.items()
    }
    # Dropped features do not matter: scramble them and the predictions stay the same.
    rows = data.frame.iloc[:64]
    candidates = FeatureSet.from_json(os.path.join(selection.uri, "feature_spec.json"))
    scrambled = rows.copy()
    for name in candidates.names:
        if name not in kept:
            scrambled[name] = rows[name].sample(frac=1, random_state=1).to_numpy()
    predict = lambda frame: serve(  # noqa: E731
        examples=tf.constant(serialize_examples(frame, candidates))
    )["probability"].numpy()
    assert np.array_equal(predict(rows), predict(scrambled))
    assert not np.allclose(predict(rows), predict(rows)[0])  # it does depend on the kept ones
    with pytest.raises(tf.errors.InvalidArgumentError, match=kept[0]):
        serve(examples=tf.constant(serialize_examples(rows, candidates.subset(kept[1:]))))


@pytest.mark.slow
def test_trained_ranker_learned_something(run):
    paths, data, store = run
    text = summarise(paths["metadata_path"], paths["serving_model_dir"], data)
    run_dir = _output_uri(store, _executions(store, "SelectionAwareTrainer")[0], "model_run")
    metrics = json.loads(Path(run_dir, "metrics.json").read_text())
    assert metrics["auc"] > 0.7 and metrics["eval_rows"] > 300
    assert f"eval AUC {metrics['auc']:.4f}" in text


@pytest.mark.slow
def test_multi_processing_beam_gives_the_same_selection(run, tmp_path):
    """The selector computing statistics in a 2-worker DirectRunner matches the default run."""
    paths, _, store = run
    gen = tfx.components.CsvExampleGen(input_base=paths["data_root"])
    stats = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
    schema = tfx.components.SchemaGen(
        statistics=stats.outputs["statistics"], infer_feature_shape=True
    )
    params = {k: v for k, v in SETTINGS.items() if k not in ("train_steps", "trainer_config")}
    selector = SequentialAttentionSelector(
        examples=gen.outputs["examples"],
        schema=schema.outputs["schema"],
        label_key="label",
        module_file=TRAINER_MODULE,
        tower_fn="build_tower",
        **params,
    ).with_beam_pipeline_args(MULTI_PROCESSING)  # no statistics input: the selector runs TFDV
    run_local(
        tfx.dsl.Pipeline(
            pipeline_name=NAME,
            pipeline_root=paths["pipeline_root"],
            components=[gen, stats, schema, selector],
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                paths["metadata_path"]
            ),
            enable_cache=True,
        )
    )
    first, *_, latest = _executions(store, SELECTOR)
    assert latest.last_known_state == metadata_store_pb2.Execution.COMPLETE  # ran, not cached
    default, multi = (
        load_selection(_output_uri(store, e, "feature_selection")) for e in (first, latest)
    )
    assert multi.candidates == default.candidates
    assert multi.result.selected == default.result.selected
    assert multi.result.dims == default.result.dims


def test_pipeline_compiles_for_vertex(tmp_path):
    # kfp 2.5 / kfp-pipeline-spec 0.2.2 are pinned dependencies: a missing one must fail,
    # not skip, so this import is deliberately not an importorskip.
    import kfp.pipeline_spec  # noqa: F401

    from pipelines.local_pipeline import compile_for_vertex

    image = "us-docker.pkg.dev/my-project/recsel/recsel-tfx:0.1.0"

    out = compile_for_vertex(
        "recsel-vertex",
        str(tmp_path / "root"),
        "gs://bucket/data",
        "gs://bucket/serving",
        project="my-project",
        region="us-central1",
        image=image,
        output_file=str(tmp_path / "pipeline.json"),
        num_features=8,
    )
    pipeline_spec = json.loads(Path(out).read_text())["pipelineSpec"]
    selector = pipeline_spec["components"][f"{SELECTOR}"]
    title = selector["outputDefinitions"]["artifacts"]["feature_selection"]["artifactType"]
    assert "title: recsel.FeatureSelection" in title["instanceSchema"]
    executor = pipeline_spec["deploymentSpec"]["executors"][f"{SELECTOR}_executor"]["container"]
    assert "recsel.tfx.executor.Executor" in executor["args"]
    assert executor["image"] == image  # the selector runs in recsel's container
    # Its Beam work (the statistics pass) runs on Dataflow, on workers of the same image.
    for flag in (
        "--runner=DataflowRunner",
        "--project=my-project",
        "--region=us-central1",
        f"--temp_location={tmp_path / 'root'}/beam-tmp",
        f"--sdk_container_image={image}",
    ):
        assert flag in executor["args"], flag
    assert selector["executorLabel"] == f"{SELECTOR}_executor"
    params = pipeline_spec["root"]["dag"]["tasks"][SELECTOR]["inputs"]["parameters"]
    assert params["num_features"]["runtimeValue"]["constantValue"]["intValue"] == "8"
    assert params["label_key"]["runtimeValue"]["constantValue"]["stringValue"] == "label"
    images = {
        e["container"]["image"]
        for e in pipeline_spec["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    assert images == {image}, images  # every component, not only the selector
    trainer_inputs = pipeline_spec["root"]["dag"]["tasks"]["SelectionAwareTrainer"]["inputs"]
    assert trainer_inputs["artifacts"]["feature_selection"]["taskOutputArtifact"] == {
        "outputArtifactKey": "feature_selection",
        "producerTask": SELECTOR,
    }


def test_planted_verdict_names_groups_copies_and_noise():
    from recsel.data.synthetic import make_synthetic

    data = make_synthetic(n_rows=500, n_informative=3, n_duplicates=1, n_noise=2, n_traps=0)
    (copy, source), noise = next(iter(data.duplicates.items())), data.noise[0]
    clean = planted_verdict(data, data.informative)
    assert clean == "Kept 3 of 3 informative feature groups; no redundant copies, no noise"
    others = [c for c in data.informative if c != source][:1]
    assert planted_verdict(data, [source, copy, *others, noise]) == (
        "Kept 2 of 3 informative feature groups; 1 redundant copy, 1 noise"
    )
