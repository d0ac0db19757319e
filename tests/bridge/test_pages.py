"""The results pages from recorded builds: ``/runs``, ``/runs.json``, ``/badge/<recipe>.svg``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import flask
import flask.testing
import pytest

from ccci_bridge.records import BuildRecord, Outcome, Records

HOSTILE = '<script>alert("x")</script>'


def _add(
    records: Records, number: int, recipe: str, outcome: Outcome | None, **kwargs: object
) -> None:
    record = BuildRecord(
        number=number,
        created=1_765_000_000 + number * 60,
        recipe=recipe,
        lane=str(kwargs.pop("lane", "cold")),
        user=str(kwargs.pop("user", "gitea:alice")),
        link=f"https://drone.example.org/coop-cloud/cc-ci/{number}",
        **kwargs,  # type: ignore[arg-type]
    )
    records.add(record)
    if outcome is not None:
        claimed = records.claim(number, outcome)
        assert claimed is not None
        assert records.delivered(claimed)


def seed(records: Records) -> None:
    """Runs of every kind: PR pass, quick fail, cold on latest, pending, cancelled, hostile names.

    The last one's recipe could not come through the trigger (it validates names); the page must
    escape it all the same.
    """
    passed = Outcome("pass", "success", seconds=252)
    _add(records, 1, "keycloak", passed, repo="c/keycloak", pr=4)
    _add(
        records,
        2,
        "keycloak",
        Outcome(
            "fail",
            "failure",
            seconds=61,
            step="upgrade",
            detail="not ready: exit 127",
            canonical="restored to its known-good snapshot",
        ),
        lane="quick",
        repo="c/keycloak",
        pr=5,
    )
    _add(records, 3, "traefik", Outcome("pass", "success", seconds=30))
    _add(records, 4, "traefik", None, user=f"chat:{HOSTILE}")
    _add(records, 5, "nextcloud", Outcome("error", "killed", detail="the build was cancelled"))
    _add(records, 6, HOSTILE, Outcome("fail", "failure", step="tests", detail=HOSTILE))


@pytest.fixture
def seeded(app: flask.Flask) -> flask.Flask:
    """The app with the runs of :func:`seed` recorded."""
    seed(app.extensions["ccci_bridge"].records)
    return app


class Texts(HTMLParser):
    """Collect the page's text and whether any <script> element exists."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Count script elements."""
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        """Keep the text."""
        self.text.append(data)


def test_runs_json_lists_newest_first_with_verdicts(
    seeded: flask.Flask, client: flask.testing.FlaskClient
) -> None:
    """Every recorded build, newest first; pending ones say so."""
    runs = client.get("/runs.json").get_json()["runs"]
    assert [6, 5, 4, 3, 2, 1] == [run["build"] for run in runs]
    assert ["fail", "error", "pending", "pass", "fail", "pass"] == [run["verdict"] for run in runs]
    failed = runs[4]
    assert ("quick", "upgrade — not ready: exit 127", "1 min 1 s") == (
        failed["lane"],
        failed["problem"],
        failed["duration"],
    )


def test_runs_filter_by_recipe_and_refuse_a_bad_name(
    seeded: flask.Flask, client: flask.testing.FlaskClient
) -> None:
    """``?recipe=`` filters; a name that is not a recipe is a 400 with a JSON reason."""
    runs = client.get("/runs.json?recipe=traefik").get_json()["runs"]
    assert [4, 3] == [run["build"] for run in runs]
    bad = client.get("/runs?recipe=../etc")
    assert 400 == bad.status_code
    assert "is not a recipe name" in bad.get_json()["reason"]


def test_the_runs_page_escapes_what_forges_and_chats_said(
    seeded: flask.Flask, client: flask.testing.FlaskClient
) -> None:
    """A user named like a script tag is text on the page, never an element."""
    response = client.get("/runs")
    assert 200 == response.status_code
    assert response.mimetype == "text/html"
    page = Texts()
    page.feed(response.get_data(as_text=True))
    assert 0 == page.scripts
    text = "".join(page.text)
    assert f"chat:{HOSTILE}" in text
    assert f"tests — {HOSTILE}" in text
    assert "PASS" in text
    assert "FAIL" in text
    assert "cancelled" in text


@pytest.mark.parametrize(
    ("recipe", "verdict", "colour"),
    [
        ("traefik", "pass", "#2e7d32"),  # latest cold run on latest passed (the pending one is not)
        ("keycloak", "unknown", "#757575"),  # only PR runs: no verdict on latest
        ("nextcloud", "error", "#ef6c00"),
        ("never-tested", "unknown", "#757575"),
    ],
)
def test_the_badge_shows_the_latest_cold_verdict_on_latest(
    seeded: flask.Flask,
    client: flask.testing.FlaskClient,
    recipe: str,
    verdict: str,
    colour: str,
) -> None:
    """An SVG a recipe README can embed: its latest finished cold run without a PR."""
    response = client.get(f"/badge/{recipe}.svg")
    assert (200, "image/svg+xml") == (response.status_code, response.mimetype)
    svg = ET.fromstring(response.get_data())  # noqa: S314 - our own output
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    fills = [r.get("fill") for r in svg.iter("{http://www.w3.org/2000/svg}rect")]
    assert (["cc-ci cold", verdict], colour) == (texts, fills[1])
    assert client.get("/badge/Not_A_Recipe!.svg").status_code == 400


def test_the_pages_do_not_wait_for_a_writer(
    seeded: flask.Flask, client: flask.testing.FlaskClient
) -> None:
    """A webhook holding the store's write lock does not make /runs.json wait or fail."""
    with seeded.extensions["ccci_bridge"].store.transaction():
        response = client.get("/runs.json")
    assert 200 == response.status_code
    assert 6 == len(response.get_json()["runs"])
