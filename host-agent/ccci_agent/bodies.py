"""The request bodies the agent accepts, and :func:`read`, the one way a route reads one.

A body is JSON sent with ``Content-Type: application/json`` (else 415) and smaller than
:data:`MAX_BODY` (else 413, read no further). Each route's body is a strict pydantic model that
refuses unknown fields; a body that does not validate is ``BadInput`` (400) naming the field.
Names inside a body are checked by ``ccci_core.names`` where they are used.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from ccci_core.errors import BadInput
from ccci_core.lanes import RunLane

from .canonical import DeployState, VolumeState
from .infra import OUTCOMES, STEPS
from .leases import DEFAULT_TTL, MAX_TTL

MAX_BODY = 256 * 1024  # the largest body we need is a prune list of ~3000 recipe names
JSON = "application/json"


class Body(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PromoteBody(Body):
    """Promote: the canonical's domain and the version/commit its volumes hold."""

    domain: str = Field(max_length=253)
    version: str = Field(max_length=200)
    commit: str = Field(max_length=64)
    seed: str | None = Field(default=None, max_length=64)  # the token of the seeded deploy


class SeedBody(Body):
    """Start a re-seed: the version the green cold run is about to deploy on the canonical."""

    version: str = Field(max_length=200)


class MarkBody(Body):
    """Record a canonical's deploy status and whether its volume is clean."""

    status: DeployState | None = None
    volume: VolumeState | None = None


class PruneBody(Body):
    """The recipes that stay enrolled; every other canonical is pruned."""

    enrolled: list[str] = Field(max_length=3_000)  # 3000 names of 63 characters fit MAX_BODY


class AlertBody(Body):
    """An alert to raise (deduplicated by ``key``)."""

    kind: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    app: str | None = Field(default=None, max_length=63)
    key: str = Field(min_length=1, max_length=500)
    message: str = Field(min_length=1, max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict)


class AckBody(Body):
    """Acknowledge an alert only if the active one is the occurrence raised at ``ts``."""

    ts: str = Field(min_length=1, max_length=64)


class LeaseBody(Body):
    """Ask for a run lease."""

    recipe: str = Field(max_length=63)
    lane: RunLane
    realm: str | None = Field(default=None, max_length=80)
    ttl: int = Field(default=DEFAULT_TTL, ge=10, le=MAX_TTL)
    canonical: bool = False  # also lock the recipe's canonical (quick runs, promoting runs)
    run_hex: str | None = Field(default=None, pattern=r"^[0-9a-f]{6}$")  # names its objects


VERSION = r"^[0-9A-Za-z.+_-]{1,200}$"  # checked as a Version where it is used
TOKEN = r"^[0-9a-f]{32}$"  # noqa: S105 - the pattern of a reconcile token, not a password


class BeginBody(Body):
    """Start a reconcile of an infra app: from what runs (None: nothing) to the target."""

    current: str | None = Field(default=None, pattern=VERSION)
    target: str = Field(pattern=VERSION)
    guard_realms: bool = False  # keycloak: no run with a realm may be live, none may start


class StepBody(Body):
    """The step a reconcile is about to take (and whether a snapshot now protects the data)."""

    token: str = Field(pattern=TOKEN)
    step: Literal[STEPS]  # type: ignore[valid-type]
    snapshot: bool | None = None


class InfraTokenBody(Body):
    """A reconcile's token (snapshot and restore of the infra app's volumes)."""

    token: str = Field(pattern=TOKEN)
    stack: str | None = Field(default=None, max_length=63)


class EndBody(Body):
    """End a reconcile: its outcome, what runs and the last-good now."""

    token: str = Field(pattern=TOKEN)
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    running: str | None = Field(default=None, pattern=VERSION)
    last_good: str | None = Field(default=None, pattern=VERSION)
    detail: str = Field(default="", max_length=2000)


class NoteBody(Body):
    """A release note that asks for a manual migration."""

    version: str = Field(pattern=VERSION)
    path: str = Field(max_length=300)
    text: str = Field(max_length=20_000)


class HoldBody(Body):
    """A held upgrade: the target, the bump, the gate's reasons and how to apply it by hand."""

    current: str = Field(pattern=VERSION)
    target: str = Field(pattern=VERSION)
    bump: str = Field(max_length=20)
    reasons: list[str] = Field(max_length=50)
    notes: list[NoteBody] = Field(default_factory=list, max_length=50)
    command: str = Field(max_length=300)


class ObservedBody(Body):
    """What a no-op reconcile found running and healthy."""

    running: str | None = Field(default=None, pattern=VERSION)
    last_good: str | None = Field(default=None, pattern=VERSION)


class SweepBody(Body):
    """A sweep's summary, recorded as it is (it is bounded by MAX_BODY)."""

    summary: dict[str, Any]


M = TypeVar("M", bound=Body)


def read_optional(model: type[M]) -> M | None:
    """Return the request's body as ``model``, or None when the body is empty."""
    return _read(model, optional=True)


def read(model: type[M]) -> M:
    """Return the request's body as ``model``; an empty body is refused like any other."""
    body = _read(model, optional=False)
    assert body is not None  # noqa: S101 - not optional
    return body


def _read(model: type[M], *, optional: bool) -> M | None:
    # werkzeug refuses a Content-Length over MAX_BODY unread (413) and stops reading a chunked
    # body at MAX_BODY bytes; a body that reaches the limit is refused here.
    raw = request.get_data(cache=True)
    if len(raw) >= MAX_BODY:
        raise RequestEntityTooLarge()
    if optional and not raw.strip():
        return None
    if request.mimetype != JSON:
        raise UnsupportedMediaType(
            f"a request body must be JSON with Content-Type: {JSON}"
            f" (got {request.content_type or 'none'})"
        )
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadInput(f"invalid request body: {where}: {first['msg']}") from exc
