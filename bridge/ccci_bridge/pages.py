"""The read-only results pages: ``/runs`` (HTML), ``/runs.json`` and ``/badge/<recipe>.svg``.

Server-rendered from the build records with Flask's Jinja templates (``templates/``), which
escape every value: a recipe, user or detail comes from a forge or a chat and is shown as text.
Nothing on these pages is secret: records hold no tokens, only who asked, what ran and how it
ended.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request

from ccci_core.errors import InvalidName
from ccci_core.names import validate_recipe

from .errors import Rejected
from .records import BuildRecord, Records
from .verdicts import duration, problem

bp = Blueprint("pages", __name__)
LIMIT = 100  # runs a page shows
BADGE_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "error": "#ef6c00"}
BADGE_MAX_AGE_S = 60


def _records() -> Records:
    records: Records = current_app.extensions["ccci_bridge"].records
    return records


def _valid(value: str) -> str:
    try:
        return validate_recipe(value)
    except InvalidName as exc:
        raise Rejected(400, f"{value[:60]!r} is not a recipe name ({exc.reason})") from exc


def _recipe(value: str | None) -> str | None:
    return _valid(value) if value else None


def row(record: BuildRecord) -> dict[str, Any]:
    """Return what the pages show of one build."""
    outcome = record.outcome
    return {
        "build": record.number,
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.created)),
        "recipe": record.recipe,
        "pr": record.pr,
        "repo": record.repo,
        "lane": record.lane,
        "ran": outcome.lane if outcome is not None and outcome.lane else record.lane,
        "user": record.user,
        "verdict": record.verdict or "pending",
        "cancelled": outcome is not None and outcome.status == "killed",
        "seconds": outcome.seconds if outcome is not None else None,
        "duration": duration(outcome.seconds) if outcome is not None and outcome.seconds else "",
        "problem": (
            problem(outcome, lambda text: text)
            if outcome is not None and outcome.verdict != "pass"
            else ""
        ),
        "canonical": outcome.canonical if outcome is not None else "",
        "link": record.link,
    }


@bp.get("/runs")
def runs() -> str:
    """Show the recent runs, newest first, of every recipe or of ``?recipe=``."""
    recipe = _recipe(request.args.get("recipe"))
    rows = [row(record) for record in _records().recent(recipe, LIMIT)]
    return render_template("runs.html", rows=rows, recipe=recipe)


@bp.get("/runs.json")
def runs_json() -> Response:
    """Answer the recent runs as JSON, newest first (``?recipe=`` filters)."""
    recipe = _recipe(request.args.get("recipe"))
    return jsonify(recipe=recipe, runs=[row(record) for record in _records().recent(recipe, LIMIT)])


@bp.get("/badge/<name>.svg")
def badge(name: str) -> Response:
    """Answer a badge of ``name``'s latest cold verdict on its latest release."""
    latest = _records().latest_cold(_valid(name))
    verdict = latest.verdict if latest is not None and latest.verdict else "unknown"
    label, value = "cc-ci cold", verdict
    left, right = 6 * len(label) + 12, 6 * len(value) + 12
    svg = render_template(
        "badge.svg",
        label=label,
        value=value,
        left=left,
        right=right,
        colour=BADGE_COLOURS.get(verdict, "#757575"),
    )
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = f"max-age={BADGE_MAX_AGE_S}"
    return response


def init_app(app: Flask) -> None:
    """Register the pages."""
    app.register_blueprint(bp)
