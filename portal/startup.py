"""What a web process does once it has started: its long-lived objects out of the collector's way.

Django's settings, apps, models, URLconf and views live as long as the process. Left to the
garbage collector they are walked again and again by its full collections, whose cost lands on
whichever request happens to trigger one, most often those that allocate the most (the ACS
token endpoint lost a tenth of its throughput to them). Frozen once loaded, they are never
walked again; what requests allocate is collected as before.
"""

from __future__ import annotations

import gc

from django.urls import get_resolver


def settle() -> None:
    """Load every view (the URLconf imports them), then freeze all that is alive."""
    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and its views
    gc.collect()
    gc.freeze()
