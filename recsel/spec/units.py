"""Quantities with units in user parameters: latencies (``3ms``, ``50%``) and sizes (``2GiB``).

``recsel.params`` declares which parameters take them; every shell parses them here.

Example:
    >>> parse_latency_ms("500us"), parse_memory_bytes("2GB")
    (0.5, 2000000000.0)
"""

from __future__ import annotations

import argparse
import re
from typing import NamedTuple

_LATENCY_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_MEMORY_UNITS = {
    "b": 1,
    # k, M, G, T alone are decimal and Ki, Mi, Gi, Ti binary, as Kubernetes and Vertex
    # machine specs write them.
    "k": 1e3,
    "m": 1e6,
    "g": 1e9,
    "t": 1e12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def _quantity(
    text: str, units: dict[str, float], what: str, default_unit: str, example: str
) -> float:
    match = re.fullmatch(r"\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ]*)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{what} {text!r} is not a number with a unit (e.g. {example})."
        )
    value, unit = float(match.group(1)), (match.group(2) or default_unit).lower()
    if unit not in units:
        raise argparse.ArgumentTypeError(
            f"{what} {text!r} has unknown unit {match.group(2)!r}; use one of {', '.join(units)}."
        )
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{what} must be positive, got {text!r}.")
    return value * units[unit]


def parse_latency_ms(text: str) -> float:
    """Parses a latency with a unit into milliseconds (bare numbers are milliseconds).

    Args:
        text: ``3ms``, ``500us``, ``0.01s`` or ``2``.

    Returns:
        Milliseconds.

    Raises:
        argparse.ArgumentTypeError: Not a positive number with a known unit.

    Example:
        >>> parse_latency_ms("500us")
        0.5
    """
    return _quantity(text, _LATENCY_UNITS, "Latency budget", "ms", "3ms")


class LatencyBudget(NamedTuple):
    """A parsed ``--latency-budget``: milliseconds, or a share of the full model's latency."""

    ms: float | None = None
    fraction: float | None = None


def parse_latency_budget(text: str) -> LatencyBudget:
    """Parses a time (``3ms``) or a share of the full model's latency (``50%``).

    Args:
        text: The flag's value.

    Returns:
        A ``LatencyBudget`` with one of its fields set.

    Raises:
        argparse.ArgumentTypeError: A bad time, or a percentage outside (0, 100].

    Example:
        >>> parse_latency_budget("50%")
        LatencyBudget(ms=None, fraction=0.5)
    """
    if text.strip().endswith("%"):
        try:
            percent = float(text.strip()[:-1])
        except ValueError:
            percent = float("nan")
        if not 0 < percent <= 100:
            raise argparse.ArgumentTypeError(
                f"Latency budget {text!r} must be a percentage in (0, 100] of the full model's latency."
            )
        return LatencyBudget(fraction=percent / 100)
    return LatencyBudget(ms=parse_latency_ms(text))


def parse_memory_bytes(text: str) -> float:
    """Parses a size into bytes (bare numbers are bytes).

    Args:
        text: ``2GB``, ``512MiB``, ``2G`` (decimal), ``2Gi`` (binary) or ``1000``.

    Returns:
        Bytes.

    Raises:
        argparse.ArgumentTypeError: Not a positive number with a known unit.

    Example:
        >>> parse_memory_bytes("2GB")
        2000000000.0
    """
    return _quantity(text, _MEMORY_UNITS, "Memory budget", "b", "2GB")
