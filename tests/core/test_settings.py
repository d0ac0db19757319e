"""Settings: CCCI_* environment, secrets from files, errors naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from ccci_agent.settings import AgentSettings
from ccci_agent.sweep_cli import SweepSettings
from ccci_bridge.settings import BridgeSettings
from ccci_core.errors import ConfigError
from ccci_core.settings import CcciSettings, SocketSettings, load
from ccci_plugin.settings import JanitorSettings, PluginSettings


class TokenSettings(CcciSettings):
    """A component with a secret and a bounded number, as the bridge has."""

    drone_token: SecretStr = SecretStr("")
    cooldown_s: int = Field(default=60, ge=0)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without CCCI_* or PLUGIN_* variables from the developer's shell."""
    for key in list(os.environ):
        if key.startswith(("CCCI_", "PLUGIN_")):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    """Defaults are the production host's paths and limits."""
    agent, plugin = load(AgentSettings), load(PluginSettings)
    expected = (
        Path("/var/lib/ci-warm"),
        Path("/run/ci-warm/agent.sock"),
        "ci.commoninternet.net",
        1,
        "abra",
        "proxy",
    )
    assert expected == (
        agent.state_dir,
        agent.agent_socket,
        agent.domain,
        agent.max_tests,
        plugin.deployer,
        plugin.health_probe,
    )


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CCCI_* variables set every field."""
    monkeypatch.setenv("CCCI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CCCI_MAX_TESTS", "3")
    monkeypatch.setenv("CCCI_DEPLOYER", "swarm")
    monkeypatch.setenv("CCCI_RECIPES_DIR", str(tmp_path / "recipes"))
    monkeypatch.setenv("CCCI_DOMAIN", "ci.example.org")
    agent, plugin = load(AgentSettings), load(PluginSettings)
    assert (tmp_path, 3, "ci.example.org", "swarm", tmp_path / "recipes", "ci.example.org") == (
        agent.state_dir,
        agent.max_tests,
        agent.domain,
        plugin.deployer,
        plugin.recipes_dir,
        plugin.domain,
    )


@pytest.mark.parametrize(
    ("cls", "variable", "value"),
    [
        (AgentSettings, "CCCI_MAX_TESTS", "many"),
        (AgentSettings, "CCCI_MAX_TESTS", "0"),
        (AgentSettings, "CCCI_DOMAIN", "Not A Domain"),
        (AgentSettings, "CCCI_DOMAIN", "a-very-long-subdomain.of-a-long-ci-domain.example.org"),
        (PluginSettings, "CCCI_DOMAIN", "Not A Domain"),
        (PluginSettings, "CCCI_DEPLOYER", "kubernetes"),
        (PluginSettings, "CCCI_HEALTH_PROBE", "telepathy"),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type[CcciSettings], variable: str, value: str
) -> None:
    """A bad value is a ConfigError whose message starts with the variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load(cls)
    assert variable == caught.value.variable
    assert str(caught.value).startswith(f"{variable}: ")


@pytest.mark.parametrize(
    ("cls", "variable", "value"),
    [
        (AgentSettings, "CCCI_DEPLOYER", "kubernetes"),
        (AgentSettings, "CCCI_HEALTH_PROBE", "telepathy"),
        (SocketSettings, "CCCI_DOMAIN", "Not A Domain"),
        (SocketSettings, "CCCI_DEPLOYER", "kubernetes"),
    ],
)
def test_a_component_ignores_what_it_does_not_read(
    monkeypatch: pytest.MonkeyPatch, cls: type[CcciSettings], variable: str, value: str
) -> None:
    """A deploy setting the agent and the operator commands never read cannot stop them."""
    monkeypatch.setenv(variable, value)
    assert variable not in load(cls).redacted()


def test_secret_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A secret may be given as a path in CCCI_<NAME>_FILE; the trailing newline is dropped."""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    monkeypatch.setenv("CCCI_DRONE_TOKEN_FILE", str(token))
    settings = load(TokenSettings)
    assert "s3cret" == settings.drone_token.get_secret_value()
    assert "***" == settings.redacted()["CCCI_DRONE_TOKEN"]


def test_secret_file_missing_names_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An unreadable secret file is a ConfigError naming CCCI_<NAME>_FILE."""
    monkeypatch.setenv("CCCI_DRONE_TOKEN_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError) as caught:
        load(TokenSettings)
    assert "CCCI_DRONE_TOKEN_FILE" == caught.value.variable


def test_secret_given_twice_is_ambiguous(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Both CCCI_X and CCCI_X_FILE is refused rather than silently picking one."""
    token = tmp_path / "token"
    token.write_text("from-file")
    monkeypatch.setenv("CCCI_DRONE_TOKEN_FILE", str(token))
    monkeypatch.setenv("CCCI_DRONE_TOKEN", "from-env")
    with pytest.raises(ConfigError) as caught:
        load(TokenSettings)
    assert "CCCI_DRONE_TOKEN" == caught.value.variable


def test_secret_values_never_appear_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A validation error on a secret does not echo the secret."""
    monkeypatch.setenv("CCCI_COOLDOWN_S", "-1")
    with pytest.raises(ConfigError) as caught:
        load(TokenSettings, webhook_secret=SecretStr("hunter2"))
    assert "hunter2" not in str(caught.value)
    assert "CCCI_COOLDOWN_S" == caught.value.variable


def test_plugin_settings_share_the_host_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin reads the same CCCI_DOMAIN/CCCI_AGENT_SOCKET as the agent."""
    monkeypatch.setenv("CCCI_AGENT_SOCKET", "/tmp/agent.sock")
    plugin = load(PluginSettings)
    assert (Path("/tmp/agent.sock"), "ci.commoninternet.net") == (
        plugin.agent_socket,
        plugin.domain,
    )


def test_plugin_settings_come_from_drone_settings_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Drone step's ``settings: {deployer: swarm}`` (PLUGIN_DEPLOYER) configures the run."""
    monkeypatch.setenv("PLUGIN_DEPLOYER", "swarm")
    monkeypatch.setenv("PLUGIN_RECIPES_DIR", str(tmp_path))
    monkeypatch.setenv("PLUGIN_LEASE_WAIT_S", "5")
    monkeypatch.setenv("PLUGIN_KEYCLOAK_ADMIN_PASSWORD", "from-drone-secret")
    plugin = load(PluginSettings)
    assert ("swarm", tmp_path, 5, "from-drone-secret") == (
        plugin.deployer,
        plugin.recipes_dir,
        plugin.lease_wait_s,
        plugin.keycloak_admin_password.get_secret_value(),
    )


@pytest.mark.parametrize(
    ("env", "variable", "reason"),
    [
        ({"PLUGIN_DEPLOYER": "helm"}, "PLUGIN_DEPLOYER", "Input should be 'abra' or 'swarm'"),
        (
            {"PLUGIN_DEPLOYER": "swarm", "CCCI_DEPLOYER": "swarm"},
            "PLUGIN_DEPLOYER",
            "set either CCCI_DEPLOYER or PLUGIN_DEPLOYER, not both",
        ),
        (
            {"PLUGIN_KEYCLOAK_ADMIN_PASSWORD": "x", "CCCI_KEYCLOAK_ADMIN_PASSWORD_FILE": "/p"},
            "PLUGIN_KEYCLOAK_ADMIN_PASSWORD",
            "set either CCCI_KEYCLOAK_ADMIN_PASSWORD_FILE or PLUGIN_KEYCLOAK_ADMIN_PASSWORD",
        ),
    ],
    ids=["invalid", "given-twice", "secret-given-twice"],
)
def test_a_bad_drone_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, reason: str
) -> None:
    """A refused PLUGIN_* setting is named as Drone set it, not as CCCI_*."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load(PluginSettings)
    assert (variable, True) == (caught.value.variable, reason in caught.value.reason)


@pytest.mark.parametrize("cls", [AgentSettings, JanitorSettings, SweepSettings])
def test_host_commands_ignore_drone_settings(
    monkeypatch: pytest.MonkeyPatch, cls: type[CcciSettings]
) -> None:
    """Only the plugin's run reads PLUGIN_*: a host command never takes a Drone step's setting."""
    monkeypatch.setenv("PLUGIN_DEPLOYER", "swarm")
    monkeypatch.setenv("PLUGIN_DOMAIN", "not a domain")
    assert "ci.commoninternet.net" == load(cls).model_dump()["domain"]


class RequiredSettings(CcciSettings):
    """A component with a required setting."""

    drone_server: str


def test_missing_required_setting_says_so_plainly() -> None:
    """A missing variable is reported as required, without an empty input echoed."""
    with pytest.raises(ConfigError) as caught:
        load(RequiredSettings)
    assert "CCCI_DRONE_SERVER: Field required" == str(caught.value)


BRIDGE_REQUIRED = {
    "CCCI_DRONE_SERVER": "https://drone.example.org",
    "CCCI_DRONE_TOKEN": "t",
    "CCCI_DRONE_REPO": "coop-cloud/cc-ci",
    "CCCI_WEBHOOK_SECRET": "s",
    "CCCI_GITEA_TOKEN": "g",  # asked for once CCCI_GITEA_URL is set
}
# Every URL setting, with the settings class that reads it and the attribute it lands in.
URL_SETTINGS = [
    (BridgeSettings, "CCCI_DRONE_SERVER", "drone_server"),
    (BridgeSettings, "CCCI_GITEA_URL", "gitea_url"),
    (BridgeSettings, "CCCI_GITHUB_URL", "github_url"),
    (PluginSettings, "CCCI_KEYCLOAK_URL", "keycloak_url"),
]


@pytest.mark.parametrize(("cls", "variable", "field"), URL_SETTINGS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://x.example.org", "https://x.example.org"),
        ("https://x.example.org/", "https://x.example.org"),
        ("https://x.example.org//", "https://x.example.org"),
        ("http://x.example.org/sub/path/", "http://x.example.org/sub/path"),
        ("http://x:8080", "http://x:8080"),
        ("http://[::1]:80/", "http://[::1]:80"),
        ("HTTPS://x.example.org", "HTTPS://x.example.org"),  # a scheme is case-insensitive
    ],
)
def test_a_url_setting_drops_trailing_slashes(
    monkeypatch: pytest.MonkeyPatch,
    cls: type[CcciSettings],
    variable: str,
    field: str,
    value: str,
    expected: str,
) -> None:
    """Every URL setting of the bridge and the plugin takes an http(s) URL, trailing / dropped."""
    for key, required in BRIDGE_REQUIRED.items():
        monkeypatch.setenv(key, required)
    monkeypatch.setenv(variable, value)

    assert expected == getattr(load(cls), field)


@pytest.mark.parametrize(("cls", "variable", "field"), URL_SETTINGS)
@pytest.mark.parametrize(
    "value",
    [
        "x.example.org",
        "ftp://x.example.org",
        "http://",
        "http:///path",
        "https://x.example.org/?a=1",
        "https://x.example.org/#top",
        "http://x.example.org/a b",
        # The bridge's and the plugin's own checks disagreed on these; one rule refuses them all.
        " https://x.example.org",
        "https://x.example.org\n",
        "https://x.example.org/?",
        "https://x.example.org/#",
        "http://@/path",
        "http://:80",
        "http://[::1",
        "http://x.example.org:http",
    ],
)
def test_a_bad_url_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
    cls: type[CcciSettings],
    variable: str,
    field: str,
    value: str,
) -> None:
    """A URL without an http(s) scheme and a host, or with a query, fragment or space: refused."""
    for key, required in BRIDGE_REQUIRED.items():
        monkeypatch.setenv(key, required)
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load(cls)

    assert variable == caught.value.variable


@pytest.mark.parametrize(
    ("cls", "variable", "field"),
    [setting for setting in URL_SETTINGS if setting[1] != "CCCI_DRONE_SERVER"],
)
def test_an_empty_optional_url_means_off(
    monkeypatch: pytest.MonkeyPatch, cls: type[CcciSettings], variable: str, field: str
) -> None:
    """An empty optional URL (a forge, Keycloak) is kept empty: that service is not used."""
    for key, required in BRIDGE_REQUIRED.items():
        monkeypatch.setenv(key, required)
    monkeypatch.setenv(variable, "")

    assert "" == getattr(load(cls), field)
