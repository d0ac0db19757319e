"""The operator's commands (``status``, ``alerts``, ``canonical``, ``snapshot``, ``restore``).

They are unprivileged clients of the host agent's socket (root or the socket's group), so they live
beside :mod:`ccci_core.agent_client` and need nothing of the agent's own install.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .agent_client import AgentClient
from .errors import BadInput
from .names import validate_recipe
from .settings import SocketSettings, load


def _client(args: argparse.Namespace) -> AgentClient:
    socket_path = args.socket if args.socket is not None else load(SocketSettings).agent_socket
    return AgentClient(socket_path)


def _infra_line(infra: dict[str, Any]) -> str:
    """Return one line on an infra app: what runs, its last-good, a reconcile or a hold."""
    running, last_good = infra.get("version") or "not deployed", infra.get("last_good")
    text = f"INFRA  {infra.get('name', '?')} {running}"
    if last_good and last_good != infra.get("version"):
        text += f" (last-good {last_good})"
    reconcile = infra.get("reconcile")
    if reconcile:
        state = "in progress" if reconcile.get("live") else "interrupted (the next one finishes it)"
        text += f"; reconcile {reconcile.get('from')} → {reconcile.get('to')} {state}"
        text += f" at step {reconcile.get('step')}"
    held = infra.get("held")
    if held:
        text += f"; held {held.get('target')} ({held.get('bump')} bump: see cc-ci alerts)"
    last = infra.get("last")
    if last and not reconcile:
        text += f"; last {last.get('outcome')} {last.get('at', '')}".rstrip()
    return text


def human_size(n: float) -> str:
    """Return a byte count as people read it: ``512 B``, ``1.4 MB``, ``2.5 GB`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


def _age(seconds: float) -> str:
    seconds = int(seconds)
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds // span}{unit}"
    return f"{seconds}s"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def render_status(status: dict[str, Any]) -> str:
    """Return the operator's one-screen view of ``GET /v1/status``."""
    rows = [["CANONICAL", "VERSION", "STATUS", "VOLUME", "SNAPSHOT", "AGE"]]
    for c in status["canonicals"]:
        snap = c.get("snapshot") or {}
        volume = "restore-pending" if c.get("restore_pending") else c.get("volume", "?")
        rows.append(
            [
                c["recipe"],
                c.get("version", "?"),
                c.get("status", "?"),
                volume,
                human_size(snap["size"]) if snap else "-",
                _age(snap["age_seconds"]) if snap else "-",
            ]
        )
    lines = _table(rows) if len(rows) > 1 else ["CANONICALS  none"]
    for infra in status["infra"]:
        lines.append(_infra_line(infra))
    leases = status["leases"]
    now = time.time()
    lines.append(f"LEASES  {len(leases['leases'])}/{leases['max_tests']} in flight")
    for lease in leases["leases"]:
        realm = f" realm {lease['realm']}" if lease.get("realm") else ""
        expires = _age(max(0, lease["expires"] - now))
        lines.append(f"  {lease['id']}  {lease['recipe']} {lease['lane']}{realm}, {expires} left")
    lines.append(f"ALERTS  {len(status['alerts'])} active")
    lines += [
        f"  {a['id']}  {a['kind']}  {a.get('app') or '-'}  {a['message']}" for a in status["alerts"]
    ]
    disk = status["disk"]
    for key in ("/", "state_dir"):
        d = disk[key]
        if "percent" in d:
            lines.append(f"DISK  {d['path']}  {d['percent']}% used, {human_size(d['free'])} free")
    lines.append(f"SNAPSHOTS  {human_size(disk['snapshots_bytes'])} in {status['state_dir']}")
    return "\n".join(lines)


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if as_json else text)


def _status(args: argparse.Namespace) -> int:
    data = _client(args).get("/v1/status")
    _print(data, args.json, render_status(data) if not args.json else "")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "ack":
        if not args.id:
            raise BadInput("cc-ci alerts ack ID: give the alert's id")
        alert = client.post(f"/v1/alerts/{_alert_id(args.id)}/ack")
        _print(alert, args.json, f"acknowledged {alert['id']}: {alert['message']}")
        return 0
    found = client.get("/v1/alerts")["alerts"]
    lines = [
        f"{a['id']}  {a['ts']}  {a['kind']}  {a.get('app') or '-'}  {a['message']}" for a in found
    ]
    _print(found, args.json, "\n".join(lines) or "no active alerts")
    return 0


def _alert_id(value: str) -> str:
    if len(value) != 16 or any(c not in "0123456789abcdef" for c in value):
        raise BadInput(f"invalid alert id {value!r}: expected 16 lowercase hex digits")
    return value


def _canonical(args: argparse.Namespace) -> int:
    data = _client(args).get(f"/v1/canonicals/{validate_recipe(args.recipe)}")
    _print(data, args.json, json.dumps(data, indent=2, sort_keys=True))
    return 0


def _snapshot(args: argparse.Namespace) -> int:
    data = _client(args).post(f"/v1/canonicals/{validate_recipe(args.app)}/snapshot")
    snap = data["snapshot"]
    _print(data, args.json, f"{args.app}: snapshot {snap['id']} ({human_size(snap['size'])})")
    return 0


def _restore(args: argparse.Namespace) -> int:
    data = _client(args).post(f"/v1/canonicals/{validate_recipe(args.app)}/restore")
    restored = data["restored"]
    volumes = ", ".join(restored["volumes"]) or "no volumes"
    text = f"{args.app}: restored snapshot {restored['snapshot']} into {volumes}"
    _print(data, args.json, text)
    return 0


def _with_socket(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    parser.add_argument("--socket", type=Path, help="agent socket (default: $CCCI_AGENT_SOCKET)")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: Any) -> None:
    """Add ``status``, ``alerts``, ``canonical``, ``snapshot`` and ``restore``."""
    status = sub.add_parser("status", help="canonicals, infra, leases, alerts and disk at a glance")
    _with_socket(status)
    status.set_defaults(handler=_status)

    alerts = sub.add_parser("alerts", help="list active alerts; 'alerts ack ID' acknowledges one")
    alerts.add_argument("action", nargs="?", choices=["ack"], help="acknowledge an alert")
    alerts.add_argument("id", nargs="?", metavar="ID", help="the alert to acknowledge")
    _with_socket(alerts)
    alerts.set_defaults(handler=_alerts)

    canonical = sub.add_parser("canonical", help="show one canonical's registry entry")
    canonical.add_argument("recipe", metavar="RECIPE")
    _with_socket(canonical)
    canonical.set_defaults(handler=_canonical)

    for verb, handler, text in (
        ("snapshot", _snapshot, "re-take the known-good snapshot of an undeployed canonical"),
        ("restore", _restore, "restore a canonical's volumes from its known-good snapshot"),
    ):
        parser = sub.add_parser(verb, help=text)
        parser.add_argument("app", metavar="APP", help="the canonical's recipe name")
        _with_socket(parser)
        parser.set_defaults(handler=handler)
