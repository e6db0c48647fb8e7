"""Tests for recsel.outputs.report.page: the self-contained HTML selection report."""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import os
from html.parser import HTMLParser

import pytest
from PIL import Image

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from recsel.outputs.report.page import render_report, write_report
from recsel.spec.features import FeatureSet, FeatureSpec
from recsel.spec.result import RoundRecord, SelectionResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CORE_SECTIONS = ["summary", "order", "trajectories", "frontier", "widths", "cost_model"]
# Selection order and the step at which each gate became 1 in the synthetic trajectory.
ORDER = {"user_id": 100, "country": 150, "tags": 220, "age": 260}


class _Page(HTMLParser):
    """Collects section ids, image sources and every tag name of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        attributes = dict(attrs)
        if tag == "section":
            self.sections.append(attributes["id"])
        if tag == "img":
            self.images.append(attributes["src"])


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _features(names: tuple[str, ...] = ("user_id", "country", "age", "tags", "item_id", "noise")):
    kinds = {
        "user_id": dict(kind="categorical", dtype="int64", hash_buckets=1000, embedding_dim=32),
        "country": dict(kind="categorical", vocabulary=tuple(f"c{i}" for i in range(19))),
        "age": dict(kind="numeric", numeric_transform="bucketize", boundaries=(18, 25, 35, 50)),
        "tags": dict(kind="multi_categorical", vocabulary=tuple(f"t{i}" for i in range(80))),
        "item_id": dict(kind="categorical", dtype="int64", hash_buckets=5000, embedding_dim=32),
    }
    specs = [
        FeatureSpec(n, **kinds.get(n, dict(kind="categorical", vocabulary=("a", "b"))))
        for n in names
    ]
    return FeatureSet(tuple(specs), label="clicked")


def _trajectory(candidates: list[str], order: dict[str, int]) -> dict:
    """Gates: 1 during warm-up (to step 30), a smooth pending share, then 1 once selected."""
    steps = list(range(10, 310, 10))
    weights = {}
    for k, name in enumerate(candidates):
        series = []
        for step in steps:
            if step <= 30 or (name in order and step >= order[name]):
                series.append(1.0)
            else:
                series.append(round(0.1 + 0.05 * k + 0.3 * math.sin(step / 90.0 + k) ** 2, 6))
        weights[name] = series
    return {"steps": steps, "weights": weights}


def _result(features: FeatureSet | None = None, order: dict[str, int] = ORDER) -> SelectionResult:
    features = features or _features()
    candidates = features.names
    selected = list(order)
    dims = {n: 16 if i % 2 else 8 for i, n in enumerate(selected)}
    cuts = [2, 3, 4]
    rounds = [
        RoundRecord(
            index=i,
            selected=selected[:cut],
            dims={n: dims[n] for n in selected[:cut]},
            auc=0.70 + 0.03 * i,
            log_loss=0.60 - 0.02 * i,
            latency_ms_p50=1.1 + 0.4 * i,
            latency_ms_p99=1.9 + 0.5 * i,
            predicted_latency_ms=1.0 + 0.45 * i,
            embedding_bytes=40_000 * (i + 1),
            steps=step,
        )
        for i, (cut, step) in enumerate(zip(cuts, [150, 230, 300]))
    ]
    return SelectionResult(
        label="clicked",
        candidates=candidates,
        selected=selected,
        dims=dims,
        full_dims={s.name: s.embedding_dim for s in features},
        selection_weights={n: 0.2 + 0.1 * i for i, n in enumerate(selected)},
        final_weights={
            n: (1.0 if n in order else 0.05 + 0.01 * i) for i, n in enumerate(candidates)
        },
        rounds=rounds,
        metrics={"auc": rounds[-1].auc, "log_loss": rounds[-1].log_loss},
        trajectory=_trajectory(candidates, order),
        cost_model={  # the shape of recsel.cost.model.CostModel.describe()
            "version": 1,
            "coefficients": {"base_ms": 0.41, "per_feature_ms[categorical]": 0.12},
            "batch_size": 512,
            "hidden_units": [64, 32],
            "provenance": {"calibration": {"runs": 12, "r2": 0.97}, "device": "cpu"},
        },
        budget={"latency_ms": 2.0, "memory_bytes": None, "serving_batch_size": 512},
        config={"num_features": None, "latency_budget_ms": 2.0, "seed": 7},
        provenance={
            "recsel_version": "0.1.0",
            "tensorflow_version": "2.16.2",
            "python_version": "3.10.13",
            "seed": 7,
            "wall_seconds": 42.25,
        },
    )


def _decode_images(page: _Page) -> list[Image.Image]:
    images = []
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:60]
        data = base64.b64decode(src[len(prefix) :], validate=True)
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 2048, f"suspiciously small PNG ({len(data)} bytes)"
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.format == "PNG"
        assert 300 <= image.width <= 3000 and 150 <= image.height <= 3000, image.size
        images.append(image)
    return images


ENSEMBLE = {
    "runs": [
        {"seed": 0, "selected": ["user_id", "country", "tags"], "dims": {"user_id": 8}},
        {"seed": 1, "selected": ["user_id", "tags", "age"], "dims": {"user_id": 16}},
        {"seed": 2, "selected": ["country", "user_id", "tags"], "dims": {}},
    ],
    "jaccard_mean": 0.667,
    "jaccard_pairs": [[0, 1, 0.5], [0, 2, 1.0], [1, 2, 0.5]],
    "rule": "kept by at least 2 of 3 runs",
}


def test_full_report_has_every_section_and_embedded_pngs() -> None:
    text = render_report(_result(), features=_features(), ensemble=ENSEMBLE)
    page = _parse(text)
    assert page.sections == [*CORE_SECTIONS, "ensemble"]
    # order, trajectories, frontier, widths, ensemble matrix, Jaccard stability
    assert len(_decode_images(page)) == 6
    assert {"script", "link", "iframe"}.isdisjoint(page.tags)
    assert "http://" not in text and "https://" not in text and "url(" not in text


def test_summary_order_and_rounds_content() -> None:
    text = render_report(_result(), features=_features())
    summary = text[text.index('id="summary"') : text.index('id="order"')]
    for expected in ("4 of 6", "0.7600", "0.5600", "2.000 ms", "p50 1.900 ms", "2.16.2", "42.2 s"):
        assert expected in summary, expected
    order = text[text.index('id="order"') : text.index('id="trajectories"')]
    positions = [order.index(f"<td>{n}</td>") for n in ORDER]
    assert positions == sorted(positions), "selection order is not preserved"
    assert "Dropped features (2)" in order and "item_id" in order and "noise" in order
    frontier = text[text.index('id="frontier"') : text.index('id="widths"')]
    assert frontier.count("<tr>") == 1 + 3  # header + one row per round
    assert "Serving latency was not measured" not in frontier
    cost = text[text.index('id="cost_model"') :]
    assert "<td>per_feature_ms[categorical]</td><td>0.12</td>" in cost
    assert "<td>calibration.r2</td><td>0.97</td>" in cost  # nested provenance is flattened
    assert "<td>hidden_units</td><td>[64, 32]</td>" in cost


def test_selection_steps_are_marked_from_the_trajectory() -> None:
    text = render_report(_result())
    trajectories = text[text.index('id="trajectories"') : text.index('id="frontier"')]
    for name, step in ORDER.items():
        assert f'<td>{name}</td><td class="num">{step}</td>' in trajectories


def test_feature_names_and_title_are_escaped() -> None:
    evil = "<script>x</script>"
    features = _features(("user_id", evil, "cost$^$usd", "noise"))
    result = _result(features, order={evil: 100, "cost$^$usd": 150, "user_id": 220})
    text = render_report(result, features=features, title='<b onload="x">')
    assert evil not in text and '<b onload="x">' not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text
    page = _parse(text)
    assert "script" not in page.tags and "b" not in page.tags
    assert page.sections == CORE_SECTIONS
    _decode_images(page)  # "$" in names must not break matplotlib's mathtext


def test_no_latency_falls_back_to_embedding_bytes_then_feature_count() -> None:
    base = _result()
    rounds = [
        dataclasses.replace(r, latency_ms_p50=None, latency_ms_p99=None, predicted_latency_ms=None)
        for r in base.rounds
    ]
    result = dataclasses.replace(base, rounds=rounds, budget=None, cost_model=None)
    text = render_report(result)
    frontier = text[text.index('id="frontier"') : text.index('id="widths"')]
    assert "Serving latency was not measured" in frontier and "embedding-table bytes" in frontier
    assert "No budget was set, so no cost model was calibrated." in text
    assert "not measured" in text[: text.index('id="order"')]
    no_bytes = [dataclasses.replace(r, embedding_bytes=0) for r in rounds]
    text = render_report(dataclasses.replace(result, rounds=no_bytes))
    assert "the x axis shows the number of features instead" in text
    _decode_images(_parse(text))


def test_relative_latency_budget_shows_its_share_of_the_full_model() -> None:
    base = _result()
    budget = {**base.budget, "latency_fraction": 0.5, "full_model_latency_ms": 4.0}
    text = render_report(dataclasses.replace(base, budget=budget))
    summary = text[text.index('id="summary"') : text.index('id="order"')]
    # HTML-escaped apostrophe
    assert (
        "50% of the full model&#x27;s p50, timed beside each round (2.000 ms of 4.000 ms" in summary
    )
    # The final round was judged against the full model timed beside it: 50% of 4.4 ms.
    rounds = list(base.rounds)
    rounds[base.final_round] = dataclasses.replace(
        rounds[base.final_round], full_model_latency_ms=4.4
    )
    result = dataclasses.replace(base, budget=budget, rounds=rounds)
    assert result.latency_limit_ms() == pytest.approx(2.2)
    text = render_report(result)
    summary = text[text.index('id="summary"') : text.index('id="order"')]
    assert "limit 2.200 ms (full model 4.400 ms in the same passes)" in summary
    frontier = text[text.index('id="frontier"') : text.index('id="widths"')]
    assert "full model ms" in frontier and "4.400" in frontier


def test_latency_budget_without_measurements_is_called_out() -> None:
    base = _result()
    rounds = [dataclasses.replace(r, latency_ms_p50=None) for r in base.rounds]
    text = render_report(dataclasses.replace(base, rounds=rounds))
    assert "A latency budget was set but no round has a latency measurement." in text


def test_zero_rounds_and_missing_trajectory_degrade_gracefully() -> None:
    result = dataclasses.replace(_result(), rounds=[], trajectory={})
    text = render_report(result, features=_features())
    page = _parse(text)
    assert page.sections == CORE_SECTIONS
    assert "No rounds were recorded, so there is no frontier to show." in text
    assert "No attention trajectory was recorded" in text
    # Widths still render; with no rounds and no stored feature_curve there is no
    # validation curve to draw (the old weight-bar chart it replaced needed no data).
    assert len(_decode_images(page)) == 1
    assert "No round was recorded, so there is no validation curve to show." in text


def test_widths_heuristic_needs_features() -> None:
    text = render_report(_result())
    assert "heuristic is omitted" in text
    text = render_report(_result(), features=_features())
    widths = text[text.index('id="widths"') : text.index('id="cost_model"')]
    # user_id hashes into 1000 buckets: 6 * 1000 ** 0.25 = 33.7, rounded up to 40.
    assert '<td class="num">1000</td><td class="num">33.7</td><td class="num">40</td>' in widths
    assert "heuristic is omitted" not in widths


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(selected=["user_id", "ghost"]), "ghost"),
        (dict(trajectory={"steps": [1, 2], "weights": {"age": [1.0]}}), "'age' has 1 values"),
    ],
)
def test_inconsistent_result_raises(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_report(dataclasses.replace(_result(), **change))


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="needs a SelectionResult"):
        render_report(_result().to_dict())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"no spec for kept features \['tags'"):
        render_report(_result(), features=_features(("user_id", "country", "age")))
    with pytest.raises(ValueError, match='non-empty "runs"'):
        render_report(_result(), ensemble={"runs": []})
    with pytest.raises(ValueError, match='run 1 needs a "selected"'):
        render_report(_result(), ensemble={"runs": [{"selected": []}, {"seed": 1}]})
    with pytest.raises(ValueError, match=r"jaccard_pairs entry \[0, 5, 0.5\]"):
        render_report(_result(), ensemble={**ENSEMBLE, "jaccard_pairs": [[0, 5, 0.5]]})


def test_ensemble_computes_missing_jaccard_and_handles_one_run() -> None:
    runs = [{"seed": 3, "selected": ["a", "b", "c"]}, {"seed": 4, "selected": ["a", "b", "d"]}]
    text = render_report(_result(), ensemble={"runs": runs})
    ensemble = text[text.index('id="ensemble"') :]
    assert "Mean pairwise Jaccard similarity: 0.500" in ensemble  # |{a,b}| / |{a,b,c,d}|
    assert "seed 3" in ensemble and len(_decode_images(_parse(ensemble))) == 2
    text = render_report(_result(), ensemble={"runs": runs[:1]})
    assert "stability needs at least two runs" in text


def test_write_report_is_atomic_and_matches_render(tmp_path) -> None:
    path = str(tmp_path / "out" / "report.html")
    result = _result()
    write_report(result, path, features=_features())
    with open(path, encoding="utf-8") as f:
        assert f.read() == render_report(result, features=_features())
    assert os.listdir(tmp_path / "out") == ["report.html"]  # no temporary leftovers


@pytest.mark.slow  # select() itself takes ~30 s on a shared 2-core machine
def test_report_of_a_real_selection(tmp_path) -> None:
    from recsel.data import make_synthetic
    from recsel.inputs.inference import infer_feature_set
    from recsel.inputs.splits import split_frame
    from recsel.inputs.tabular import validate_frame
    from recsel.selection.driver import select
    from recsel.spec.config import SelectionConfig

    data = make_synthetic(n_rows=3000, n_informative=3, n_duplicates=1, n_noise=4, n_traps=0)
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    config = SelectionConfig(num_features=3, batch_size=128, seed=0)
    result = select(train, valid, features, config, progress=False)

    text = render_report(result, features=features)
    page = _parse(text)
    assert page.sections == CORE_SECTIONS
    assert len(_decode_images(page)) == 4
    assert f"{len(result.selected)} of {len(features)}" in text
    assert "Serving latency was not measured" in text  # no budget: no latency measured
    for name in result.selected:
        assert f"<td>{name}</td>" in text
    # A result saved as JSON (how the CLI reports later) renders identically.
    result.to_json(str(tmp_path / "result.json"))
    reloaded = SelectionResult.from_json(str(tmp_path / "result.json"))
    assert render_report(reloaded, features=features) == text


# ---------------------------------------------------------------- curve and why dropped
def _explained_result(last_round_ms: float = 2.3) -> SelectionResult:
    """Round 3 measured ``last_round_ms`` against the 2 ms budget (final round 2: it went
    over by default); ``noise`` is a relabelled ``country``."""
    import numpy as np
    import pandas as pd

    from recsel.selection.explain import dropped_reasons

    base = _result()
    rounds = list(base.rounds)
    rounds.append(
        dataclasses.replace(
            rounds[-1],
            index=3,
            selected=[*rounds[-1].selected, "item_id"],
            steps=330,
            latency_ms_p50=last_round_ms,
        )
    )
    curve = [
        {"feature": n, "auc": 0.62 + 0.05 * i, "log_loss": 0.66 - 0.02 * i}
        for i, n in enumerate(base.selected)
    ]
    result = dataclasses.replace(base, rounds=rounds, final_round=2, feature_curve=curve)
    rng = np.random.default_rng(0)
    country = rng.choice([f"c{i}" for i in range(19)], 2000)
    sample = pd.DataFrame(
        {
            "user_id": rng.integers(0, 1000, 2000),
            "country": country,
            "age": rng.normal(40, 10, 2000),
            "tags": [[f"t{i}"] for i in rng.integers(0, 80, 2000)],
            "item_id": rng.integers(0, 5000, 2000),
            "noise": np.char.add("copy-", country),  # a bijective relabelling
        }
    )
    result.dropped_reasons = dropped_reasons(result, _features(), sample)
    return result


def test_validation_curve_figure_is_a_real_png() -> None:
    text = render_report(_explained_result(), features=_features())
    order = text[text.index('id="order"') : text.index('id="trajectories"')]
    page = _parse(order)
    (curve,) = _decode_images(page)  # _decode_images checks magic, size (> 2 KiB) and format
    assert curve.width >= 600 and curve.height >= 300, curve.size
    assert 'alt="validation AUC as features join"' in order
    # The table shows what each feature added: 0.62 -> 0.67 is +0.0500.
    assert "<td>user_id</td>" in order and '<td class="num">+0.0500</td>' in order


def test_why_dropped_names_the_copy_and_the_over_budget_feature() -> None:
    result = _explained_result()
    assert result.dropped_reasons["noise"]["reason"] == "copy"
    assert result.dropped_reasons["noise"]["of"] == "country"
    assert result.dropped_reasons["item_id"] == {
        "reason": "over_budget",
        "round": 4,
        "detail": "selected in round 4, whose model measured p50 2.300 ms, over the limit of "
        "2.000 ms",
    }
    order = render_report(result)
    order = order[order.index("Dropped features") : order.index('id="trajectories"')]
    rows = {cells[0]: cells for cells in _rows(order) if cells and cells[0] in ("noise", "item_id")}
    assert rows["noise"][2] == "copy of country"
    assert rows["item_id"][2] == "over the budget"


def test_a_round_after_the_final_one_that_fit_the_budget_is_not_called_over_it() -> None:
    """A later round within the budget (1.9 ms of 2) was not the result because it added
    too little: its feature is ``no_value``, not ``over_budget``."""
    reason = _explained_result(last_round_ms=1.9).dropped_reasons["item_id"]
    assert reason["reason"] == "no_value" and reason["round"] == 4
    assert "fit the budget; round 3 was the last whose new features added" in reason["detail"]
    # Under a relative budget the limit is that share of the full model timed beside it.
    from recsel.selection.explain import dropped_reasons

    result = _explained_result(last_round_ms=1.9)
    rounds = [dataclasses.replace(r, full_model_latency_ms=3.6) for r in result.rounds]
    budget = {"latency_ms": 2.0, "latency_fraction": 0.5, "memory_bytes": None}
    relative = dataclasses.replace(result, rounds=rounds, budget=budget)
    assert dropped_reasons(relative)["item_id"]["detail"] == (
        "selected in round 4, whose model measured p50 1.900 ms, over the limit of 1.800 ms "
        "(50% of the full model's 3.600 ms, timed alongside)"
    )


def test_why_dropped_is_derived_when_the_result_predates_it() -> None:
    """An old selection.json (no dropped_reasons): over-budget is still recognised."""
    result = dataclasses.replace(_explained_result(), dropped_reasons=None)
    order = render_report(result)
    order = order[order.index("Dropped features") : order.index('id="trajectories"')]
    rows = {cells[0]: cells for cells in _rows(order) if cells}
    assert rows["item_id"][2] == "over the budget"
    assert rows["noise"][2] == "low attention"  # no data to see that it is a copy


def test_id_like_columns_are_not_called_copies() -> None:
    import numpy as np
    import pandas as pd

    from recsel.selection.explain import copy_score

    rows = np.arange(3000)
    assert copy_score(pd.Series(rows), pd.Series(rows[::-1].astype(str))) is None
    rng = np.random.default_rng(1)
    a = pd.Series(rng.integers(0, 10, 3000))
    assert copy_score(a, pd.Series(rng.integers(0, 10, 3000))) < 0.5
    noisy = a.where(rng.random(3000) > 0.05, rng.integers(0, 10, 3000))
    assert copy_score(a, noisy.map(lambda v: f"v{v}")) > 0.85


def _rows(fragment: str) -> list[list[str]]:
    """The text cells of every table row in ``fragment``."""

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag == "td":
                self.cell = []

        def handle_endtag(self, tag):
            if tag == "td" and self.cell is not None:
                self.rows[-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Rows()
    parser.feed(fragment)
    return parser.rows


def test_the_summary_says_what_the_tables_take_of_a_memory_budget() -> None:
    base = _result()
    assert "Embedding tables" not in base.summary()  # no memory budget
    budget = {**base.budget, "memory_bytes": 150_000}
    lines = dataclasses.replace(base, budget=budget).summary().splitlines()
    final = base.rounds[base.final_round].embedding_bytes
    assert lines[-1] == (
        f"Embedding tables {final:,} bytes of the 150,000-byte budget (rows x width x 4 bytes)"
    )


def test_a_table_that_cannot_fit_beside_the_kept_ones_is_over_a_memory_budget() -> None:
    from recsel.selection.explain import dropped_reasons

    base = _result()
    final = base.rounds[base.final_round].embedding_bytes
    # item_id (5000 hash rows) needs 5000 x 8 x 4 = 160,000 bytes at the least width 8;
    # noise (2 values + OOV) needs 3 x 8 x 4 = 96: only noise fits the 1,000 bytes left.
    budget = {**base.budget, "memory_bytes": final + 1_000}
    result = dataclasses.replace(base, budget=budget, config={"min_dim": 8})
    reasons = dropped_reasons(result, _features())
    assert reasons["item_id"] == {
        "reason": "over_budget",
        "detail": "its table takes at least 160,000 bytes (5,000 rows x width 8 x 4 bytes), "
        "more than the 1,000 bytes the kept tables leave of the memory budget",
    }
    assert reasons["noise"]["reason"] == "low_attention"
    assert dropped_reasons(base, _features())["item_id"]["reason"] == "low_attention"


def test_a_round_over_a_memory_budget_says_what_its_tables_take() -> None:
    from recsel.selection.explain import dropped_reasons

    result = _explained_result(last_round_ms=1.9)  # within the 2 ms latency budget
    last = result.rounds[-1].embedding_bytes
    budget = {**result.budget, "memory_bytes": float(last - 1)}  # JSON may hold a float
    detail = dropped_reasons(dataclasses.replace(result, budget=budget))["item_id"]["detail"]
    assert detail == (
        f"selected in round 4, whose tables take {last:,} bytes, over the {last - 1:,}-byte budget"
    )
