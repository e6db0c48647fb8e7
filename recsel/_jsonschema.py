"""Compatibility alias: this module moved to ``recsel.contract`` (issue 17).

The alias IS that module (one object in ``sys.modules``), so imports and monkeypatches
of the old name keep working while other branches still use it. Import ``recsel.contract``
in new code; this file goes once nothing imports the old name.
"""

import sys

import recsel.contract as _moved

sys.modules[__name__] = _moved
