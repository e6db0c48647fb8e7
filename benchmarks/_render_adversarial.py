"""BENCHMARKS.md section for ``adversarial_recovery.json`` (issue 14)."""

from __future__ import annotations

from benchmarks._render_sections import fmt, header, table


def adversarial_section(name: str, data: dict) -> str:
    """Clean-recovery rate per row count, variant and mode, the vocabulary-threshold sweep, and
    every run that was not clean (what it kept that it should not have)."""
    lines = ["## adversarial_recovery", "", header(data)]
    load = data.get("load_average_before"), data.get("load_average_after")
    lines.append(
        "Data from `recsel.data.adversarial.make_adversarial` (never used to tune recsel before "
        "issue 14): 6 informative groups (4 categorical, 2 numeric), 2 exact and 1 noisy copy, "
        "3 ID-like noise columns (1k, 4k and 10k values), 4 low-cardinality noise columns; "
        "`balanced` has ~30% positives, `rare` ~2.5%. Count mode keeps 6; budget mode has no "
        "count and a roomy budget (90% of the full model's latency). A run is *clean* when it "
        "keeps every group, no copy of a kept group, no ID-like and no noise column. "
        f"Load average before/after: {fmt(load[0])} / {fmt(load[1])}."
    )
    lines.append("")
    headers = ["Rows", "Variant", "Mode", "min_count", "Clean", "Groups", "Copies", "ID-like", "Noise",
               "Mean AUC", "Mean passes"]  # fmt: skip
    rows = [[str(s.get("rows", data.get("rows", ""))), s["variant"], s["mode"], str(s["min_count"]), f"{s['clean']}/{s['seeds']}",
             f"{s['groups_recovered']}/{s['groups_total']}", str(s["copies"]), str(s["id_like"]),
             str(s["noise"]), fmt(s["mean_auc"]), fmt(s.get("mean_passes"))]
            for s in data["summary"]]  # fmt: skip
    lines += [table(headers, rows), ""]
    misses = [r for r in data["runs"] if not r["clean"]]
    if misses:
        lines.append("Runs that were not clean:")
        lines.append("")
        for r in misses:
            kept = ", ".join(
                f"{what} {', '.join(r[key])}"
                for what, key in (("copies", "copies"), ("ID-like", "id_like"), ("noise", "noise"))
                if r[key]
            )
            missed = f"missed {', '.join(r['missed'])}; " if r["missed"] else ""
            lines.append(
                f"- {r['rows']} rows, {r['variant']} {r['mode']} seed {r['seed']} "
                f"(min_count {r['min_count']}): "
                f"{missed}{kept or 'nothing extra'}; AUC {fmt(r['auc'])}"
            )
        lines.append("")
    if data.get("notes"):
        lines += ["Notes:", ""] + [f"- {note}" for note in data["notes"]] + [""]
    return "\n".join(lines)
