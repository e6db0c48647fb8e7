"""Before every feature event: no copy of a kept feature, nor of an earlier pick of the event.

Private to ``recsel.selection.driver``. An exact copy of a selected feature has no marginal
value, yet a short run cannot always show it: at 10k rows with 2.5% positives (about 200
training positives), count mode picked a numeric source and its exact copy ``3x - 2`` on 2
of 5 adversarial seeds. The budget's rounds already keep copies of kept features out
(``RoundValue._copy_of``); this guard asks the same ``_redundancy.CopyFinder``, with the
same definition of a copy, at each event of any round, count mode's single round
included. It vets the candidates in the order the event will take them
(``SequentialAttention.next_event_ranking``) and makes each copy ineligible, so the event
takes the next candidate instead. It reads only the selection state and a fixed sample of
validation rows, so the order it leaves is the same on any machine and after a resume.

Example:
    >>> guard = CopyGuard(trainer.layer, sample)
    >>> trainer.before_feature_event = guard.before_event
"""

from __future__ import annotations

import pandas as pd

from recsel.model.layer import SequentialAttentionEmbedding
from recsel.selection._redundancy import CopyFinder


class CopyGuard:
    """Makes candidates that copy a selected feature (or a better-ranked pick) ineligible.

    Args:
        layer: The gated layer whose feature attention is about to fire an event.
        sample: Validation rows (the explanation's sample) on which copies are judged.
    """

    def __init__(self, layer: SequentialAttentionEmbedding, sample: pd.DataFrame):
        self.layer = layer
        self.copies = CopyFinder(sample)
        self.skipped: dict[str, str] = {}  # copy -> the feature it copies

    def before_event(self) -> None:
        """Vets the next event's picks, in its own order, until it has ``per_event``."""
        attention = self.layer.feature_attention
        names = self.layer.features.names
        kept = [names[i] for i in attention.selected_indices()]
        wanted = int(attention.per_event.numpy())
        eligible = attention.eligible.numpy().copy()
        picks: list[str] = []
        for index in attention.next_event_ranking():
            if len(picks) == wanted:
                break
            original = self.copies.first_copy(names[index], kept + picks)
            if original is None:
                picks.append(names[index])
            else:
                eligible[index] = 0.0
                self.skipped[names[index]] = original
        if (eligible != attention.eligible.numpy()).any():
            attention.set_eligible(eligible)
