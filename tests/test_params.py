"""One parameter surface: the CLI, TFX and Beam expose the same names, defaults and types.

Each surface is read from what it really builds (the argparse parser, the TFX component
spec, its signature and its parsed execution properties, the ``EnsembleJob`` dataclass and
the ensemble job's parser), mapped to ``recsel.params`` names, and compared across shells.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import re
import typing

import pytest

from pipelines import ensemble_job
from recsel import params
from recsel.beam.ensemble import EnsembleJob
from recsel.cli import build_parser
from recsel.spec.config import SelectionConfig
from recsel.tfx import spec
from recsel.tfx._params import parse_params
from recsel.tfx.component import SequentialAttentionSelector, SequentialAttentionSelectorSpec

MINIMAL_SELECT = ["data.parquet", "--label", "y", "--output-dir", "out"]
MINIMAL_JOB = ["--input", "data.parquet", "--label", "y", "--output-dir", "out"]
_CONFIG = SelectionConfig()


def _plain(annotation) -> object:
    """``int | None`` -> ``int``; ``tuple[str, ...]`` -> ``tuple``; ``str | Callable`` ->
    ``str`` (a shell passes a tower by its spec string; a callable is the Python API's)."""
    args = [
        a
        for a in typing.get_args(annotation)
        if a is not type(None)
        and typing.get_origin(a) is not collections.abc.Callable
        and a is not collections.abc.Callable
    ]
    if typing.get_origin(annotation) is tuple:
        return tuple
    return args[0] if len(args) == 1 else annotation


def _select_parser():
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices["select"]


def _cli_surface() -> dict[str, tuple[object, object]]:
    """name -> (default, type) of ``recsel select``, from parsing flags for real."""
    parser = _select_parser()
    flags = {s for a in parser._actions for s in a.option_strings}
    args = parser.parse_args(MINIMAL_SELECT)
    defaults = {
        **params.values_from_args(args),
        **dataclasses.asdict(params.config_from_args(args)),
    }
    surface = {}
    for param in params.PARAMS:
        if param.flag not in flags:
            continue
        if param.kind is tuple:
            kind = tuple if isinstance(defaults[param.name], tuple) else None
        elif param.kind is bool:
            kind = type(parser.parse_args([*MINIMAL_SELECT, param.flag]).__dict__[param.dest])
        elif param.pick:  # --latency-budget fills two fields; each has its own type
            value = params.values_from_args(
                parser.parse_args(
                    [*MINIMAL_SELECT, param.flag, "3ms" if param.pick == "ms" else "50%"]
                )
            )
            kind = type(value[param.name])
        else:
            sample = "0.5" if param.kind is float else "8"  # valid for every such flag
            text = param.choices[0] if param.choices else ("64MiB" if param.parse else sample)
            given = parser.parse_args([*MINIMAL_SELECT, param.flag, text])
            kind = type(
                {
                    **params.values_from_args(given),
                    **dataclasses.asdict(params.config_from_args(given)),
                }[param.name]
            )
        surface[param.name] = (defaults[param.name], kind)
    return surface


def _tfx_surface() -> dict[str, tuple[object, object]]:
    """name -> (default, type) of the TFX component: spec types, parsed defaults."""
    parsed = parse_params({spec.LABEL_KEY: "y"})
    defaults = {
        **dataclasses.asdict(parsed.config),
        "embedding_dim": parsed.embedding_dim,
        "vocabulary_min_count": parsed.vocabulary_min_count,
        "nan_policy": parsed.nan_policy,
    }
    surface = {}
    for name, parameter in SequentialAttentionSelectorSpec.PARAMETERS.items():
        if name in params._BY_NAME:
            surface[name] = (defaults[name], parameter.type)
    return surface


def _beam_surface() -> dict[str, tuple[object, object]]:
    """name -> (default, type) of the ensemble job: its dataclass and its parser."""
    hints = typing.get_type_hints(EnsembleJob)
    job = EnsembleJob("data.parquet", "y", "out")
    options = ensemble_job.job_options(ensemble_job.build_parser().parse_args(MINIMAL_JOB))
    assert options["config"] == _CONFIG
    surface = {}
    for field in dataclasses.fields(EnsembleJob):
        if field.name in params._BY_NAME:
            default = getattr(job, field.name)
            assert options[field.name] == default or field.name == "output_dir", field.name
            surface[field.name] = (default, _plain(hints[field.name]))
    config_hints = typing.get_type_hints(SelectionConfig)
    flags = {s for a in ensemble_job.build_parser()._actions for s in a.option_strings}
    for param in params.on(params.BEAM, params.CONFIG):
        assert param.flag in flags, f"the ensemble job has no {param.flag}"
        surface[param.name] = (getattr(job.config, param.name), _plain(config_hints[param.name]))
    return surface


def _disagreements(surfaces: dict[str, dict[str, tuple[object, object]]]) -> list[str]:
    """Every name whose default or type differs between two surfaces, or that a surface
    lacks although ``recsel.params`` says it exposes it (or has although it does not)."""
    problems = []
    for surface, found in surfaces.items():
        declared = {p.name for p in params.on(surface)}
        if surface == params.BEAM:
            declared -= {"output_dir"}  # required: EnsembleJob takes it positionally
            found = {k: v for k, v in found.items() if k != "output_dir"}
        if set(found) != declared:
            problems.append(
                f"{surface}: exposes {sorted(set(found) - declared)} beyond recsel.params and "
                f"lacks {sorted(declared - set(found))}"
            )
    names = sorted({n for found in surfaces.values() for n in found})
    for name in names:
        seen = {s: found[name] for s, found in surfaces.items() if name in found}
        param = params.get(name)
        for surface, (default, kind) in seen.items():
            if default != param.default and not param.required:  # a required flag has none
                problems.append(f"{name}: {surface} default {default!r} != {param.default!r}")
            if kind is not param.kind:
                problems.append(f"{name}: {surface} type {kind} != {param.kind}")
    return problems


def test_cli_tfx_and_beam_expose_the_same_names_defaults_and_types():
    surfaces = {
        params.CLI: _cli_surface(),
        params.TFX: _tfx_surface(),
        params.BEAM: _beam_surface(),
    }
    assert _disagreements(surfaces) == []
    shared = set(surfaces[params.CLI]) & set(surfaces[params.TFX]) & set(surfaces[params.BEAM])
    # Everything a selection is about is on all three; only the ways in differ (TFX reads
    # an Examples artifact's splits; its tower is a module file, as for Trainer).
    assert {p.name for p in params.PARAMS if p.surfaces == params.SURFACES} == shared
    assert {"embedding_dim", "vocabulary_min_count", "nan_policy", "num_features"} <= shared
    assert (
        surfaces[params.CLI]["embedding_dim"][0] == surfaces[params.TFX]["embedding_dim"][0] == 16
    )


def test_the_comparison_can_fail():
    good = {params.CLI: _cli_surface(), params.TFX: _tfx_surface(), params.BEAM: _beam_surface()}
    drifted = {**good, params.BEAM: {**good[params.BEAM], "embedding_dim": (32, int)}}
    assert _disagreements(drifted) == ["embedding_dim: beam default 32 != 16"]
    missing = {**good, params.TFX: {k: v for k, v in good[params.TFX].items() if k != "seed"}}
    assert "lacks ['seed']" in _disagreements(missing)[0]
    retyped = {**good, params.TFX: {**good[params.TFX], "epochs": (1.0, int)}}
    assert _disagreements(retyped) == [f"epochs: tfx type {int} != {float}"]


def test_defaults_give_the_default_config_on_every_surface():
    assert params.config_from_args(_select_parser().parse_args(MINIMAL_SELECT)) == _CONFIG
    assert parse_params({spec.LABEL_KEY: "y"}).config == _CONFIG
    assert EnsembleJob("x", "y", "o").config == _CONFIG


def test_tfx_signature_and_docstring_name_every_tfx_parameter():
    signature = inspect.signature(SequentialAttentionSelector.__init__).parameters
    doc = SequentialAttentionSelector.__doc__
    for param in params.on(params.TFX):
        assert param.name in signature, param.name
        default = signature[param.name].default
        assert default in (None, param.default), (param.name, default)  # None: the core's
        assert f"{param.name}:" in doc, f"the component's docstring does not document {param.name}"


def _doc_entry(doc: str, name: str) -> str:
    """The text of ``name``'s Args entry in a Google-style docstring, on one line."""
    entry = re.search(rf"\n {{8}}{name}: (.*?)(?=\n {{8}}\w+:|\n\n)", doc, re.S)
    assert entry, f"no Args entry for {name}"
    return " ".join(entry.group(1).split())


@pytest.mark.parametrize("name", ["plateau_tolerance", "plateau_patience"])
def test_tfx_docstring_of_the_budget_stopping_rule_says_what_params_says(name):
    # The component's entry once said "rounds in a row add less" after the rule changed
    # to count over-budget rounds too; params.py's help is the one declaration.
    expected = params.get(name).help.replace(" (default %(default)s)", "")
    assert _doc_entry(SequentialAttentionSelector.__doc__, name) == expected


def test_units_are_parsed_once_for_every_shell():
    args = _select_parser().parse_args([*MINIMAL_SELECT, "--memory-budget", "2GiB",
                                        "--latency-budget", "50%"])  # fmt: skip
    config = params.config_from_args(args)
    assert config.memory_budget_bytes == 2 * 2**30 and config.latency_budget_fraction == 0.5
    job_args = ensemble_job.build_parser().parse_args([*MINIMAL_JOB, "--latency-budget", "500us"])
    assert ensemble_job.job_options(job_args)["config"].latency_budget_ms == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--embedding-dim", "0"], "--embedding-dim must be at least 1"),
        (["--min-count", "0"], "--min-count must be at least 1"),
        (["--nan-policy", "ignore"], "--nan-policy must be one of"),
    ],
)
def test_bad_values_are_refused_by_the_generated_flags(argv, message, capsys):
    with pytest.raises(SystemExit):
        _select_parser().parse_args([*MINIMAL_SELECT, *argv])
    assert message in capsys.readouterr().err


def test_the_ensemble_job_passes_the_vocabulary_threshold():
    # It used to accept --min-count and ignore it.
    args = ensemble_job.build_parser().parse_args([*MINIMAL_JOB, "--min-count", "2"])
    assert ensemble_job.job_options(args)["vocabulary_min_count"] == 2
    assert (
        EnsembleJob("x", "y", "o", vocabulary_min_count=2).input_options().vocabulary_min_count == 2
    )
    with pytest.raises(ValueError, match="vocabulary_min_count must be at least 1"):
        EnsembleJob("x", "y", "o", vocabulary_min_count=0)


def test_checkpoint_default_is_declared_once():
    assert params.default_checkpoint_dir("gs://b/out/") == "gs://b/out.checkpoint"
    assert params.default_checkpoint_dir("out", "ckpt") == "ckpt"
    assert EnsembleJob("x", "y", "runs/o/").checkpoint_root == "runs/o.checkpoint"
