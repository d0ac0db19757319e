"""The bridge's settings: required variables named at startup, secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccci_bridge.settings import BridgeSettings
from ccci_core.errors import ConfigError
from ccci_core.settings import load

REQUIRED = {
    "CCCI_DRONE_SERVER": "https://drone.example.org/",
    "CCCI_DRONE_TOKEN": "t",
    "CCCI_DRONE_REPO": "coop-cloud/cc-ci",
    "CCCI_WEBHOOK_SECRET": "s",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment holding only the required variables."""
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CCCI_BRIDGE_STATE_DIR", str(tmp_path))
    return monkeypatch


def test_required_variables_suffice(env: pytest.MonkeyPatch) -> None:
    """Drone and the webhook secret are enough; forges and chat stay off."""
    settings = load(BridgeSettings)

    assert "https://drone.example.org" == settings.drone_server
    assert (False, False, False) == (
        settings.gitea_enabled,
        settings.github_enabled,
        settings.chat_enabled,
    )


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_missing_required_variable_is_named(env: pytest.MonkeyPatch, variable: str) -> None:
    """Startup fails with the variable to set."""
    env.delenv(variable)

    with pytest.raises(ConfigError) as caught:
        load(BridgeSettings)

    assert variable == caught.value.variable


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CCCI_DRONE_TOKEN", ""),
        ("CCCI_WEBHOOK_SECRET", ""),
        ("CCCI_DRONE_REPO", "cc-ci"),
        ("CCCI_DRONE_SERVER", "drone.example.org"),
        ("CCCI_GITEA_URL", "ftp://git.example.org"),
        ("CCCI_GITEA_TOKEN", "x"),
        ("CCCI_COOLDOWN_S", "-1"),
    ],
)
def test_bad_values_are_named(env: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """Empty secrets, malformed repositories and URLs are refused with the variable's name."""
    env.setenv(variable, value)
    if (
        variable == "CCCI_GITEA_TOKEN"
    ):  # a token without a URL is fine; a URL without a token is not
        env.setenv("CCCI_GITEA_URL", "https://git.example.org")
        env.setenv(variable, "")

    with pytest.raises(ConfigError) as caught:
        load(BridgeSettings)

    assert variable == caught.value.variable


def test_secrets_from_files(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every token can come from ``CCCI_<NAME>_FILE`` (systemd credentials, Docker secrets)."""
    (tmp_path / "gh").write_text("from-file\n")
    env.setenv("CCCI_GITHUB_TOKEN_FILE", str(tmp_path / "gh"))

    settings = load(BridgeSettings)

    assert "from-file" == settings.github_token.get_secret_value()
    assert settings.github_enabled


def test_allowlists_split_on_commas_and_space(env: pytest.MonkeyPatch) -> None:
    """Allowlists are comma- or space-separated."""
    env.setenv("CCCI_CHAT_ALLOWLIST", "@a:x.org, @b:x.org\n@c:x.org")

    assert frozenset({"@a:x.org", "@b:x.org", "@c:x.org"}) == load(BridgeSettings).chat_users
