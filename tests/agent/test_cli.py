"""The operator commands' rendering and their refusals before any socket is touched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ccci_core.cli import main
from ccci_core.operator import render_status


def test_status_table_shows_each_part() -> None:
    """One screen: canonical row, infra with last-good, leases, alerts, disk."""
    status = {
        "state_dir": "/var/lib/ci-warm",
        "canonicals": [
            {
                "recipe": "nextcloud",
                "version": "7.0.1+30.0.4",
                "status": "idle",
                "volume": "dirty",
                "restore_pending": None,
                "snapshot": {"id": "x", "size": 2_500_000_000, "age_seconds": 7200},
            }
        ],
        "infra": [{"name": "keycloak", "version": "10.1.0+26.0.1", "last_good": "10.0.0+26.0.0"}],
        "leases": {
            "max_tests": 2,
            "in_flight": True,
            "leases": [
                {
                    "id": "0123456789abcdef",
                    "recipe": "gitea",
                    "lane": "cold",
                    "realm": "gitea-0a1b2c",
                    "expires": time.time() + 300,
                }
            ],
        },
        "alerts": [
            {
                "id": "fedcba9876543210",
                "kind": "infra-held",
                "app": "keycloak",
                "message": "major bump held",
            }
        ],
        "disk": {
            "/": {"path": "/", "percent": 81.5, "free": 40_000_000_000},
            "state_dir": {"path": "/var/lib/ci-warm", "percent": 81.5, "free": 40_000_000_000},
            "snapshots_bytes": 2_500_000_000,
        },
    }
    lines = render_status(status).splitlines()

    assert ["nextcloud", "7.0.1+30.0.4", "idle", "dirty", "2.5", "GB", "2h"] == lines[1].split()
    assert "INFRA  keycloak 10.1.0+26.0.1 (last-good 10.0.0+26.0.0)" in lines
    assert "LEASES  1/2 in flight" in lines
    assert any(
        line.startswith("  0123456789abcdef  gitea cold realm gitea-0a1b2c") for line in lines
    )
    assert "  fedcba9876543210  infra-held  keycloak  major bump held" in lines
    assert "DISK  /  81.5% used, 40.0 GB free" in lines


@pytest.mark.parametrize(
    "argv",
    [
        ["canonical", "../etc"],
        ["snapshot", "UPPER"],
        ["restore", "alerts/../x"],
        ["alerts", "ack", "../../etc/passwd"],
        ["alerts", "ack"],
    ],
)
def test_bad_names_exit_2_without_a_traceback(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad names are refused in one line with exit 2 (the socket is never reached)."""
    assert 2 == main([*argv, "--socket", str(tmp_path / "none.sock")])
    err = capsys.readouterr().err
    assert 1 == len(err.splitlines())
    assert "not reachable" not in err


@pytest.mark.parametrize(
    ("argv", "env", "reason"),
    [
        (["--workers", "0"], {}, "--workers must be at least 1"),
        (["--threads", "0"], {}, "--threads must be between 1 and 256"),
        ([], {"CCCI_AGENT_THREADS": "0"}, "CCCI_AGENT_THREADS"),
        ([], {"CCCI_TAR": ""}, "CCCI_TAR"),
    ],
)
def test_bad_serve_options_exit_2_before_serving(
    argv: list[str],
    env: dict[str, str],
    reason: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad worker or thread count or an empty CCCI_TAR is one line and exit 2, nothing served."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sock = tmp_path / "agent.sock"
    assert 2 == main(["agent", "serve", "--socket", str(sock), "--state-dir", str(tmp_path), *argv])
    assert reason in capsys.readouterr().err
    assert not sock.exists()
