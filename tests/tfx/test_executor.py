"""The SequentialAttentionSelector executor on real TFX artifacts: outputs and bad inputs.

Test data: synthetic rows (with a multi-hot column) written as gzipped tf.Example
TFRecords in ExampleGen's ``Split-<name>/`` layout, with TFDV statistics and an inferred
schema, as StatisticsGen and SchemaGen would produce them.
"""

import json
import os
import re
import warnings

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import types
from tfx.types import artifact_utils, standard_artifacts

from recsel.data.synthetic import make_synthetic
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.schema_io import read_schema
from recsel.model.serving import serialize_examples
from recsel.outputs.embedding_config import read_embedding_config
from recsel.outputs.schema import write_schema
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult
from recsel.tfx import (
    Executor,
    FeatureSelection,
    SequentialAttentionSelector,
    load_selection,
    spec,
)
from recsel.tfx.executor import _publish

# vocabularies/: one file per vocabulary, referenced from feature_spec.json (issue 13).
CONTRACT = {
    "schema.pbtxt",
    "embedding_config.json",
    "selection.json",
    "feature_spec.json",
    "vocabularies",
}
PARAMS = {"label_key": "label", "num_features": 2, "batch_size": 32, "seed": 0}


@pytest.fixture(scope="module")
def testdata(tmp_path_factory):
    """Examples (train/eval), their train statistics and schema, as TFX artifacts' dirs."""
    root = tmp_path_factory.mktemp("testdata")
    data = make_synthetic(
        n_rows=900, n_informative=3, n_duplicates=1, n_noise=2, n_traps=0, max_valency=3, seed=0
    )
    assert "multi_categorical" in data.kinds.values()
    writer_spec = infer_feature_set(data.frame, data.label)
    for split, rows in (("train", data.frame.iloc[:600]), ("eval", data.frame.iloc[600:])):
        path = root / "examples" / f"Split-{split}" / "data_tfrecord-00000-of-00001.gz"
        path.parent.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for record in serialize_examples(rows, writer_spec, data.label):
                writer.write(record)
    stats = tfdv.generate_statistics_from_tfrecord(str(root / "examples" / "Split-train" / "*"))
    (root / "statistics" / "Split-train").mkdir(parents=True)
    (root / "statistics" / "Split-train" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    write_schema(tfdv.infer_schema(stats), str(root / "schema" / "schema.pbtxt"))
    return root, data


def _artifact(cls, uri, splits=None) -> types.Artifact:
    artifact = cls()
    artifact.uri = str(uri)
    if splits is not None:
        artifact.split_names = artifact_utils.encode_split_names(splits)
    return artifact


def _inputs(root, statistics=True, schema_dir=None):
    inputs = {
        "examples": [_artifact(standard_artifacts.Examples, root / "examples", ["train", "eval"])],
        "schema": [_artifact(standard_artifacts.Schema, schema_dir or root / "schema")],
    }
    if statistics:
        inputs["statistics"] = [
            _artifact(standard_artifacts.ExampleStatistics, root / "statistics", ["train"])
        ]
    return inputs


def _outputs(out):
    return {
        "pruned_schema": [_artifact(standard_artifacts.Schema, out / "pruned_schema")],
        "feature_selection": [_artifact(FeatureSelection, out / "feature_selection")],
    }


def _assert_nothing_published(out):
    """No output file that looks valid, and no staging or scratch directory left over."""
    for key in ("pruned_schema", "feature_selection"):
        uri = out / key
        left = set(os.listdir(uri)) if uri.exists() else set()
        assert not left & (CONTRACT | {"report.html"}), f"{key} holds {left} after a failure"
    present = os.listdir(out) if out.exists() else []
    leftovers = [p for p in present if p not in ("pruned_schema", "feature_selection")]
    assert not leftovers, f"left behind: {leftovers}"


@pytest.fixture(scope="module")
def selection_run(testdata, tmp_path_factory):
    root, _ = testdata
    out = tmp_path_factory.mktemp("run")
    outputs = _outputs(out)
    Executor().Do(_inputs(root), outputs, dict(PARAMS))
    return out, outputs


def test_outputs_exist_and_match_the_contract(selection_run):
    out, outputs = selection_run
    assert set(os.listdir(out / "feature_selection")) == CONTRACT | {"report.html"}
    # TFX readers take the only file in a Schema artifact: nothing else may be there.
    assert os.listdir(out / "pruned_schema") == ["schema.pbtxt"]
    assert sorted(os.listdir(out)) == ["feature_selection", "pruned_schema"]
    loaded = load_selection(str(out / "feature_selection"))
    assert len(loaded.result.selected) == 2
    assert (out / "feature_selection" / "report.html").read_text().lstrip().startswith("<!")
    artifact = outputs["feature_selection"][0]
    assert json.loads(artifact.get_string_custom_property("selected_features")) == (
        loaded.result.selected
    )
    assert artifact.get_int_custom_property("num_selected") == 2
    assert artifact.get_float_custom_property("auc") == pytest.approx(loaded.result.metrics["auc"])


def test_pruned_schema_deprecates_exactly_the_dropped_features(testdata, selection_run):
    root, data = testdata
    out, _ = selection_run
    original = {f.name: f for f in read_schema(str(root / "schema" / "schema.pbtxt")).feature}
    pruned = {f.name: f for f in read_schema(str(out / "pruned_schema" / "schema.pbtxt")).feature}
    selected = load_selection(str(out / "feature_selection")).result.selected
    assert set(pruned) == set(original)
    for name, feature in pruned.items():
        if name in selected or name == data.label:
            assert feature == original[name], f"kept feature {name} was changed"
        else:
            assert feature.lifecycle_stage == schema_pb2.DEPRECATED, f"{name} not deprecated"
    copy = (out / "feature_selection" / "schema.pbtxt").read_text()
    assert copy == (out / "pruned_schema" / "schema.pbtxt").read_text()


def test_embedding_config_validates_and_matches_the_selection(selection_run):
    out, _ = selection_run
    config = read_embedding_config(str(out / "feature_selection" / "embedding_config.json"))
    result = SelectionResult.from_json(str(out / "feature_selection" / "selection.json"))
    assert {f["name"]: f["embedding_dim"] for f in config["features"]} == result.dims
    assert all(f["embedding_dim"] % config["dim_multiple"] == 0 for f in config["features"])


def test_computed_statistics_give_the_same_selection(testdata, selection_run, tmp_path):
    """Without a statistics input the executor runs TFDV in Beam; same data, same result."""
    root, _ = testdata
    context = Executor.Context(
        tmp_dir=str(tmp_path / "tmp"), unique_id="7", stateful_working_dir=str(tmp_path / "state")
    )
    Executor(context).Do(_inputs(root, statistics=False), _outputs(tmp_path / "out"), dict(PARAMS))
    ours = load_selection(str(tmp_path / "out" / "feature_selection"))
    reference = load_selection(str(selection_run[0] / "feature_selection"))
    assert ours.candidates == reference.candidates
    assert ours.result.selected == reference.result.selected
    assert ours.result.dims == reference.result.dims
    scratch = tmp_path / "tmp" / "7"
    assert not scratch.exists() or not os.listdir(scratch), "statistics scratch not removed"
    assert not (tmp_path / "state" / "selection-checkpoint").exists(), "checkpoint left behind"


def test_label_missing_from_schema(testdata, tmp_path):
    root, _ = testdata
    with pytest.raises(ValueError, match=r"label_key 'clicked' is not a feature of the schema"):
        Executor().Do(_inputs(root), _outputs(tmp_path), {**PARAMS, "label_key": "clicked"})
    _assert_nothing_published(tmp_path)


@pytest.mark.parametrize("key", ["train_split", "eval_split"])
def test_unknown_split_lists_the_available_ones(testdata, tmp_path, key):
    root, _ = testdata
    with pytest.raises(ValueError, match=rf"{key} 'validation'.*available splits: train, eval"):
        Executor().Do(_inputs(root), _outputs(tmp_path), {**PARAMS, key: "validation"})
    _assert_nothing_published(tmp_path)


def test_schema_feature_missing_from_examples(testdata, tmp_path):
    root, _ = testdata
    schema = read_schema(str(root / "schema" / "schema.pbtxt"))
    ghost = schema.feature.add(name="ghost", type=schema_pb2.BYTES)
    ghost.shape.dim.add(size=1)
    write_schema(schema, str(tmp_path / "schema" / "schema.pbtxt"))
    with pytest.raises(ValueError, match=r"schema feature\(s\) \['ghost'\] have no value"):
        Executor().Do(
            _inputs(root, schema_dir=tmp_path / "schema"), _outputs(tmp_path / "out"), PARAMS
        )
    _assert_nothing_published(tmp_path / "out")


def test_unachievable_memory_budget(testdata, tmp_path):
    pytest.importorskip(
        "recsel.selection.budget", reason="recsel.selection.budget (budgets) is not implemented yet"
    )
    root, _ = testdata
    params = {**PARAMS, "num_features": None, "memory_budget_bytes": 1.0}
    with pytest.raises(ValueError, match=r"Memory budget .* cannot be met.*at least"):
        Executor().Do(_inputs(root), _outputs(tmp_path), params)
    _assert_nothing_published(tmp_path)


@pytest.mark.slow
def test_unachievable_latency_budget_states_the_minimum(testdata, tmp_path):
    budget = pytest.importorskip(
        "recsel.selection.budget", reason="recsel.selection.budget is not implemented yet"
    )
    root, _ = testdata
    params = {**PARAMS, "num_features": None, "latency_budget_ms": 1e-6, "serving_batch_size": 64}
    with pytest.raises(budget.BudgetError, match=r"minimum achievable latency is [0-9.]+ ms"):
        Executor().Do(_inputs(root), _outputs(tmp_path), params)
    _assert_nothing_published(tmp_path)


@pytest.mark.slow
def test_relative_latency_budget_is_measured_and_published(testdata, tmp_path):
    root, _ = testdata
    params = {
        **PARAMS,
        "num_features": None,
        "latency_budget_fraction": 1.0,  # the full model's own latency: a reachable budget
        "serving_batch_size": 64,
    }
    outputs = _outputs(tmp_path)
    Executor().Do(_inputs(root), outputs, params)
    selection = load_selection(outputs["feature_selection"][0].uri)
    result = selection.result
    budget = result.budget
    assert budget["latency_fraction"] == 1.0 and budget["full_model_latency_ms"] > 0
    assert budget["latency_ms"] == pytest.approx(budget["full_model_latency_ms"])
    final = result.rounds[result.final_round]
    assert final.latency_ms_p50 <= final.full_model_latency_ms  # timed side by side
    artifact = outputs["feature_selection"][0]
    published = artifact.get_float_custom_property(spec.LATENCY_P50_PROPERTY)
    assert published == pytest.approx(final.latency_ms_p50)  # the chosen round, not the last


def test_failed_publish_removes_the_selection(selection_run, testdata, tmp_path):
    root, _ = testdata
    source = selection_run[0] / "feature_selection"
    result = SelectionResult.from_json(str(source / "selection.json"))
    features = FeatureSet.from_json(str(source / "feature_spec.json"))
    (tmp_path / "pruned_schema").write_text("a file where a directory should be")
    outputs = _outputs(tmp_path)
    with pytest.raises((tf.errors.OpError, OSError)):
        _publish(
            result,
            features,
            read_schema(str(root / "schema" / "schema.pbtxt")),
            outputs["feature_selection"][0],
            outputs["pruned_schema"][0],
            None,
        )
    assert not (tmp_path / "feature_selection").exists()


def test_parameters_are_checked_when_the_pipeline_is_built():
    channels = dict(
        examples=types.Channel(type=standard_artifacts.Examples),
        schema=types.Channel(type=standard_artifacts.Schema),
    )
    with pytest.raises(ValueError, match="num_features or feature_fraction, not both"):
        SequentialAttentionSelector(**channels, label_key="y", num_features=3, feature_fraction=0.5)
    with pytest.raises(ValueError, match="nan_policy"):
        SequentialAttentionSelector(**channels, label_key="y", nan_policy="ignore")
    selector = SequentialAttentionSelector(**channels, label_key="y", latency_budget_ms=3)
    assert selector.exec_properties["latency_budget_ms"] == 3.0
    relative = SequentialAttentionSelector(**channels, label_key="y", latency_budget_fraction=0.5)
    assert relative.exec_properties["latency_budget_fraction"] == 0.5
    with pytest.raises(ValueError, match="latency_budget_ms or latency_budget_fraction, not both"):
        SequentialAttentionSelector(
            **channels, label_key="y", latency_budget_ms=3, latency_budget_fraction=0.5
        )
    assert selector.exec_properties[spec.VOCABULARY_MIN_COUNT_KEY] == 5  # the default threshold
    with pytest.raises(ValueError, match="vocabulary_min_count must be at least 1"):
        SequentialAttentionSelector(**channels, label_key="y", vocabulary_min_count=0)
    assert selector.executor_spec.executor_class is Executor
    assert Executor.__module__ == "recsel.tfx.executor"  # importable by remote workers
    assert set(selector.outputs) == {spec.PRUNED_SCHEMA_KEY, spec.FEATURE_SELECTION_KEY}


def test_artifact_type_name_is_a_valid_vertex_schema_title():
    # The regex of tfx/orchestration/kubeflow/v2/compiler_utils.py (_SCHEMA_TITLE_RE).
    title = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")
    assert title.fullmatch(FeatureSelection.TYPE_NAME)
    assert FeatureSelection.TYPE_NAME == "recsel.FeatureSelection"


TOWERS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "testdata", "towers.py")


def test_custom_tower_from_a_module_file(testdata, tmp_path):
    root, _ = testdata
    params = {**PARAMS, "module_file": TOWERS, "tower_fn": "build_normalised_tower"}
    Executor().Do(_inputs(root), _outputs(tmp_path), params)
    result = load_selection(str(tmp_path / "feature_selection")).result
    assert result.config["tower"].endswith(":build_normalised_tower")
    assert len(result.selected) == 2


def test_custom_tower_by_module_path(testdata, tmp_path):
    """A fully-qualified tower_fn, as on workers that have the module installed."""
    root, _ = testdata
    params = {**PARAMS, "tower_fn": "pipelines.trainer_module.build_tower"}
    Executor().Do(_inputs(root), _outputs(tmp_path), params)
    result = load_selection(str(tmp_path / "feature_selection")).result
    assert result.config["tower"] == "pipelines.trainer_module:build_tower"


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"module_file": TOWERS, "tower_fn": "nope"}, r"tower function 'nope' from '.*towers\.py'"),
        ({"module_file": TOWERS, "tower_fn": "build_two_logits"}, r"one logit \[batch, 1\]"),
        (
            {"tower_fn": "recsel_missing_pkg.build"},
            r"Cannot import tower module 'recsel_missing_pkg'",
        ),
    ],
)
def test_bad_custom_tower_fails_before_publishing(testdata, tmp_path, extra, message):
    root, _ = testdata
    with pytest.raises(ValueError, match=message):
        Executor().Do(_inputs(root), _outputs(tmp_path), {**PARAMS, **extra})
    _assert_nothing_published(tmp_path)


def test_recsel_report_finds_the_executors_artifact(selection_run, capsys):
    """``recsel report`` on the directory above the artifacts finds the nested selection."""
    from recsel.cli import main

    out, outputs = selection_run
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    uri = outputs["feature_selection"][0].uri
    result = SelectionResult.from_json(os.path.join(uri, "selection.json"))
    assert f"Selection in {uri}" in printed
    assert f"Selected {len(result.selected)} of {len(result.candidates)} features" in printed
    assert f"Report: {os.path.join(uri, 'report.html')}" in printed
    assert result.dropped_reasons and result.feature_curve  # the executor records both


def test_the_executor_streams_and_never_reads_a_split_into_memory(testdata, tmp_path, monkeypatch):
    from recsel.inputs import source, tabular

    def refuse(*args, **kwargs):
        raise AssertionError("a whole split was read into memory")

    # A split that became a frame reaches select() as a FrameSource, whichever reader
    # built it; an Arrow table would become a frame through arrow_to_frame.
    monkeypatch.setattr(source.FrameSource, "__init__", refuse)
    monkeypatch.setattr(tabular, "arrow_to_frame", refuse)
    monkeypatch.setattr(warnings, "showwarning", warnings._showwarning_orig)
    root, _ = testdata
    out = tmp_path / "out"
    Executor().Do(_inputs(root), _outputs(out), dict(PARAMS))
    selection = json.loads((out / "feature_selection" / "selection.json").read_text())
    assert len(selection["selected"]) == PARAMS["num_features"]
    assert selection["provenance"]["train_rows_seen"] >= 600
    # Its warnings read as its log lines do ("recsel WARNING: ..."), not Python's
    # "executor.py:137: UserWarning:" and a source line.
    assert getattr(warnings.showwarning, "_recsel", False)
