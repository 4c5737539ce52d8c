"""The models' change history (django-simple-history), with one fix for speed."""

from __future__ import annotations

import functools

from simple_history.manager import HistoryManager
from simple_history.models import HistoricalRecords


class History(HistoryManager):
    """simple-history builds a new manager class (`from_queryset`, which walks the queryset's
    members with `inspect`) on every `instance.history` access, once per saved row: about a
    tenth of a lead's creation time through the API. One class per queryset class is enough."""

    @classmethod
    @functools.cache
    def from_queryset(cls, queryset_class, class_name=None):
        return super().from_queryset(queryset_class, class_name)


def tracked_history(**options) -> HistoricalRecords:
    """`HistoricalRecords(**options)` with the cached manager class."""
    return HistoricalRecords(history_manager=History, **options)
