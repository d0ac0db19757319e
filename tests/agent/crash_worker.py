"""Run one promote or restore in its own process, for SIGKILL injection.

Usage: ``python -m tests.agent.crash_worker STATE_DIR RECIPE DOMAIN promote VERSION|restore``.
A promote of an existing canonical seeds first, as a green cold run does (the seed's write is one
more commit point the kills may hit).
It prints ``ready`` once imported, waits for a line on stdin, runs, then prints ``done``.
With ``CCCI_CRASH_AT=<commit point>`` it SIGKILLs itself the moment warmsnap reaches that point
(see ``Warmsnap.checkpoint``), so every commit point is hit exactly, by a real kill.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from ccci_agent.canonical import Canonicals
from ccci_agent.errors import EngineError
from ccci_agent.store import StateDir
from ccci_core.docker_engine import SdkDocker

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def main(argv: list[str]) -> int:
    """Wait for the go line, then run the operation."""
    state_dir, recipe, domain, op, *rest = argv
    canonicals = Canonicals(
        StateDir(Path(state_dir)), SdkDocker.from_env(EngineError), domain.split(".", 1)[1]
    )
    crash_at = os.environ.get("CCCI_CRASH_AT")

    def checkpoint(point: str) -> None:
        if point == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    canonicals.warmsnap.checkpoint = checkpoint
    print("ready", flush=True)
    sys.stdin.readline()
    if op == "promote":
        # As a green cold run does: seed (the canonical exists), then promote with the token.
        known = canonicals.state.canonical(recipe).exists()
        seed = canonicals.seed(recipe, rest[0])["seed"] if known else None
        canonicals.promote(recipe, domain, rest[0], COMMIT, seed)
    else:
        canonicals.restore(recipe)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
