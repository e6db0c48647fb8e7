"""``report.html``: one self-contained page per selection (figures inlined)."""

from recsel.outputs.report.page import render_report, write_report

__all__ = ["render_report", "write_report"]
