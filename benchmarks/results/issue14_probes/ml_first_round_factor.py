"""Runs ml_budget_probe.py with the first budget round needing FACTOR x its minimum steps
(monkeypatched schedule._need), before the factor was built in:

    PYTHONPATH=. python benchmarks/results/issue14_probes/ml_first_round_factor.py 4 OUT.json 1 2 0
"""

import runpy
import sys

import recsel  # noqa
import recsel.selection.schedule as sch

FACTOR = float(sys.argv.pop(1))
orig = sch._need


def need(features, chunks, warmup, config, per_event, event_steps=sch.MIN_STEPS_PER_FEATURE_EVENT):
    n = orig(features, chunks, warmup, config, per_event, event_steps)
    return int(n * FACTOR) if (warmup > 0 and config.has_budget) else n


sch._need = need
sys.argv = ["probe"] + sys.argv[1:]
runpy.run_path("benchmarks/results/issue14_probes/ml_budget_probe.py", run_name="__main__")
