"""What a selection is about, with no training in it: widths and sizes (more moves here).

``recsel.spec.widths`` holds the width and size arithmetic that the driver, the budget
and the cost model share, so none of them imports another for it (issue 17).
"""

from recsel.spec.widths import check_widths, embedding_bytes, target_width

__all__ = ["check_widths", "embedding_bytes", "target_width"]
