"""``cc-ci bridge serve`` is registered and refuses bad configuration with exit 2."""

from __future__ import annotations

import pytest

from ccci_core.cli import main


def test_serve_help_lists_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    """The subcommand exists with its two options."""
    with pytest.raises(SystemExit) as caught:
        main(["bridge", "serve", "--help"])

    out = capsys.readouterr().out
    assert 0 == caught.value.code
    assert "--host" in out
    assert "--port" in out


def test_serve_without_configuration_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing required variable is one line on stderr naming it, exit 2, no traceback."""
    for name in ("CCCI_DRONE_SERVER", "CCCI_DRONE_TOKEN", "CCCI_DRONE_REPO", "CCCI_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)

    code = main(["bridge", "serve", "--port", "1"])

    assert 2 == code
    assert capsys.readouterr().err.startswith("cc-ci: CCCI_DRONE_SERVER: Field required")
