"""The lanes a run takes, named once: the plugin runs one, and the agent's leases record it.

    cold    a fresh app, its full lifecycle and a teardown that deletes everything: the verdict
    quick   the data-warm canonical upgraded in place to the PR head, its known-good restored after
    sweep   reserved for the unattended upgrades of a later issue (a lease may name it already)

Not to be confused with an app's kind (:data:`ccci_core.names.AppKind`: canonical or cold).
"""

from __future__ import annotations

from typing import Literal

RunLane = Literal["cold", "quick", "sweep"]
