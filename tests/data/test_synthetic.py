"""Tests for recsel.data.synthetic: shapes, roles, determinism and the planted signal."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import KBinsDiscretizer, MultiLabelBinarizer, OneHotEncoder

import recsel  # noqa: F401  (pins tf_keras before anything imports TensorFlow)
from recsel.data.synthetic import SyntheticData, make_synthetic


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return make_synthetic(n_rows=20_000, seed=0)


def _value_map(source: pd.Series, dup: pd.Series, kind: str) -> pd.DataFrame:
    """Aligned (source value, duplicate value) pairs; multi-hot cells pair token by token."""
    if kind != "multi_categorical":
        return pd.DataFrame({"s": source.to_numpy(), "d": dup.to_numpy()})
    return pd.DataFrame({"s": source.explode().to_numpy(), "d": dup.explode().to_numpy()})


def _oos_auc(frame: pd.DataFrame, column: str, kind: str) -> float:
    """Out-of-sample AUC of a smoothed target encoding fitted on the first half of rows."""
    half = len(frame) // 2
    values = frame[column]
    if kind == "numeric":
        values = pd.qcut(values, 20, labels=False, duplicates="drop")
    y = frame["label"].to_numpy()
    prior = y[:half].mean()
    if kind == "multi_categorical":
        tokens = values.explode()
        rows = tokens.index.to_numpy()
        train = rows < half
        stats = pd.DataFrame({"t": tokens.to_numpy()[train], "y": y[rows[train]]})
    else:
        stats = pd.DataFrame({"t": values.to_numpy()[:half], "y": y[:half]})
    agg = stats.groupby("t")["y"].agg(["sum", "count"])
    encoding = (agg["sum"] + 10 * prior) / (agg["count"] + 10)
    if kind == "multi_categorical":
        score = tokens.map(encoding).fillna(prior).groupby(level=0).mean().to_numpy()
    else:
        score = values.map(encoding).fillna(prior).to_numpy()
    return roc_auc_score(y[half:], score[half:])


def test_shapes_and_dtypes(data: SyntheticData) -> None:
    frame = data.frame
    assert frame.shape == (20_000, 8 + 6 + 20 + 1)
    assert list(frame.columns) == sorted(data.feature_columns()) + ["label"]
    assert frame["label"].dtype == np.int64
    assert set(frame["label"].unique()) == {0, 1}
    for name in data.feature_columns():
        kind, column = data.kinds[name], frame[name]
        if kind == "numeric":
            assert column.dtype == np.float32, name
        elif kind == "categorical":
            assert column.dtype == object and column.map(type).eq(str).all(), name
        else:
            assert column.dtype == object, name
            assert column.map(lambda v: isinstance(v, list) and 1 <= len(v) <= 5).all(), name
            assert column.map(lambda v: all(isinstance(t, str) for t in v)).all(), name
            assert column.map(lambda v: len(set(v)) == len(v)).all(), f"{name}: repeated tokens"
            assert set(column.map(len)) == {1, 2, 3, 4, 5}, name
    kinds = [data.kinds[n] for n in data.informative]
    assert kinds.count("categorical") == 4
    assert kinds.count("numeric") == 2
    assert kinds.count("multi_categorical") == 2


def test_names_do_not_leak_roles(data: SyntheticData) -> None:
    names = data.feature_columns()
    assert names == [f"f{i:02d}" for i in range(34)]
    # Roles are shuffled over names: the informative ones are not simply the first eight.
    assert sorted(data.informative) != names[:8]
    for name in names:
        if data.kinds[name] == "categorical":
            prefixes = {v.rsplit("_", 1)[0] for v in data.frame[name].head(50)}
            assert prefixes == {name}, f"{name}: values must be named after their own column"


def test_deterministic_given_seed() -> None:
    first = make_synthetic(n_rows=2_000, seed=5)
    second = make_synthetic(n_rows=2_000, seed=5)
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert (first.informative, first.duplicates, first.traps) == (
        second.informative,
        second.duplicates,
        second.traps,
    )
    other = make_synthetic(n_rows=2_000, seed=6)
    assert not first.frame.equals(other.frame)
    assert first.informative != other.informative


def test_role_bookkeeping(data: SyntheticData) -> None:
    informative, dups, noise = set(data.informative), set(data.duplicates), set(data.noise)
    assert len(informative) == 8 and len(dups) == 6 and len(noise) == 20
    assert informative.isdisjoint(dups) and informative.isdisjoint(noise) and dups.isdisjoint(noise)
    assert informative | dups | noise == set(data.feature_columns())
    assert set(data.traps) <= noise and len(data.traps) == 2
    assert set(data.exact_duplicates) <= dups and len(data.exact_duplicates) == 3
    assert set(data.duplicates.values()) <= informative
    # Duplicates cycle through the informative features: six distinct sources.
    assert len(set(data.duplicates.values())) == 6
    groups = data.groups()
    assert set(groups) == informative
    assert sorted(c for g in groups.values() for c in g) == sorted(informative | dups)
    for source, members in groups.items():
        assert members[0] == source
        assert all(data.duplicates[d] == source for d in members[1:])
    for dup, source in data.duplicates.items():
        assert data.kinds[dup] == data.kinds[source]
    exact_kinds = {data.kinds[d] for d in data.exact_duplicates}
    noisy_kinds = {data.kinds[d] for d in dups - set(data.exact_duplicates)}
    assert exact_kinds == noisy_kinds == {"categorical", "numeric", "multi_categorical"}


def test_exact_duplicates_are_bijective_relabellings(data: SyntheticData) -> None:
    for dup in data.exact_duplicates:
        source = data.duplicates[dup]
        kind = data.kinds[dup]
        if kind == "multi_categorical":
            lengths = data.frame[source].map(len)
            assert lengths.equals(data.frame[dup].map(len)), dup
        pairs = _value_map(data.frame[source], data.frame[dup], kind)
        assert pairs.groupby("s")["d"].nunique().max() == 1, f"{dup}: not a function of {source}"
        assert pairs.groupby("d")["s"].nunique().max() == 1, f"{dup}: not injective"
        assert not (pairs["s"] == pairs["d"]).all(), f"{dup}: an identical copy, not relabelled"
        if kind == "numeric":
            slope, intercept = np.polyfit(pairs["s"], pairs["d"], 1)
            assert np.allclose(slope * pairs["s"] + intercept, pairs["d"], atol=1e-4)


def test_noisy_duplicates_agree_on_most_rows(data: SyntheticData) -> None:
    for dup, source in data.duplicates.items():
        if dup in data.exact_duplicates:
            continue
        kind = data.kinds[dup]
        if kind == "multi_categorical":
            # Resampled rows get new lengths too; compare sets of mapped tokens row by row.
            same_length = data.frame[source].map(len) == data.frame[dup].map(len)
            tokens = _value_map(data.frame[source][same_length], data.frame[dup][same_length], kind)
            mapping = tokens.groupby("s")["d"].agg(lambda d: d.mode().iloc[0])
            mapped = data.frame[source].map(lambda row, m=mapping: sorted(m[t] for t in row))
            agree = (mapped == data.frame[dup].map(sorted)).mean()
        elif kind == "numeric":
            # Both columns are scale * x + loc with power-of-two scales: for the right slope
            # ratio, the offset d - slope * s is one exact value on every kept row.
            s, d = data.frame[source].to_numpy(float), data.frame[dup].to_numpy(float)
            agree = max(
                pd.Series(d - slope * s).value_counts().iloc[0] / len(s)
                for slope in 2.0 ** np.arange(-3, 4)
            )
        else:
            pairs = _value_map(data.frame[source], data.frame[dup], kind)
            mapping = pairs.groupby("s")["d"].agg(lambda d: d.mode().iloc[0])
            agree = (pairs["s"].map(mapping) == pairs["d"]).mean()
        assert 0.85 < agree < 0.97, f"{dup} ({kind}) agrees with {source} on {agree:.3f} of rows"


def test_traps_are_high_cardinality_ids(data: SyntheticData) -> None:
    for trap in data.traps:
        assert data.kinds[trap] == "categorical"
        counts = data.frame[trap].value_counts()
        assert len(counts) == pytest.approx(20_000 / 3, abs=2)
        assert counts.max() == 3
    for name in set(data.noise) - set(data.traps):
        if data.kinds[name] == "categorical":
            assert data.frame[name].nunique() <= 50


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_rate_in_bounds(seed: int) -> None:
    rate = make_synthetic(n_rows=5_000, seed=seed).frame["label"].mean()
    assert 0.3 <= rate <= 0.5


def test_informative_features_beat_noise_univariately(data: SyntheticData) -> None:
    auc = {n: _oos_auc(data.frame, n, data.kinds[n]) for n in data.feature_columns()}
    informative = min(auc[n] for n in data.informative)
    noise = max(auc[n] for n in data.noise)
    assert informative > 0.58, auc
    assert noise < 0.53, auc
    # Exact duplicates carry exactly their source's signal.
    for dup in data.exact_duplicates:
        assert auc[dup] == pytest.approx(auc[data.duplicates[dup]], abs=0.01)


def test_zero_signal_strength_makes_label_independent() -> None:
    data = make_synthetic(n_rows=20_000, signal_strength=0.0, seed=0)
    aucs = [_oos_auc(data.frame, n, data.kinds[n]) for n in data.informative]
    assert max(aucs) < 0.53, aucs


def test_every_informative_feature_is_needed(data: SyntheticData) -> None:
    """A logistic regression loses AUC when any single informative feature is left out."""
    frame, train = data.frame, np.arange(len(data.frame)) < len(data.frame) // 2
    encoded = {}
    for name in data.informative:
        kind = data.kinds[name]
        if kind == "categorical":
            enc = OneHotEncoder(handle_unknown="ignore").fit(frame.loc[train, [name]])
            encoded[name] = enc.transform(frame[[name]])
        elif kind == "numeric":
            enc = KBinsDiscretizer(n_bins=20, strategy="quantile").fit(frame.loc[train, [name]])
            encoded[name] = enc.transform(frame[[name]])
        else:
            hot = MultiLabelBinarizer().fit(frame.loc[train, name]).transform(frame[name])
            encoded[name] = sp.csr_matrix(hot / hot.sum(axis=1, keepdims=True))
    y = frame["label"].to_numpy()

    def auc(names: list[str]) -> float:
        x = sp.hstack([encoded[n] for n in names]).tocsr()
        model = LogisticRegression(max_iter=2_000).fit(x[train], y[train])
        return roc_auc_score(y[~train], model.predict_proba(x[~train])[:, 1])

    full = auc(data.informative)
    assert full > 0.8
    for name in data.informative:
        rest = [n for n in data.informative if n != name]
        assert full - auc(rest) > 0.015, f"dropping {name} ({data.kinds[name]}) barely hurts"


@pytest.mark.parametrize("n_informative", [1, 2, 3])
def test_few_informative_features(n_informative: int) -> None:
    data = make_synthetic(
        n_rows=500, n_informative=n_informative, n_duplicates=2, n_noise=3, seed=1
    )
    expected = {
        1: {"categorical"},
        2: {"categorical", "numeric"},
        3: {"categorical", "numeric", "multi_categorical"},
    }
    assert {data.kinds[n] for n in data.informative} == expected[n_informative]
    assert set(data.duplicates.values()) <= set(data.informative)
    assert len(data.feature_columns()) == n_informative + 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_rows": 5}, "n_rows"),
        ({"n_informative": 0}, "n_informative"),
        ({"n_noise": -1}, "non-negative"),
        ({"n_noise": 1, "n_traps": 2}, "n_traps"),
        ({"vocab_size": 1}, "vocab_size"),
        ({"max_valency": 0}, "max_valency"),
        ({"vocab_size": 4, "max_valency": 5}, "max_valency"),
        ({"noisy_duplicate_rate": 1.5}, "noisy_duplicate_rate"),
        ({"signal_strength": -1.0}, "signal_strength"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_synthetic(**kwargs)


def _frame_digest(frame: pd.DataFrame) -> str:
    import hashlib

    cells = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    return hashlib.sha256(cells.tobytes()).hexdigest()


def test_outputs_without_concept_seed_are_unchanged() -> None:
    # Digests of the outputs before concept_seed existed: callers that do not opt in
    # (planted recovery, the tests' data, the benchmarks' caches) keep their data.
    assert _frame_digest(make_synthetic(n_rows=3000, seed=1).frame) == (
        "f91c8a142f58a2b47b99f9a41fd59b027429c82fc25ba5f31e05745891f6bb5e"
    )
    shape = {"n_informative": 8, "n_duplicates": 6, "n_noise": 26, "n_traps": 0}
    assert _frame_digest(make_synthetic(n_rows=2000, seed=7, **shape).frame) == (
        "60e85a48c8fb076e1a73c1ecab35cbde18e8290d2189f749dbe73c81856b5add"
    )
    assert make_synthetic(n_rows=500, seed=3).frame.equals(
        make_synthetic(n_rows=500, seed=3, concept_seed=None).frame
    )


def _transfer_auc(fit: SyntheticData, score: SyntheticData, column: str) -> float:
    """AUC on ``score``'s rows of a target encoding of categorical ``column`` fitted on ``fit``."""
    prior = fit.frame["label"].mean()
    agg = fit.frame.groupby(column)["label"].agg(["sum", "count"])
    encoding = (agg["sum"] + 10 * prior) / (agg["count"] + 10)
    values = score.frame[column].map(encoding).fillna(prior).to_numpy()
    return roc_auc_score(score.frame["label"].to_numpy(), values)


def test_concept_seed_gives_new_rows_of_one_concept() -> None:
    first = make_synthetic(n_rows=6000, seed=1, concept_seed=5)
    second = make_synthetic(n_rows=4000, seed=2, concept_seed=5)
    other = make_synthetic(n_rows=4000, seed=2, concept_seed=6)
    assert first.informative == second.informative and first.duplicates == second.duplicates
    assert first.kinds == second.kinds
    categorical = [n for n in first.informative if first.kinds[n] == "categorical"]
    assert categorical, "the default mix has informative categoricals"
    column = categorical[0]
    # Fresh rows, not the same ones again...
    assert not first.frame[column].iloc[:4000].equals(second.frame[column])
    # ...but the same value names and the same effects: a fit on one shard transfers.
    assert set(second.frame[column]) <= set(first.frame[column])
    assert _transfer_auc(first, second, column) > 0.58
    # A different concept seed is a different problem: the values' names differ
    # (so the encoding finds nothing) unless the column names collide by chance.
    if column in other.frame and other.kinds[column] == "categorical":
        assert _transfer_auc(first, other, column) < 0.56
