"""BENCHMARKS.md sections for the known results files, and the table helpers they share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

METHOD_NOTES = {
    "all": (
        "all candidates (reference; its training time is the cost unit; runs from e99f003 "
        "on time recsel and the unit 3 times, interleaved, and use the medians)"
    ),
    "random": "a seeded random subset",
    "mutual_information": (
        "sklearn `mutual_info_classif` (plug-in, discrete): numerics in 16 quantile bins, "
        "categorical values seen < 5 times merged into one code, multi-valent columns scored "
        "by the summed MI of their 64 most frequent tokens' presence indicators"
    ),
    "l1_gate": (
        "one scalar gate per feature embedding, L1 weight 1e-3 (embeddings keep recsel's L2 "
        "1e-4), trained once with the protocol, ranked by |gate| (AutoField / LPFS family)"
    ),
    "permutation": (
        "AUC drop of the trained all-features model when one validation column is shuffled; "
        "its cost includes that model's training"
    ),
    "tree_importance": (
        "scikit-learn `HistGradientBoostingClassifier` (200 iterations, early stopping) on all "
        "candidates, categoricals coded by training-frequency rank, ranked by permutation "
        "importance (validation AUC drop, 3 shuffles); its cost includes the fit"
    ),
    "greedy": (
        "forward selection retraining one model per candidate per step, validation AUC; "
        "candidates tried per step: {cap}"
    ),
    "recsel": "`recsel.select(num_features=k)`, one run, default settings",
    "recsel_ensemble": "consensus of the single recsel runs of all seeds (`recsel.beam.consensus`)",
}

QUICK_CAVEAT = (
    "**Quick mode caveat.** The tables below come from subsamples, two seeds and a greedy "
    "search capped at a few candidates per step, so AUC differences of a few thousandths "
    "are within noise. Training runs are short, so fixed costs weigh on the cost ratios: "
    "graph building of every new model, and recsel's minimum number of steps per selection "
    "event plus its 50 hard-gated fine-tuning steps, which can exceed one pass over the "
    "training rows. "
    "The cap makes greedy far cheaper than a real forward search. `make bench` runs the full "
    "sizes."
)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def fmt(value: Any, digits: int | None = None) -> str:
    """A table cell: floats to ``digits`` decimals (None: 4 significant digits), ``-`` for
    None, lists joined by commas, pipes escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if digits is None or (value != 0 and abs(value) >= 1e5):
            return f"{value:.4g}"
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.1g}"
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def pm(mean: float, std: float, seeds: int = 2, digits: int = 4) -> str:
    """``mean ± std``; a single seed has no spread, so it says so instead."""
    if seeds < 2:
        return f"{mean:.{digits}f} (1 seed)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def header(data: dict) -> str:
    """Machine, date, commit, exact command and seeds of one results file."""
    m = data.get("machine", {})
    if isinstance(m, dict) and "cpu" in m:
        parts = [
            f"Machine: {m['cpu']}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB; "
            f"Python {m.get('python', '?')}, TensorFlow {m.get('tensorflow', '?')}.",
            f"Date: {m.get('date', '?')} (commit `{m.get('commit') or '?'}`).",
        ]
    else:  # another script's machine record: show what it has
        described = ", ".join(f"{k} {fmt(v)}" for k, v in (m or {}).items() if is_scalar(v))
        parts = [f"Machine: {described or 'not recorded'}."]
        if data.get("date"):
            parts.append(f"Date: {data['date']}.")
    parts.append(f"Command: `{data.get('command', '?')}`.")
    seeds = data.get("seeds", sorted({r.get("seed") for r in data.get("runs", []) if "seed" in r}))
    if seeds:
        parts.append(f"Seeds: {fmt(list(seeds))}.")
    if data.get("mode"):
        parts.append(f"Mode: {data['mode']}.")
    return " ".join(parts) + "\n"


def _status(met: bool) -> str:
    return "met" if met else "**MISS**"


def targets_table(targets: list[dict]) -> str:
    rows = [[t["target"], fmt(t["value"]), fmt(t["threshold"]), _status(t["met"])] for t in targets]
    return table(["Target", "Measured", "Threshold", "Status"], rows)


# ---------------------------------------------------------------------------- sections
def _invocation(command: str) -> str:
    """``-m module args`` of a command line, whatever Python binary ran it."""
    return command[command.find("-m ") :] if "-m " in command else command


def _shown(step: dict, results: dict[str, dict]) -> str:
    shown = results.get(step.get("name", ""))
    if shown is None:
        return "no results file"
    if _invocation(shown.get("command", "")) == _invocation(step["command"]):
        return "this run"
    return f"another run (dated in its section): `{fmt(_invocation(shown.get('command', '?')))}`"


def run_all_section(name: str, data: dict, results: dict[str, dict] | None = None) -> str:
    """The last ``run_all``: mode, total and per-script wall time, and which results each
    section below shows (another run may have rewritten a file since)."""
    results = results or {}
    minutes = data["total_seconds"] / 60
    lines = [
        "## run_all",
        "",
        header(data),
        f"Last `run_all` ({data['mode']} mode) took **{minutes:.1f} min** of wall time "
        f"(load average {fmt(data.get('load_average_start'), 2)} at the start and "
        f"{fmt(data.get('load_average_end'), 2)} at the end, on a machine shared with other "
        "jobs).",
        "",
    ]
    rows = [
        [f"`{s['command']}`", f"{s['seconds']:.0f}", str(s["returncode"]), _shown(s, results)]
        for s in data["steps"]
    ]
    lines += [table(["Step", "Seconds", "Exit code", "Section below shows"], rows), ""]
    if data.get("quick_limit_minutes") and data["mode"] == "quick":
        ok = minutes <= data["quick_limit_minutes"]
        lines += [f"Quick-mode limit {data['quick_limit_minutes']} min: {_status(ok)}.", ""]
    return "\n".join(lines)


def _cost_losses(summary: list[dict], k: int) -> list[str]:
    ours = next((e for e in summary if e["method"] == "recsel" and e["k"] == k), None)
    if ours is None:
        return []
    cheaper = [
        f"{e['method']} ({e['cost_ratio_mean']:.2f}x)"
        for e in summary
        if e["k"] == k and e["method"] not in ("all", "recsel")
        and e["cost_ratio_mean"] < ours["cost_ratio_mean"]
    ]  # fmt: skip
    if not cheaper:
        return []
    return [f"- selection cost at k={k} ({ours['cost_ratio_mean']:.2f}x): cheaper are "
            + ", ".join(cheaper)]  # fmt: skip


def _budget_losses(budget: dict | None) -> list[str]:
    if not budget:
        return []
    ours = next((r for r in budget["rows"] if r["method"] == "recsel"), None)
    if ours is None or ours.get("test_auc") is None:
        return ["- latency budget: recsel found no selection within the budget"]
    better = [
        f"{r['method']} (+{r['test_auc'] - ours['test_auc']:.4f})"
        for r in budget["rows"]
        if r["method"] not in ("recsel", "all")
        and r.get("joint_within_budget", r["within_budget"])
        and r.get("test_auc") is not None and r["test_auc"] > ours["test_auc"]
    ]  # fmt: skip
    if not better:
        return []
    return ["- test AUC under the latency budget: higher are " + ", ".join(better)]


def _budget_seeds(budgets: list[dict]) -> list[str]:
    """Per method, over every seed's budget comparison: mean test AUC, mean features, and
    on how many seeds its model was within the budget (its search timing / joint timing);
    then the target line: recsel's mean at or above every baseline's."""
    if len(budgets) < 2:
        return []
    rows, means = [], {}
    for method in [r["method"] for r in budgets[0]["rows"]]:
        mine = [r for b in budgets for r in b["rows"] if r["method"] == method]
        aucs = [r["test_auc"] for r in mine if r.get("test_auc") is not None]
        means[method] = float(np.mean(aucs)) if len(aucs) == len(mine) else None
        rows.append([
            method, fmt(float(np.mean([len(r["selected"]) for r in mine])), 1),
            fmt(means[method]), ", ".join(fmt(r.get("test_auc")) for r in mine),
            f"{sum(bool(r['within_budget']) for r in mine)}/{len(mine)}",
            f"{sum(bool(r.get('joint_within_budget')) for r in mine)}/{len(mine)}",
        ])  # fmt: skip
    ours = means.get("recsel")
    verdicts = [
        f"{m} {fmt(v)}: " + ("met" if ours >= v else f"**MISS** ({v - ours:+.4f})")
        for m, v in means.items()
        if m not in ("recsel", "all") and ours is not None and v is not None
    ]
    seeds = ", ".join(str(b["seed"]) for b in budgets)
    headers = ["Method", "Mean features", "Mean test AUC", "Test AUC per seed",
               "Within budget (search)", "Within budget (joint)"]  # fmt: skip
    target = (
        f"Target: recsel's mean test AUC under the budget ({fmt(ours)}) >= each baseline's: "
        + ("; ".join(verdicts) if verdicts else "recsel has no selection on some seed")
        + "."
    )
    return [f"Latency budget over seeds {seeds} (each seed's own measured budget):", "",
            table(headers, rows), "", target, ""]  # fmt: skip


def _compare_dataset(section: dict, cap: Any) -> list[str]:
    lines = [
        f"### {section['name']}",
        "",
        f"{section['rows']['train']} train / {section['rows']['valid']} valid / "
        f"{section['rows']['test']} test rows, {section['candidates']} candidates, split "
        f"{section['split']}. One plain training run of the all-features model: "
        + ", ".join(f"{v:.1f} s (seed {k})" for k, v in section["reference_seconds"].items())
        + ".",
        "",
    ]
    planted = any("group_recall_mean" in e for e in section["summary"])
    everything = next(e for e in section["summary"] if e["method"] == "all")
    for k in section["ks"]:
        entries = [everything] + [
            e for e in section["summary"] if e["k"] == k and e["method"] != "all"
        ]
        headers = ["Method", "k", "Test AUC", "Test log loss", "Cost (x plain run)", "Seconds"]
        if planted:
            headers += ["Group recall", "Duplicates", "Noise", "Traps"]
        rows = []
        for e in entries:
            reference = e["method"] == "all"  # no selection: its training time is the unit
            row = [e["method"], str(e["k"]), pm(e["auc_mean"], e["auc_std"], e["seeds"]),
                   pm(e["log_loss_mean"], e["log_loss_std"], e["seeds"]),
                   "1 (unit)" if reference else fmt(e["cost_ratio_mean"], 2),
                   "-" if reference else fmt(e["selection_seconds_mean"], 1)]  # fmt: skip
            if planted:
                row += [fmt(e.get(f"{m}_mean"), 2) for m in
                        ("group_recall", "duplicates_selected", "noise_selected", "traps_selected")]  # fmt: skip
            rows.append(row)
        lines += [f"k = {k} of {section['candidates']}:", "", table(headers, rows), ""]
    lines += ["Targets (largest k):", "", targets_table(section["targets"]), ""]
    lines += ["Where recsel (single run) loses:", ""]
    lines += [f"- test AUC at k={x['k']}: {x['method']} is higher by {x['auc_gap']:.4f}"
              for x in section["losses"]] or ["- test AUC: no method is higher at any k"]  # fmt: skip
    lines += _cost_losses(section["summary"], max(section["ks"]))
    lines += _budget_losses(section.get("budget"))
    lines.append("")
    budget = section.get("budget")
    if budget:
        lines += [
            f"Latency budget (seed {budget['seed']}, serving batch {budget['serving_batch_size']}): "
            f"**{budget['budget_ms']:.3f} ms** p50, {budget['budget_fraction']:.0%} of the way from "
            f"the cheapest one-feature model ({budget['cheapest_feature']}, {budget['min_ms']:.3f} ms) "
            f"to all features ({budget['full_ms']:.3f} ms). {budget['framing']}",
            "",
        ]
        rows = [[r["method"], str(len(r["selected"])), fmt(r["p50_ms"], 3),
                 fmt(r["within_budget"]), fmt(r.get("joint_p50_ms"), 3),
                 fmt(r.get("joint_within_budget")), fmt(r.get("test_auc")),
                 fmt(r.get("test_log_loss")), fmt(r.get("note", ""))]
                for r in budget["rows"]]  # fmt: skip
        headers = ["Method", "Features", "p50 ms", "Within budget", "Joint p50 ms",
                   "Within joint budget", "Test AUC", "Log loss", "Note"]  # fmt: skip
        if "joint_budget_ms" in budget:
            lines += [f"Joint timing: budget {budget['joint_budget_ms']:.3f} ms (cheapest "
                      f"{budget['joint_min_ms']:.3f}, all {budget['joint_full_ms']:.3f}).", ""]  # fmt: skip
        lines += [table(headers, rows), ""]
    lines += _budget_seeds(section.get("budget_seeds") or [])
    if section.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in section["notes"]]
    return lines


def compare_section(name: str, data: dict) -> str:
    caps = {d["name"]: d.get("greedy_max_candidates") for d in data["datasets"]}
    cap = ", ".join(f"{n}: {c or 'all'}" for n, c in caps.items())
    protocol = data.get("protocol", {})
    lines = [
        "## compare_methods",
        "",
        header(data),
        "Every method picks k features; the same downstream model (`Ranker(PrunedEmbedding"
        "(chosen features at full width), (64, 32))`) is retrained from scratch on them "
        f"({protocol.get('epochs')} epoch, batch {protocol.get('batch_size')}, Adam "
        f"{protocol.get('learning_rate')}, the run's seed) and scored on held-out test rows: "
        "mean ± standard deviation over seeds. Cost = the method's selection wall time / one "
        "plain training run of the all-features model, same process and seed, after a warm-up "
        "that absorbs one-off graph conversion. Methods:",
        "",
    ]
    lines += [f"- **{m}**: {note.format(cap=cap)}" for m, note in
              METHOD_NOTES.items()]  # fmt: skip
    lines.append("")
    if data.get("mode") == "quick":
        lines += [QUICK_CAVEAT, ""]
    for section in data["datasets"]:
        lines += _compare_dataset(section, section.get("greedy_max_candidates"))
        lines.append("")
    return "\n".join(lines)


def dims_section(name: str, data: dict) -> str:
    lines = ["## dims", "", header(data), data.get("description", ""), ""]
    load = data.get("load_average")
    if load:
        lines += [f"Load average (1 min) at start {load['start'][0]:.2f}, at end "
                  f"{load['end'][0]:.2f}; wall time {fmt(data.get('wall_seconds'), 0)} s.", ""]  # fmt: skip
    for section in data["datasets"]:
        lines += [f"### {section['name']}", "", section.get("describe", ""), ""]
        planted = any("spearman_mean" in e for e in section["summary"])
        rows = []
        for e in section["summary"]:
            row = [e["variant"], f"{e['params_mean']:,.0f}", f"{e['param_fraction']:.1%}",
                   pm(e["auc_mean"], e["auc_std"], e["seeds"]),
                   pm(e["log_loss_mean"], e["log_loss_std"], e["seeds"])]  # fmt: skip
            if planted:
                row.append(pm(e["spearman_mean"], e["spearman_std"], e["seeds"], digits=2))
            rows.append([*row, fmt(e.get("widths", ""))])
        headers = ["Widths", "Embedding params", "of full", "Test AUC", "Test log loss"]
        headers += ["Spearman vs planted"] if planted else []
        lines += [table([*headers, "Seed-0 widths"], rows), ""]
        if section.get("cost"):

            def one(c: dict) -> str:
                text = f"seed {c['seed']}: {c['select_seconds']:.1f} s / "
                if "plain_before" in c:  # the unit brackets the selection (mean of two)
                    text += f"mean({c['plain_before']:.1f}, {c['plain_after']:.1f}) s"
                else:
                    text += f"{c['full_train_seconds']:.1f} s"
                text += f" = {c['ratio']:.2f}x"
                if "cpu_ratio" in c:  # process CPU time, the load-insensitive view
                    text += f" (CPU {c['select_cpu_seconds']:.1f} / {c['plain_cpu_seconds']:.1f} s"
                    text += f" = {c['cpu_ratio']:.2f}x)"
                if "load_1min" in c:
                    text += f" (load {c['load_1min'][0]:.1f}-{c['load_1min'][1]:.1f})"
                return text

            cost = ", ".join(one(c) for c in section["cost"])
            lines += [f"Selection cost (select / plain full-width training): {cost}.", ""]
        lines += [targets_table(section["targets"]), ""]
        if section.get("notes"):  # what the benchmark's author measured beside the run
            lines += [f"Notes: {section['notes']}", ""]
    return "\n".join(lines)


def _wide_lines(wide: dict) -> list[str]:
    """The 100k-row candidate sweep (gated select() beside a plain model of the same shape)."""
    lines = ["### Hundreds of candidates (100k rows)", "", header(wide)]
    lines.append(
        "Per candidate count, fresh processes read the same Parquet table: **gated** runs "
        "`recsel select --num-features 8` itself (in-process, outputs written), **plain** "
        "prepares the table as the CLI does and trains the same model without gates for the "
        "same steps (in multi-step compiled calls, as the trainer runs its own), and "
        "**interleaved** times both models' steps in alternating blocks in one process (the "
        "step ratio, robust to load drift): the gated model through the selection trainer's "
        "own train function (gates, in-graph selection events, trajectory buffer), the plain "
        "one through the same multi-step function, both on the same materialised batches, so "
        "the shared input pipeline (which runs beside the step on the same cores) is not in "
        "the ratio. Times count from process "
        "creation; the first step is done when the trainer's first compiled call (which may "
        "run several steps) returns; median step divides each later call by its steps; "
        "tracing is the train step's trace; ops are its graph nodes; peak RSS is the "
        "process's own high-water mark (`VmHWM`; `ru_maxrss` would include the parent's RSS "
        "at the fork, since it survives fork + exec). Load average (1 min) at start: "
        f"{fmt(wide.get('load_average_at_start'))}."
    )
    lines.append("")
    rows = []
    for p in wide["points"]:
        g, q = p["gated"], p["plain"]
        rows.append([str(p["candidates"]), fmt(g["import_seconds"], 1),
                     fmt(g["prepared_since_start"], 1), fmt(g["first_step_done_since_start"], 1),
                     fmt(q["first_step_done_since_start"], 1), fmt(g["tracing_seconds"], 2),
                     fmt(q["tracing_seconds"], 2), str(g["graph_ops"]), str(g["trace_count"]),
                     fmt(g["median_step_ms"], 1), fmt(q["median_step_ms"], 1),
                     fmt(p["step_ratio_interleaved"], 3), fmt(g["peak_rss_mib"], 0),
                     fmt(q["peak_rss_mib"], 0), fmt(g["load_average"][0], 1)])  # fmt: skip
    headers = ["Candidates", "Import s", "Data ready s", "1st step done s", "plain: 1st step s",
               "Trace s", "plain: trace s", "Train-step ops", "Traces", "Median step ms",
               "plain: median step ms", "Step ratio (interleaved)", "Peak RSS MiB",
               "plain: peak RSS MiB", "Load at end"]  # fmt: skip
    lines += [table(headers, rows), ""]
    detail = [
        f"{p['candidates']}: CPU {fmt(p['steps']['cpu_ratio'], 3)}, streamed "
        f"{fmt(p['steps']['streamed']['ratio'], 3)}"
        for p in wide["points"]
        if "cpu_ratio" in p["steps"] and "streamed" in p["steps"]
    ]
    if detail:
        lines += [
            "Interleaved step ratio by this process's CPU time (other processes on the box "
            "stretch wall time, not it), and by wall time with each model reading the input "
            "pipeline itself: " + "; ".join(detail) + ".",
            "",
        ]
    e = wide.get("exponents", {})
    lines.append(
        f"Growth exponents in candidates (log-log slopes): start -> first step "
        f"{fmt(e.get('first_step'), 2)}, the same less imports {fmt(e.get('setup_after_import'), 2)}, "
        f"tracing {fmt(e.get('tracing'), 2)}, train-step ops {fmt(e.get('graph_ops'), 2)}, "
        f"peak RSS {fmt(e.get('peak_rss'), 2)}."
    )
    lines += ["", targets_table(wide["targets"]), ""]
    return lines


def scaling_section(name: str, data: dict) -> str:
    lines = ["## scaling", "", header(data), data.get("description", ""), ""]
    if "wide" in data:
        lines += _wide_lines(data["wide"])
    for sweep in ("rows", "candidates"):
        points = [p for p in data.get("points", []) if p["sweep"] == sweep]
        if not points:
            continue
        rows = [[str(p["rows"]), str(p["candidates"]), str(p.get("steps", "-")),
                 fmt(p["select_seconds"], 1), fmt(p.get("first_step_seconds"), 1),
                 fmt(p.get("steps_seconds"), 1), fmt(p["peak_rss_mib"], 0),
                 fmt(p.get("rss_before_mib"), 0)] for p in points]  # fmt: skip
        headers = ["Rows", "Candidates", "Steps", "select() s", "Setup to 1st step s",
                   "Training steps s", "Peak RSS MiB", "RSS before select MiB"]  # fmt: skip
        slopes = data["exponents"].get(sweep, {})
        lines += [f"Growing {sweep}:", "", table(headers, rows), ""]
        lines.append(
            f"Log-log slope vs {sweep}: select() time {fmt(slopes.get('time'), 2)}, training "
            f"steps time {fmt(slopes.get('steps_time'), 2)}, peak RSS "
            f"{fmt(slopes.get('memory'), 2)}."
        )
        lines.append("")
    return "\n".join(lines)


def planted_section(name: str, data: dict) -> str:
    runs = data["runs"]
    lines = ["## planted_recovery", "", header(data)]
    lines.append(
        "recsel selects 8 of 34 synthetic candidates (8 informative, 6 duplicates, 20 noise "
        "incl. 2 ID-like traps); per seed: informative groups recovered, redundant picks."
    )
    lines.append("")
    rows = [[fmt(r["logit_scale"], 1), str(r["seed"]), f"{r['recovered']}/8",
             str(r["duplicates_selected"]), str(r["noise_selected"]), str(r["traps_selected"]),
             fmt(r["auc"]), fmt(r["seconds"], 1)] for r in runs]  # fmt: skip
    headers = [
        "Logit scale",
        "Seed",
        "Recovered",
        "Duplicates",
        "Noise",
        "Traps",
        "Valid AUC",
        "Seconds",
    ]
    scales = sorted({r.get("logit_scale", 1.0) for r in runs})
    per_scale = "; ".join(
        f"logit scale {s:g}: {sum(r.get('all_recovered', r['recovered'] == 8) for r in runs if r.get('logit_scale', 1.0) == s)}"
        f" of {sum(1 for r in runs if r.get('logit_scale', 1.0) == s)} seeds"
        for s in scales
    )
    lines += [
        table(headers, rows),
        "",
        f"All 8 informative groups recovered, with no copy, noise or trap picked: {per_scale}. "
        "`select()` uses logit scale 10 by default (the paper's parametrisation is 1).",
        "",
    ]
    return "\n".join(lines)


def overhead_section(name: str, data: dict) -> str:
    med, ratio, target = data["median_step_ms"], data["ratio"], data.get("target", 1.10)
    lines = ["## layer_overhead", "", header(data)]
    lines.append(
        f"Median training step with the gated layer {med['gated']:.2f} ms vs plain embeddings "
        f"{med['plain']:.2f} ms ({data.get('candidates', '?')} candidates, "
        f"{data.get('embedding_columns', '?')} embedding columns, batch {data.get('batch_size', '?')})"
        f": ratio **{ratio:.3f}**, target <= {target}: {_status(ratio <= target)}."
    )
    return "\n".join(lines) + "\n"


def latency_noise_section(name: str, data: dict) -> str:
    lines = ["## latency_noise", "", header(data)]
    lines.append(
        f"An {len(data['kept'])}-feature pruned model against the full model "
        f"({data['candidates']} candidates), batch {data['batch_size']}. *One-shot*: the "
        f"round's model timed alone (one 30-call median) and divided by the full model's p50 "
        f"taken once at the start ({data['full_model_p50_ms_at_start']:.3f} ms, quiet). *Side by "
        "side*: both timed in the same 3 interleaved passes of 10 calls, least per-pass median "
        "each. Spread is (max - min) / median of the ratio over the repeats; lower is steadier."
    )
    lines.append("")
    rows = [
        [
            r["state"],
            fmt(r["pruned_p50_ms_one_shot_median"], 3),
            fmt(r["pruned_p50_ms_side_by_side_median"], 3),
            fmt(r["full_p50_ms_side_by_side_median"], 3),
            fmt(r["one_shot_ratio_median"], 3),
            fmt(r["one_shot_ratio_spread"], 2),
            fmt(r["side_by_side_ratio_median"], 3),
            fmt(r["side_by_side_ratio_spread"], 2),
        ]
        for r in data["states"]
    ]
    headers = [
        "machine state",
        "pruned p50 ms (one-shot)",
        "pruned p50 ms (side by side)",
        "full p50 ms (side by side)",
        "one-shot ratio",
        "spread",
        "side-by-side ratio",
        "spread",
    ]
    lines += [table(headers, rows), ""]
    return "\n".join(lines)


SECTIONS = {
    "run_all": run_all_section,
    "compare_methods": compare_section,
    "dims": dims_section,
    "scaling": scaling_section,
    "planted_recovery": planted_section,
    "layer_overhead": overhead_section,
    "latency_noise": latency_noise_section,
}
