"""recsel against the feature-selection methods a practitioner would otherwise use.

Every method picks k features; the same downstream model,
``Ranker(PrunedEmbedding(chosen features at full width), (64, 32))``, is then trained
from scratch on the chosen set with one protocol (``baselines.TrainProtocol``) and the
seed of the run, and scored on held-out test rows. Selection cost is each method's wall
time divided by one plain training run of the all-features model, measured in the same
process for the same seed (after a warm-up that absorbs one-off graph-conversion costs).
recsel's seconds and the plain unit are each the median of ``cost_repeats`` timings,
interleaved (plain, recsel, plain, recsel, ...), because one timing of a 1-3 s run on a
2-core box moves by 20-40% between repeats; every repeat of a selection must choose the
same features.

    python -m benchmarks.compare_methods [--quick] [--seeds 3] [--datasets synthetic adult movielens]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import numpy as np

import recsel  # noqa: F401
from benchmarks import baselines as bl
from benchmarks._common import machine, write_json
from benchmarks._compare_extras import (
    METHODS,
    TARGETS,
    budget_comparison,
    ensemble_rows,
    losses,
    summarise,
    targets,
)
from benchmarks.datasets import BenchData, load_dataset, planted_metrics
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig
from recsel.spec.result import SelectionResult


@dataclasses.dataclass
class CompareSettings:
    """What ``compare_dataset`` runs.

    Args:
        seeds: Seeds of the runs (model init, shuffling, random baseline, selection).
        k_fractions: Shares of the candidates to keep (rounded, at least 1).
        protocol: Downstream training protocol.
        methods: Subset of ``METHODS``.
        greedy_max_candidates: Candidates tried per greedy step (None: all).
        permutation_repeats: Shuffles per feature for permutation importance.
        l1: L1 weight of the gate baseline.
        budget: Also run the latency-budget comparison (every seed).
        budget_fraction: Budget position between the cheapest one-feature model (0) and
            the all-features model (1), by measured p50 latency.
        serving_batch_size: Batch size of the latency measurements.
        warmup: Train and select once on a tiny slice first, so no method pays the
            process's one-off graph-conversion cost.
        cost_repeats: Timings, interleaved, behind the median seconds of the plain unit
            and of each recsel selection (the other methods are timed once).

    Example:
        >>> CompareSettings(seeds=(0,), methods=("all", "random", "recsel"))
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    k_fractions: tuple[float, ...] = (0.25, 0.5)
    protocol: bl.TrainProtocol = dataclasses.field(default_factory=bl.TrainProtocol)
    methods: tuple[str, ...] = METHODS
    greedy_max_candidates: int | None = None
    permutation_repeats: int = 1
    l1: float = 1e-3
    budget: bool = False
    budget_fraction: float = 0.5
    serving_batch_size: int = 512
    warmup: bool = True
    cost_repeats: int = 3

    def __post_init__(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ValueError(f"Unknown methods {unknown}; choose from {METHODS}.")
        if "all" not in self.methods:
            raise ValueError(
                "'all' (the reference run, which also sets the cost unit) is required."
            )
        if "recsel_ensemble" in self.methods and "recsel" not in self.methods:
            raise ValueError("recsel_ensemble combines the recsel runs: add 'recsel' to methods.")
        if not self.seeds:
            raise ValueError("Give at least one seed.")
        if self.cost_repeats < 1:
            raise ValueError(f"cost_repeats must be at least 1, got {self.cost_repeats}.")


def ks_for(num_candidates: int, fractions) -> list[int]:
    """The k of each fraction: ``max(1, round(fraction * candidates))``, deduplicated.

    Args:
        num_candidates: Number of candidate features.
        fractions: Shares of the candidates to keep.

    Example:
        >>> ks_for(14, (0.25, 0.5))
        [4, 7]
    """
    return sorted({max(1, round(f * num_candidates)) for f in fractions})


_WARM: list[bool] = []


def warm_up(data: BenchData, protocol: bl.TrainProtocol) -> float:
    """One tiny training, gate training and selection, once per process, so that no timed
    method pays the process's one-off graph-building costs; returns its seconds.

    Args:
        data: Any dataset (its first three features and 400 rows are used).
        protocol: Training settings.

    Example:
        >>> warm_up(data, TrainProtocol())
    """
    if _WARM:
        return 0.0
    _WARM.append(True)
    started = time.perf_counter()
    names = data.features.names[:3]
    small = data.features.subset(names)
    rows = data.train.head(400)
    model, _ = bl.train_ranker(rows, small, protocol, seed=0)
    bl.evaluate(model, data.valid.head(400), small)
    bl.l1_gate_ranking(rows, small, protocol, seed=0)
    # Explicit steps: 400 rows are too few for a one-pass schedule, and this untimed
    # warm-up only has to build the graphs.
    config = SelectionConfig(num_features=1, seed=0, finetune_steps=2, train_steps=20)
    select(rows, data.valid.head(400), small, config, progress=False)
    return time.perf_counter() - started


class _Downstream:
    """Trains and scores the downstream model per (feature set, seed), once each."""

    def __init__(self, data: BenchData, protocol: bl.TrainProtocol):
        self.data, self.protocol, self.cache = data, protocol, {}

    def store(self, selected: list[str], seed: int, metrics: dict[str, float]) -> None:
        self.cache[(frozenset(selected), seed)] = {
            "test_auc": metrics["auc"],
            "test_log_loss": metrics["log_loss"],
        }

    def __call__(self, selected: list[str], seed: int) -> dict[str, float]:
        key = (frozenset(selected), seed)
        if key not in self.cache:
            subset = self.data.features.subset(selected)
            model, _ = bl.train_ranker(self.data.train, subset, self.protocol, seed)
            metrics = bl.evaluate(model, self.data.test, subset)
            self.cache[key] = {"test_auc": metrics["auc"], "test_log_loss": metrics["log_loss"]}
        return self.cache[key]


def _row(method, k, seed, selected, seconds, reference, downstream, data) -> dict:
    row = {
        "method": method,
        "k": k,
        "seed": seed,
        "selected": list(selected),
        **downstream(list(selected), seed),
        "selection_seconds": round(seconds, 3),
        "cost_ratio": round(seconds / reference, 4),
    }
    if data.truth is not None:
        row.update(planted_metrics(data.truth, list(selected)))
    return row


def _timed_selection(
    data: BenchData, s: CompareSettings, seed: int, k: int
) -> tuple[SelectionResult, float, list[float]]:
    """recsel at ``k``, timed ``s.cost_repeats`` times, each after one more plain run.

    Returns:
        ``(result, median seconds, the extra plain runs' seconds)``; raises if a repeat
        chose other features (the selection must not depend on timing).
    """
    results, seconds, unit = [], [], []
    for repeat in range(s.cost_repeats):
        if repeat:
            unit.append(bl.train_ranker(data.train, data.features, s.protocol, seed)[1])
        started = time.perf_counter()
        results.append(select(data.train, data.valid, data.features,
                              SelectionConfig(num_features=k, seed=seed), progress=False))  # fmt: skip
        seconds.append(time.perf_counter() - started)
    chosen = {tuple(r.selected) for r in results}
    if len(chosen) > 1:
        raise RuntimeError(f"recsel k={k} seed {seed} chose differently between repeats: {chosen}")
    return results[0], float(np.median(seconds)), unit


def _rankings(data, settings, seed, reference_model, reference_seconds, ks) -> dict:
    out, s = {}, settings
    if "random" in s.methods:
        out["random"] = bl.random_ranking(data.features, seed)
    if "mutual_information" in s.methods:
        out["mutual_information"] = bl.mutual_information_ranking(data.train, data.features)
    if "l1_gate" in s.methods:
        out["l1_gate"] = bl.l1_gate_ranking(data.train, data.features, s.protocol, seed, s.l1)
    if "permutation" in s.methods:
        out["permutation"] = bl.permutation_ranking(
            reference_model, data.valid, data.features, seed, s.permutation_repeats,
            train_seconds=reference_seconds,
        )  # fmt: skip
    if "tree_importance" in s.methods:
        out["tree_importance"] = bl.tree_importance_ranking(
            data.train, data.valid, data.features, seed
        )
    if "greedy" in s.methods:
        out["greedy"] = bl.greedy_forward_path(
            data.train, data.valid, data.features, s.protocol, seed, max(ks),
            s.greedy_max_candidates,
        )  # fmt: skip
    return out


def compare_dataset(
    data: BenchData, settings: CompareSettings, log: Callable[[str], None] = print
) -> dict:
    """Runs every method on one dataset for every seed and k.

    Args:
        data: The dataset.
        settings: Methods, seeds, k and protocol.
        log: Receives one progress line per finished step.

    Returns:
        The dataset's section of ``compare_methods.json``: raw ``runs``, per-(method, k)
        ``summary``, ``targets`` with ``met`` flags, ``losses`` (every method recsel loses
        to) and, if asked, the ``budget`` comparison.

    Example:
        >>> section = compare_dataset(load_dataset("synthetic", rows=4000), CompareSettings())
    """
    features, s = data.features, settings
    ks = ks_for(len(features), s.k_fractions)
    downstream = _Downstream(data, s.protocol)
    warmup_seconds = warm_up(data, s.protocol) if s.warmup else 0.0
    runs, references, recsel_results, budgets = [], {}, {k: [] for k in ks}, []
    repeat_units: dict[int, list[float]] = {}
    for seed in s.seeds:
        model, reference = bl.train_ranker(data.train, features, s.protocol, seed)
        references[seed] = reference
        downstream.store(features.names, seed, bl.evaluate(model, data.test, features))
        log(f"[{data.name} seed {seed}] all features: one plain training run = {reference:.1f} s")
        runs.append(_row("all", len(features), seed, features.names, 0.0, reference,
                         downstream, data))  # fmt: skip
        rankings = _rankings(data, s, seed, model, reference, ks)
        for method, ranking in rankings.items():
            for k in ks:
                if method == "greedy":
                    selected, seconds = ranking.order[:k], ranking.seconds_at(k)
                else:
                    selected, seconds = ranking.top(k), ranking.seconds
                runs.append(_row(method, k, seed, selected, seconds, reference, downstream, data))
            log(f"[{data.name} seed {seed}] {method}: {runs[-1]['cost_ratio']:.2f}x")
        if "recsel" in s.methods:
            for k in ks:
                result, seconds, unit = _timed_selection(data, s, seed, k)
                repeat_units.setdefault(seed, []).extend(unit)
                unit_seconds = float(np.median([reference, *unit]))
                recsel_results[k].append((result, seconds))
                runs.append(_row("recsel", k, seed, result.selected, seconds, unit_seconds,
                                 downstream, data))  # fmt: skip
                runs[-1]["unit_seconds"] = round(unit_seconds, 3)
                passes = result.provenance["train_rows_seen"] / len(data.train)
                runs[-1]["passes"] = round(passes, 2)
                log(f"[{data.name} seed {seed}] recsel k={k}: {runs[-1]['cost_ratio']:.2f}x")
        if s.budget:  # every seed: one seed's budget verdict decided nothing last time
            orders = {m: r.order for m, r in rankings.items() if m != "random"}
            budgets.append(budget_comparison(data, s, model, orders, seed, downstream))
            log(f"[{data.name} seed {seed}] latency-budget comparison done")
    notes = [
        f"recsel at k={r['k']} (seed {r['seed']}) trained {r['passes']} passes over the training "
        "rows to give every selection event its minimum steps (the plain run makes one)."
        for r in runs
        if r.get("passes", 0) > 1.25
    ]
    if "recsel_ensemble" in s.methods and "recsel" in s.methods:
        runs += ensemble_rows(
            s, recsel_results, references,
            lambda *a: _row(*a, downstream=downstream, data=data), notes,
        )  # fmt: skip
    summary = summarise(runs)
    return {
        **data.describe(),
        "ks": ks,
        "warmup_seconds": round(warmup_seconds, 1),
        "reference_seconds": {str(k): round(v, 3) for k, v in references.items()},
        "reference_repeat_seconds": {
            str(k): [round(x, 3) for x in v] for k, v in repeat_units.items()
        },
        "cost_repeats": s.cost_repeats,
        "greedy_max_candidates": s.greedy_max_candidates,
        "runs": runs,
        "summary": summary,
        "targets": targets(summary, max(ks)),
        "losses": losses(summary),
        "budget": budgets[0] if budgets else None,
        "budget_seeds": budgets,
        "notes": notes,
    }


# Greedy is uncapped (the real forward search) on the two smaller real datasets; on the
# synthetic set it tries 8 random candidates per step, or it would dominate the run.
PRESETS = {
    "full": {"seeds": 3, "rows": {"synthetic": 20_000, "adult": None, "movielens": None},
             "candidates": 20,
             "greedy_max_candidates": {"synthetic": 8, "adult": None, "movielens": None},
             "budget": ("adult", "movielens")},
    "quick": {"seeds": 2, "rows": {"synthetic": 30_000, "adult": 40_000, "movielens": 30_000},
              "candidates": 12,
              "greedy_max_candidates": {"synthetic": 2, "adult": 2, "movielens": 2},
              "budget": ("movielens",)},
}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small rows, 2 seeds, capped greedy")
    parser.add_argument("--seeds", type=int, help="number of seeds (0..n-1)")
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "adult", "movielens"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--no-budget", action="store_true", help="skip the latency comparison")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    preset = PRESETS[mode]
    seeds = tuple(range(args.seeds or preset["seeds"]))
    sections = []
    for name in args.datasets:
        data = load_dataset(name, preset["rows"][name], 16, preset["candidates"])
        settings = CompareSettings(
            seeds=seeds, methods=tuple(args.methods),
            greedy_max_candidates=preset["greedy_max_candidates"][name],
            budget=name in preset["budget"] and not args.no_budget,
        )  # fmt: skip
        sections.append(compare_dataset(data, settings, lambda m: print(m, flush=True)))
    command = "python -m benchmarks.compare_methods" + (" --quick" if args.quick else "")
    if args.seeds:
        command += f" --seeds {args.seeds}"
    if args.datasets != ["synthetic", "adult", "movielens"]:
        command += " --datasets " + " ".join(args.datasets)
    if args.methods != list(METHODS):
        command += " --methods " + " ".join(args.methods)
    if args.no_budget:
        command += " --no-budget"
    write_json("compare_methods", payload(sections, command, mode, seeds))


def payload(sections: list[dict], command: str, mode: str, seeds) -> dict:
    """The ``compare_methods.json`` content.

    Args:
        sections: One ``compare_dataset`` result per dataset.
        command: The exact command line that produced them.
        mode: ``quick`` or ``full``.
        seeds: The seeds used.

    Example:
        >>> write_json("compare_methods", payload([section], "python -m ...", "quick", [0]))
    """
    return {
        "machine": machine(),
        "command": command,
        "mode": mode,
        "seeds": list(seeds),
        "protocol": dataclasses.asdict(bl.TrainProtocol()),
        "targets": TARGETS,
        "datasets": sections,
    }


if __name__ == "__main__":
    main()
