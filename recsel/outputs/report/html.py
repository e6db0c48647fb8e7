"""HTML building blocks of ``recsel.outputs.report.page``: escaping, number formatting, tables, page.

Every piece of text that reaches the page goes through ``esc``; only figure URIs
(base64 that we produced ourselves) and fixed markup are inserted unescaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #1f77b4;padding-bottom:.2em}
section{margin:2em 0;padding-top:.5em;border-top:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f2f5f9} td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.8em 0}
p.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em}
"""


def esc(value: Any) -> str:
    """HTML-escapes ``str(value)``, quotes included (safe in text and attributes)."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, spec: str = ".4f") -> str:
    """Formats a number with ``spec``; None, NaN and ±inf become an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def table(headers: list[str], rows: Iterable[list[Any]], numeric: Iterable[int] = ()) -> str:
    """A ``<table>``; columns whose index is in ``numeric`` are right-aligned."""
    numeric = set(numeric)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def img(uri: str, alt: str) -> str:
    """An ``<img>`` of a ``data:`` URI produced by ``recsel.outputs.report.figures``."""
    return f'<img src="{uri}" alt="{esc(alt)}">'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def para(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def section(section_id: str, heading: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{esc(heading)}</h2>{body}</section>'


def flatten(data: Any, prefix: str = "") -> list[list[Any]]:
    """Nested dicts become ``[dotted.key, value]`` rows, so any coefficient layout renders."""
    if isinstance(data, dict):
        rows: list[list[Any]] = []
        for key, value in data.items():
            rows.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    return [[prefix, fmt(data, ".6g")]]


def page(title: str, sections: Iterable[str]) -> str:
    """The complete document: inline CSS, no scripts, no external links."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{esc(title)}</h1>{''.join(sections)}</body></html>\n"
    )
