"""Every user parameter of the shells, declared once: name, type, default, help, parser.

The CLI flags (``recsel.cli``), the TFX execution properties (``recsel.tfx``) and the Beam
ensemble job's options (``recsel.beam.ensemble.EnsembleJob`` and
``pipelines/ensemble_job.py``) are all generated from ``PARAMS``, so a default, a type or a
unit parser exists once. ``tests/test_params.py`` checks that the three surfaces agree.

A parameter that is a ``SelectionConfig`` field takes its type and default from that
dataclass (the core's one declaration); the others (how the inputs are read and the
candidates built) declare theirs here. Parameters that only one shell has (a TFX split
name, the CLI's ``--stream``) stay in that shell: they cannot drift.

Example:
    >>> from recsel import params
    >>> params.get("embedding_dim").default
    16
    >>> params.parse_memory_bytes("512MiB")
    536870912.0
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Iterator
from typing import Any

from recsel.spec.config import SelectionConfig
from recsel.spec.units import (  # noqa: F401  (the parsers are part of the parameter surface)
    LatencyBudget,
    parse_latency_budget,
    parse_latency_ms,
    parse_memory_bytes,
)

CLI, TFX, BEAM = "cli", "tfx", "beam"
SURFACES = frozenset({CLI, TFX, BEAM})

# The groups say where a parameter goes: ``config`` into SelectionConfig, ``features``
# into how candidates are built (every command that selects), ``data`` into how a table
# is read and split (commands that read a user's table), ``run`` into where a run writes.
CONFIG, FEATURES, DATA, RUN = "config", "features", "data", "run"

_FROM_CONFIG: Any = object()  # sentinel: take the SelectionConfig field's type / default


@dataclasses.dataclass(frozen=True)
class Param:
    """One user parameter and how each surface spells it.

    Args:
        name: The canonical name: the ``SelectionConfig`` field, the TFX execution
            property and the ``EnsembleJob`` field.
        help: One line for ``--help`` (argparse ``%`` escaped).
        group: ``config``, ``features`` or ``data`` (see the module constants).
        kind: ``int``, ``float``, ``str`` or ``tuple`` (a list of names); config
            parameters take their field's type.
        default: The default; config parameters take their field's default.
        surfaces: The shells that expose it.
        flag: The CLI flag (default ``--`` + the name with dashes).
        parse: CLI text -> value, for values with units.
        pick: With a shared ``flag``: the attribute of the parsed value that is this
            parameter's (``--latency-budget`` fills ``latency_budget_ms`` or ``_fraction``).
        choices: The allowed values.
        minimum: The smallest allowed value.
        metavar: The CLI metavar.
        exclusive: CLI flags with the same name here are mutually exclusive.
        required: The CLI flag must be given.
    """

    name: str
    help: str
    group: str = CONFIG
    kind: Any = _FROM_CONFIG
    default: Any = _FROM_CONFIG
    surfaces: frozenset[str] = SURFACES
    flag: str | None = None
    parse: Callable[[str], Any] | None = None
    pick: str | None = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    metavar: str | None = None
    exclusive: str | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if self.group == CONFIG:
            field = _config_fields()[self.name]  # KeyError: not a SelectionConfig field
            if self.kind is _FROM_CONFIG:
                object.__setattr__(self, "kind", _plain_type(field.type, self.name))
            if self.default is _FROM_CONFIG:
                object.__setattr__(self, "default", field.default)
        elif self.kind is _FROM_CONFIG or self.default is _FROM_CONFIG:
            raise TypeError(
                f"Parameter {self.name!r} is not a SelectionConfig field: give kind and default."
            )
        if self.flag is None:
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))

    @property
    def dest(self) -> str:
        """The argparse attribute: the flag's name (``--min-count`` -> ``min_count``)."""
        return self.flag.lstrip("-").replace("-", "_")

    def check(self, value: Any, where: str = "") -> Any:
        """Validates one value against ``choices`` and ``minimum``; returns it.

        Raises:
            ValueError: The value is not allowed; the message names the parameter.
        """
        name = where or self.name
        if value is None:
            return value
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name} must be one of {self.choices}, got {value!r}.")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{name} must be at least {self.minimum:g}, got {value!r}.")
        return value


def _config_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(SelectionConfig)}


def _plain_type(annotation: Any, name: str) -> type:
    """``int | None`` -> ``int``: the one plain type a TFX property can carry."""
    if isinstance(annotation, str):
        annotation = typing.get_type_hints(SelectionConfig)[name]
    plain = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    if len(plain) != 1 or plain[0] not in (int, float, str, bool):
        raise TypeError(f"SelectionConfig.{name} ({annotation}) has no plain parameter type.")
    return plain[0]


_K = "(default %(default)s)"

PARAMS: tuple[Param, ...] = (
    # ---- what to keep
    Param("num_features", "Features to keep.", exclusive="count"),
    Param(
        "feature_fraction", "Share of the candidate features to keep.", flag="--fraction",
        exclusive="count",
    ),
    Param(
        "latency_budget_ms",
        "p50 serving latency budget at --serving-batch-size: a time (3ms) or a share of the "
        "full model's latency measured on this machine (50%%).",
        flag="--latency-budget", parse=parse_latency_budget, pick="ms", metavar="TIME|PCT",
    ),
    Param(
        "latency_budget_fraction", "The latency budget as a share of the full model's p50.",
        flag="--latency-budget", pick="fraction",
    ),
    Param(
        "memory_budget_bytes", "Embedding-table memory budget, e.g. 2GB, 512MiB or 2Gi.",
        flag="--memory-budget", parse=parse_memory_bytes, metavar="SIZE",
    ),
    Param("serving_batch_size", f"Batch size of the latency measurement {_K}."),
    # ---- widths
    Param("chunk_size", f"Columns per chunk candidate {_K}."),
    Param("dim_multiple", f"Round widths up to this multiple {_K}."),
    Param("min_dim", f"Smallest width of a kept feature {_K}."),
    Param("max_dim", "Largest width of a kept feature (default: its full width)."),
    # ---- training
    Param("batch_size", f"Selection-model batch size {_K}."),
    Param("epochs", "Passes over the training rows (keep ~1)."),
    Param("train_steps", "Training steps of the whole run (overrides --epochs)."),
    Param("learning_rate", f"Selection-model learning rate {_K}."),
    Param("seed", f"Seed of the selection run {_K}."),
    # ---- the selection model and schedule (advanced: the defaults are measured)
    Param("dim_fraction", f"Without a budget, share of a kept feature's chunks kept {_K}."),
    Param(
        "chunk_significance", "Widths-only runs: keep a chunk only if ablating it raises "
        f"validation log loss by more than this many standard errors {_K}.",
    ),
    Param("warmup_fraction", f"Leading share of the first round with every gate at 1 {_K}."),
    Param("chunk_phase_fraction", f"Trailing share of each round that chooses widths {_K}."),
    Param("finetune_steps", f"Hard-gated fine-tuning steps at the end of each round {_K}."),
    Param("l2", f"L2 penalty on looked-up embedding rows {_K}."),
    Param("logit_scale", f"Attention logit multiplier {_K}."),
    Param("features_per_round", "Features selected per round under a budget (default: planned)."),
    Param(
        "cost_rule", "Under a budget: choose by attention weight among the candidates that "
        f"fit (weight), or weight per unit cost (ratio) {_K}.", choices=("weight", "ratio"),
    ),
    Param(
        "plateau_tolerance", "Under a budget, the validation AUC a round's new features must add "
        f"{_K}.",
    ),
    Param(
        "plateau_patience", "Under a budget, stop after this many rounds in a row add nothing "
        f"(less than plateau_tolerance AUC, or over budget) {_K}.",
    ),
    Param("log_every", f"Record the attention trajectory every this many steps {_K}."),
    Param(
        "tower",
        "Custom selection tower: 'file.py:function' or 'package.module:function' returning "
        "a tf_keras layer from the embedding vector to one logit (see recsel.model.tower).",
        kind=str, surfaces=frozenset({CLI, BEAM}), metavar="SPEC",
    ),  # TFX names it with module_file / module_path / tower_fn, as Trainer does
    # ---- candidates
    Param(
        # 16, as the core's builders (infer_feature_set, feature_set_from_schema and
        # _from_statistics) and TFX: the CLI's and the ensemble job's old 32 was the odd
        # one out, and it doubled the candidate model for two more chunks per feature.
        "embedding_dim", f"Full width of inferred features {_K}.", group=FEATURES, kind=int,
        default=16, minimum=1,
    ),
    Param(
        "vocabulary_min_count",
        "Vocabulary frequency threshold of inferred features: values seen fewer times in "
        "training map to OOV (default 5, recsel.inputs.inference.DEFAULT_MIN_COUNT; 1 keeps every "
        "value). Rare values can only be memorised, which lets ID-like columns win selection.",
        group=FEATURES, kind=int, default=5, minimum=1, flag="--min-count",
    ),
    # ---- reading a table (TFX reads splits of an Examples artifact instead)
    Param(
        "nan_policy", "NaN/inf in numeric features: fail (default) or impute the column mean.",
        group=DATA, kind=str, default="raise", choices=("raise", "impute"),
    ),
    Param(
        "validation_fraction", "Share of the rows (or shards) held out for validation "
        f"{_K}.", group=DATA, kind=float, default=0.2, surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "exclude", "Columns that are not candidates.", group=DATA, kind=tuple, default=(),
        surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "categorical", "Integer columns to treat as categorical.", group=DATA, kind=tuple,
        default=(), surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "list_columns", "CSV columns whose cells are lists joined by --list-separator "
        "(genres 'Action|Comedy'): multi-valent candidates. Parquet and TFRecord hold lists "
        "as lists.", group=DATA, kind=tuple, default=(), surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "list_separator", "Separator of the --list-columns cells.", group=DATA, kind=str,
        default="|", surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "stream", "Stream the shards (one statistics pass, bounded memory) instead of reading "
        "them into memory. auto: stream TFRecord or Parquet data of two or more shards.",
        group=DATA, kind=str, default="auto", choices=("auto", "on", "off"),
        surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "shuffle_buffer", "Rows in the streaming shuffle buffer (memory is bounded by it).",
        group=DATA, kind=int, default=10_000, minimum=0, surfaces=frozenset({CLI, BEAM}),
    ),
    # ---- where a run writes (TFX: the artifacts and the stateful working directory)
    Param(
        "output_dir", "Where the outputs go (must be empty).", group=RUN, kind=str,
        default=None, surfaces=frozenset({CLI, BEAM}), required=True,
    ),
    Param(
        "overwrite", "Replace a non-empty --output-dir.", group=RUN, kind=bool, default=False,
        surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "log_dir", "TensorBoard log directory for attention traces.", group=RUN, kind=str,
        default=None, surfaces=frozenset({CLI, BEAM}),
    ),
    Param(
        "checkpoint_dir", "Checkpoints (default: <output-dir>.checkpoint); rerunning the same "
        "command resumes from them. Removed on success.", group=RUN, kind=str, default=None,
        surfaces=frozenset({CLI, BEAM}),
    ),
)  # fmt: skip

_BY_NAME = {p.name: p for p in PARAMS}


def get(name: str) -> Param:
    """The parameter called ``name``.

    Raises:
        KeyError: No such parameter; the message lists them.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"No parameter {name!r}; there are: {', '.join(_BY_NAME)}.") from None


def default(name: str) -> Any:
    """The default of parameter ``name`` (one place for every shell's default)."""
    return get(name).default


def on(surface: str, group: str | None = None) -> Iterator[Param]:
    """The parameters ``surface`` exposes, in declaration order (optionally one group)."""
    if surface not in SURFACES:
        raise ValueError(f"Unknown surface {surface!r}; use one of {sorted(SURFACES)}.")
    return (p for p in PARAMS if surface in p.surfaces and group in (None, p.group))


def config_kwargs(values: dict[str, Any], surface: str) -> dict[str, Any]:
    """The ``SelectionConfig`` keyword arguments among ``values`` (None: the default).

    Args:
        values: Parameter values by canonical name (missing or None: not given).
        surface: The shell they came from (only its parameters are read).

    Returns:
        Keyword arguments for ``SelectionConfig``, each cast to its declared type.

    Example:
        >>> config_kwargs({"num_features": 3, "seed": None}, "tfx")
        {'num_features': 3}
    """
    out = {}
    for param in on(surface, CONFIG):
        value = values.get(param.name)
        if value is not None:
            out[param.name] = param.kind(value)
    return out


def default_checkpoint_dir(output_dir: str, checkpoint_dir: str | None = None) -> str:
    """Where a run checkpoints: ``checkpoint_dir``, else ``<output_dir>.checkpoint``.

    Example:
        >>> default_checkpoint_dir("gs://b/out/")
        'gs://b/out.checkpoint'
    """
    return checkpoint_dir or output_dir.rstrip("/") + ".checkpoint"


# --------------------------------------------------------------------------- argparse
def _cli_type(param: Param) -> Callable[[str], Any]:
    """The argparse ``type``: the unit parser, else the plain type, then ``check``."""

    def convert(text: str) -> Any:
        value = param.parse(text) if param.parse else param.kind(text)
        try:
            return param.check(value, param.flag)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    convert.__name__ = param.kind.__name__ if param.parse is None else param.parse.__name__
    return convert


def add_cli_args(parser: argparse.ArgumentParser, groups: tuple[str, ...]) -> None:
    """Adds the CLI flags of the parameters in ``groups``, generated from ``PARAMS``.

    Args:
        parser: The parser (or subcommand parser).
        groups: Which groups (``CONFIG``, ``FEATURES``, ``DATA``, ``RUN``) to add.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_cli_args(parser, (CONFIG, FEATURES))
        >>> config_from_args(parser.parse_args(["--num-features", "3"])).num_features
        3
    """
    sections: dict[str, Any] = {}
    exclusive: dict[str, Any] = {}
    seen: set[str] = set()
    for param in on(CLI):
        if param.group not in groups or param.flag in seen:
            continue  # a shared flag (--latency-budget) is added once, by its first param
        seen.add(param.flag)
        if param.group not in sections:
            title = {CONFIG: "selection", FEATURES: "candidates", DATA: "data", RUN: "outputs"}
            sections[param.group] = parser.add_argument_group(title[param.group])
        target = sections[param.group]
        if param.exclusive:
            if param.exclusive not in exclusive:
                exclusive[param.exclusive] = target.add_mutually_exclusive_group()
            target = exclusive[param.exclusive]
        kwargs: dict[str, Any] = {"dest": param.dest, "help": param.help}
        if param.kind is bool:
            kwargs["action"] = "store_true"
        elif param.kind is tuple:
            kwargs.update(nargs="*", default=list(param.default), metavar="COLUMN")
        else:
            kwargs.update(type=_cli_type(param), metavar=param.metavar)
            kwargs["default"] = None if param.pick else param.default
            if param.choices:
                kwargs["choices"] = param.choices
            if param.required:
                kwargs["required"] = True
        target.add_argument(param.flag, **kwargs)


def add_verbose_arg(parser: argparse.ArgumentParser) -> None:
    """Adds ``--verbose``: every third-party log line too (see ``recsel.quiet``)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="Also show third-party log lines (TF, TFX, Beam); same as RECSEL_VERBOSE=1.",
    )


def values_from_args(args: argparse.Namespace, groups: tuple[str, ...] | None = None) -> dict:
    """Parameter values by canonical name from parsed CLI flags (flags not added: skipped).

    Args:
        args: What ``add_cli_args``'s flags parsed into.
        groups: Only these groups (None: all).

    Returns:
        ``{name: value}``; lists come back as tuples, ``--latency-budget`` as its two fields.
    """
    out = {}
    for param in on(CLI):
        if (groups is not None and param.group not in groups) or not hasattr(args, param.dest):
            continue
        value = getattr(args, param.dest)
        if param.pick:
            value = getattr(value, param.pick) if value is not None else None
        elif param.kind is tuple:
            value = tuple(value or ())
        out[param.name] = value
    return out


def config_from_args(args: argparse.Namespace) -> SelectionConfig:
    """The ``SelectionConfig`` of the flags ``add_cli_args(parser, (CONFIG, ...))`` added."""
    return SelectionConfig(**config_kwargs(values_from_args(args, (CONFIG,)), CLI))
