"""``select()``: the driver, its trainer, the schedule of selection events and the budget."""

from recsel.selection.budget import BudgetError
from recsel.selection.driver import select
from recsel.selection.schedule import ScheduleError

__all__ = ["BudgetError", "ScheduleError", "select"]
