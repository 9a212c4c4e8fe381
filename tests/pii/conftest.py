"""Hypothesis settings for the property tests of the PII detector.

The ``ci`` profile (the default) has no per-example deadline: timing belongs in
``make bench``, not in tests on shared cores. Example counts stay modest so ``make test`` stays
fast; ``HYPOTHESIS_PROFILE=thorough`` runs 2,000 examples per property.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
