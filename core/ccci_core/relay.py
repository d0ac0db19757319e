"""``cc-ci relay``: deliver the active alerts to a Matrix room and/or a webhook, then acknowledge.

An unprivileged client of the agent's socket, like :mod:`ccci_core.operator`. One pass lists the
active alerts (oldest first) and, for each, renders one :class:`~ccci_core.alert_message.Message`,
hands it to every configured :class:`Target` in turn and, only once every target took it, asks
the agent to acknowledge that occurrence (``POST /v1/alerts/ID/ack {"ts"}``: it moves to
``alerts/seen/``). So delivery is **at least once**: whatever fails leaves the alert active for the
next pass, and a lost answer (the post arrived, its answer did not) is sent again — Matrix drops
that retry by its transaction id (:attr:`Alert.occurrence`); a webhook may see it twice.

An alert a target refuses (a 400, a 413, a 500) fails alone and the pass goes on. A failure that
would fail every alert the same way (:attr:`DeliveryError.target_wide`: unreachable, timeout,
rate limited, a bad token or room, a redirect, a proxy's 502 to 504) stops the pass: a dead
endpoint is not hammered, and the alerts after it are left untried for the next pass.

    CcciError
    └── DeliveryError   a target did not take an alert (``target``, ``target_wide``)

The adapters (:mod:`ccci_core.matrix`, :mod:`ccci_core.webhook`) need ``requests``; they are
imported only when a target is configured, so every install builds the ``cc-ci`` parser.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .agent_client import AgentClient, AgentClientError, AgentUnreachable
from .alert_message import Alert, Message, render
from .errors import BadInput, CcciError
from .settings import RelaySettings, load

AGENT_TIMEOUT = 60.0  # listing and acknowledging alerts is quick; a hung agent is not waited for
DELIVERY_TIMEOUT = 10.0  # seconds for one post to a target
# HTTP answers that every alert would get alike: stop the pass instead of trying the next alert.
_TARGET_WIDE = frozenset({401, 403, 404, 405, 407, 408, 421, 429, 502, 503, 504})


class DeliveryError(CcciError):
    """A target did not take an alert; it stays active and is tried again by the next pass."""

    def __init__(self, target: str, reason: str, *, target_wide: bool) -> None:
        super().__init__(f"{target}: {reason}", target=target, target_wide=target_wide)
        self.target = target
        self.reason = reason
        self.target_wide = target_wide


def target_wide(status: int) -> bool:
    """Return whether an HTTP ``status`` would answer every alert alike (a redirect included)."""
    return 300 <= status < 400 or status in _TARGET_WIDE


class Target(Protocol):
    """Somewhere alerts go."""

    @property
    def name(self) -> str:
        """Return how lines name this target (no secret in it)."""
        ...

    def deliver(self, alert: Alert, message: Message) -> None:
        """Send ``message`` (rendered from ``alert``) once; raise DeliveryError if not taken."""
        ...


class AlertSource(Protocol):
    """The agent's alerts: the active ones, and acknowledging one occurrence."""

    def active(self) -> list[Alert]:
        """Return the active alerts, oldest first."""
        ...

    def ack(self, alert: Alert) -> str:
        """Acknowledge this occurrence of ``alert``; return what happened, in a few words."""
        ...


class AgentAlerts:
    """The :class:`AlertSource` on the agent's socket (``GET /v1/alerts``, ``POST .../ack``)."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    def active(self) -> list[Alert]:
        """Return the active alerts, oldest first."""
        answer = self.client.get("/v1/alerts")
        listed = answer.get("alerts") if isinstance(answer, dict) else None
        if not isinstance(listed, list):
            raise BadInput("the agent's GET /v1/alerts answered no list of alerts")
        return [Alert.from_json(item) for item in listed]

    def ack(self, alert: Alert) -> str:
        """Acknowledge ``alert`` if the active one is still the occurrence that was delivered."""
        try:
            self.client.post(f"/v1/alerts/{alert.id}/ack", {"ts": alert.ts})
        except AgentClientError as exc:
            error = exc.body.get("error") if isinstance(exc.body, dict) else None
            if error == "NotFound":
                return "already acknowledged"
            if error == "Conflict":  # acknowledged and raised again since: the new one goes next
                return "raised again meanwhile, the new occurrence goes next pass"
            raise
        return "acknowledged"


def _label(alert: Alert) -> str:
    return f"{alert.id} {alert.kind} {alert.app or '-'}"


def relay(
    source: AlertSource,
    targets: Sequence[Target],
    *,
    host: str = "",
    out: Callable[[str], None] = print,
) -> int:
    """Deliver every active alert to every target, acknowledging each delivered one; exit code."""
    if not targets:  # acknowledging with nowhere to deliver would lose every alert
        raise BadInput("relay: no target to deliver to")
    alerts = source.active()
    delivered = failed = 0
    code = 0
    for index, alert in enumerate(alerts):
        message = render(alert, host)
        try:
            for target in targets:
                target.deliver(alert, message)
        except DeliveryError as exc:
            failed += 1
            out(f"failed     {_label(alert)}: {exc} (stays active)")
            if exc.target_wide:
                for rest in alerts[index + 1 :]:
                    out(f"not tried  {_label(rest)}: {exc.target} failed (stays active)")
                break
            continue
        names = ", ".join(t.name for t in targets)
        try:
            outcome = source.ack(alert)
        except AgentClientError as exc:
            failed += 1  # it stays active
            out(f"delivered  {_label(alert)} → {names}; not acknowledged, sent again next: {exc}")
            code = 2 if isinstance(exc, AgentUnreachable) else 1
            for rest in alerts[index + 1 :]:
                out(f"not tried  {_label(rest)}: the agent did not acknowledge (stays active)")
            break
        delivered += 1
        out(f"delivered  {_label(alert)} → {names}; {outcome}")
    left = len(alerts) - delivered - failed
    if not alerts:
        out("no active alerts")
    else:
        out(f"relay: {delivered} delivered, {failed} failed, {left} not tried")
    return code or (1 if failed or left else 0)


def preview(
    source: AlertSource,
    targets: Sequence[Target],
    *,
    host: str = "",
    out: Callable[[str], None] = print,
) -> int:
    """Print what :func:`relay` would send; send and acknowledge nothing."""
    alerts = source.active()
    names = ", ".join(t.name for t in targets) or "no target configured"
    for alert in alerts:
        message = render(alert, host)
        out(f"would send {_label(alert)} → {names} (occurrence {alert.occurrence})")
        out("\n".join(f"    {line}" for line in message.text.splitlines()))
        out(f"    html: {message.html}")
    out(f"relay --dry-run: {len(alerts)} active alert(s); nothing sent or acknowledged")
    return 0


def build_targets(settings: RelaySettings) -> list[Target]:
    """Return the targets ``settings`` configure: the Matrix room, then the webhook."""
    if not settings.matrix_homeserver and not settings.alert_webhook_url.get_secret_value():
        return []
    try:
        from .matrix import MatrixRoom
        from .webhook import Webhook
    except ImportError as exc:  # a bare core install: every extra brings requests
        raise BadInput(f"relay needs requests (pip install 'cc-ci[agent]'): {exc}") from exc
    targets: list[Target] = []
    if settings.matrix_homeserver:
        token = settings.matrix_token.get_secret_value()
        room = MatrixRoom(settings.matrix_homeserver, settings.matrix_room, token)
        targets.append(room)
    if settings.alert_webhook_url.get_secret_value():
        targets.append(Webhook(settings.alert_webhook_url.get_secret_value()))
    return targets


def _relay(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.socket is not None:
        overrides["agent_socket"] = args.socket
    settings = load(RelaySettings, **overrides)
    targets = build_targets(settings)
    if not targets and not args.dry_run:
        print(
            "relay: no target configured (CCCI_MATRIX_HOMESERVER, CCCI_MATRIX_ROOM and "
            "CCCI_MATRIX_TOKEN, or CCCI_ALERT_WEBHOOK_URL): nothing sent, alerts stay active"
        )
        return 0
    source = AgentAlerts(AgentClient(settings.agent_socket, timeout=AGENT_TIMEOUT))
    run = preview if args.dry_run else relay
    return run(source, targets, host=socket.gethostname())


def register(sub: Any) -> None:
    """Add ``relay``."""
    parser = sub.add_parser(
        "relay",
        help="deliver the active alerts to Matrix and/or a webhook, then acknowledge them",
        description="At least once: an alert is acknowledged only after every configured target "
        "took it. Exit 0 all delivered (or nothing to do, or no target configured), 1 some "
        "failed (they stay active for the next pass), 2 bad configuration or no agent.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent, only")
    parser.add_argument("--socket", type=Path, help="agent socket (default: $CCCI_AGENT_SOCKET)")
    parser.set_defaults(handler=_relay)
