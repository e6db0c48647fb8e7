"""Train/validation splits of a frame or of row indices: random, or by a time column."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from recsel.inputs.table_io import (
    MissingColumnError,
)

__all__ = ["split_frame", "split_rows"]


def split_frame(
    frame: pd.DataFrame,
    validation_fraction: float = 0.2,
    seed: int = 0,
    time_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Splits rows into (train, validation), randomly or by time.

    Args:
        frame: The table.
        validation_fraction: Share of rows for validation, in (0, 1).
        seed: Seed of the random split.
        time_column: If given, the latest rows by this column are validation (ties at the
            cut are split by row order), so the model is validated on the future.

    Returns:
        ``(train, validation)`` copies, each in the original row order with its original index.

    Example:
        >>> train, valid = split_frame(frame, 0.1, time_column="timestamp")
    """
    times = None
    if time_column is not None:
        if time_column not in frame.columns:
            raise MissingColumnError(
                f"time_column {time_column!r} not found; columns: {list(frame.columns)}."
            )
        if frame[time_column].isna().any():
            raise ValueError(
                f"time_column {time_column!r} has missing values; fill or drop those rows."
            )
        times = time_values(frame[time_column], time_column)
    train_rows, valid_rows = split_rows(len(frame), validation_fraction, seed, times)
    return frame.iloc[train_rows].copy(), frame.iloc[valid_rows].copy()


def time_values(column: pd.Series, name: str) -> np.ndarray:
    """Sortable times: numbers and datetimes as they are, text parsed as either. Sorting
    the text itself put '12/04/1997' after '01/05/1998' (US dates sort by month first)."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column.to_numpy()
    try:
        return pd.to_numeric(column, errors="raise").to_numpy()
    except (ValueError, TypeError):
        pass
    try:
        # One format for the column, inferred from its first value: per-value parsing
        # took 41 s for a million US dates, against 2 s (pandas 2 infers it by default).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pandas 2: the argument is obsolete
            return pd.to_datetime(column, errors="raise", infer_datetime_format=True).to_numpy()
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(
            f"time_column {name!r} holds text that is neither a number nor a date or time "
            f"({err}); give it as numbers (e.g. Unix seconds) or dates such as 2024-05-31."
        ) from err


def split_rows(
    n: int, validation_fraction: float, seed: int = 0, times: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The row positions of ``split_frame``'s (train, validation), each in ascending order.

    Args:
        n: Rows of the table.
        validation_fraction: Share of rows for validation, in (0, 1).
        seed: Seed of the random split.
        times: If given, one time value per row: the latest rows are validation.

    Example:
        >>> train_rows, valid_rows = split_rows(10, 0.2, seed=0)
        >>> len(valid_rows)
        2
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
    if n < 2:
        raise ValueError(f"Cannot split {n} row(s) into training and validation; need at least 2.")
    n_valid = min(max(1, round(n * validation_fraction)), n - 1)
    if times is None:
        order = np.random.default_rng(seed).permutation(n)
    else:
        order = np.argsort(times, kind="stable")[::-1]
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])
