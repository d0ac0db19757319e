"""The results page in a real headless browser (Debian's chromium, which ``.ci/run`` installs).

A real gunicorn bridge serves ``/runs`` from a state dir holding a few recorded runs; chromium
loads it, takes a screenshot and dumps the DOM it rendered. The rows and verdicts must be there,
and a recipe named like a ``<script>`` must be text, never an element that ran.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ccci_bridge.dedupe import Store
from ccci_bridge.records import Records
from tests.bridge.serve import Served, gunicorn_bridge
from tests.bridge.stub import upstream_stub
from tests.bridge.test_pages import HOSTILE, seed

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: .ci/run installs Debian's chromium"
    return found


def _browse(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # root in CI; the page is ours, on loopback
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            *flags,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )


class Dom(HTMLParser):
    """The rendered DOM's rows (cells' text), scripts and all text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.scripts = 0
        self.text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open rows and cells; count scripts."""
        if tag == "tr" and ("class", "run") in attrs:
            self.rows.append([])
        elif tag == "td" and self.rows:
            self._cell = []
        self.scripts += tag == "script"

    def handle_endtag(self, tag: str) -> None:
        """Close a cell into its row."""
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        """Keep the text, and the current cell's."""
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A gunicorn bridge whose store holds the runs of ``test_pages.seed``."""
    state = tmp_path / "state"
    seed(Records(Store(state)))
    with (
        upstream_stub() as upstream,
        # No poller: the pending run would time out (its record is old) and change under the test.
        gunicorn_bridge(
            upstream.url, state, tmp_path / "access.log", CCCI_POLL_INTERVAL_S="0"
        ) as bridge,
    ):
        yield bridge


def test_the_runs_page_renders_rows_and_verdicts_and_escapes_names(
    served: Served, tmp_path: Path
) -> None:
    """Screenshot and DOM of /runs: six runs newest first, verdicts, the script tag as text."""
    shot = tmp_path / "runs.png"
    _browse(f"{served.url}/runs", f"--screenshot={shot}")
    dom = Dom()
    dom.feed(_browse(f"{served.url}/runs", "--dump-dom").stdout)

    assert shot.read_bytes().startswith(PNG_MAGIC)
    assert 0 == dom.scripts  # the hostile recipe and detail did not become elements
    recipes = [row[1] for row in dom.rows]
    assert [HOSTILE, "nextcloud", "traefik", "traefik", "keycloak", "keycloak"] == recipes
    verdicts = [row[5].split(" ")[0] for row in dom.rows]
    assert ["FAIL", "cancelled", "PENDING", "PASS", "FAIL", "PASS"] == verdicts
    assert "upgrade — not ready: exit 127" in dom.rows[4][5]
    assert ("c/keycloak#5", "quick") == (dom.rows[4][2], dom.rows[4][3])
    assert ["#6", "#5", "#4", "#3", "#2", "#1"] == [row[7] for row in dom.rows]


def test_the_filtered_page_in_the_browser(served: Served) -> None:
    """``?recipe=traefik`` shows only its runs."""
    dom = Dom()
    dom.feed(_browse(f"{served.url}/runs?recipe=traefik", "--dump-dom").stdout)
    assert [["traefik", "latest"], ["traefik", "latest"]] == [row[1:3] for row in dom.rows]
