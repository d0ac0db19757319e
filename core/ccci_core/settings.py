"""Settings shared by every component: ``CCCI_*`` environment, secrets from files, exit-2 errors.

Each deployable has one settings class (agent, plugin, bridge) built only in its entry point with
:func:`load`, holding only what that component reads. The shared parts live here:

    CcciSettings                the base: ``CCCI_`` prefix, secrets from files, ``redacted()``
    ├── SocketSettings          ``agent_socket``: all the operator commands read
    │   ├── RelaySettings       + where ``cc-ci relay`` delivers alerts (a Matrix room, a webhook)
    │   └── HostSettings        + ``domain``: what the agent and the plugin both read
    │       ├── AgentSettings   (ccci_agent.settings)
    │       └── DeploySettings  + recipes, their tests, the deployer, abra, the probe
    │           └── PluginSettings  (ccci_plugin.settings)
    └── BridgeSettings          (ccci_bridge.settings)

A secret field ``foo`` (typed ``SecretStr``) can be given as ``CCCI_FOO`` or as a path in
``CCCI_FOO_FILE`` (systemd credentials, Docker secrets); giving both is refused as ambiguous.
A class with ``drone_settings = True`` (the plugin's, for ``cc-ci run`` in a Drone step) also reads
each field ``foo`` from ``PLUGIN_FOO``, which is how Drone hands a step its ``settings:``; giving
both ``CCCI_FOO`` and ``PLUGIN_FOO`` is refused the same way.
:data:`BaseUrl` is the one URL type (the bridge's Drone and forges, the plugin's Keycloak, the
relay's homeserver).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .errors import ConfigError
from .names import validate_base_domain

PREFIX = "CCCI_"
DRONE_PREFIX = "PLUGIN_"  # Drone's: a plugin step's ``settings: {foo: …}`` is ``PLUGIN_FOO``

S = TypeVar("S", bound="CcciSettings")


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


class _SecretFiles(PydanticBaseSettingsSource):
    """Read ``CCCI_<FIELD>_FILE`` for every secret field."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            if not _is_secret(info.annotation):
                continue
            variable = f"{PREFIX}{name.upper()}"
            path = os.environ.get(f"{variable}_FILE")
            if not path:
                continue
            if os.environ.get(variable):
                raise ConfigError(variable, f"set either {variable} or {variable}_FILE, not both")
            try:
                values[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{variable}_FILE", f"cannot read {path}: {exc}") from exc
        return values


def _given(variable: str) -> bool:
    return bool(os.environ.get(variable))


class _DroneSettings(PydanticBaseSettingsSource):
    """Read ``PLUGIN_<FIELD>`` for every field: a Drone step's ``settings:``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            setting, variable = f"{DRONE_PREFIX}{name.upper()}", f"{PREFIX}{name.upper()}"
            if not _given(setting):
                continue
            for other in (variable, f"{variable}_FILE"):
                if _given(other):
                    raise ConfigError(setting, f"set either {other} or {setting}, not both")
            values[name] = os.environ[setting]
        return values


class CcciSettings(BaseSettings):
    """Base of every component's settings: ``CCCI_`` prefix, secrets from files."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)
    # Whether each field may also come from Drone's ``PLUGIN_<FIELD>`` (the plugin's run only).
    drone_settings: ClassVar[bool] = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read init arguments, then ``CCCI_*``, then ``PLUGIN_*`` if read, then ``*_FILE``."""
        drone = (_DroneSettings(settings_cls),) if cls.drone_settings else ()
        return init_settings, env_settings, *drone, _SecretFiles(settings_cls)

    @classmethod
    def variable_of(cls, field: str) -> str:
        """Return the variable that gave ``field``: ``PLUGIN_<FIELD>`` if it did, else ``CCCI_``."""
        setting = f"{DRONE_PREFIX}{field.upper()}"
        if cls.drone_settings and _given(setting):
            return setting
        return f"{PREFIX}{field.upper()}"

    def redacted(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values, secrets masked."""
        out: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                out[f"{PREFIX}{name.upper()}"] = "***" if value.get_secret_value() else ""
            else:
                out[f"{PREFIX}{name.upper()}"] = str(value) if isinstance(value, Path) else value
        return out


def _base_url(value: str) -> str:
    """Return ``value`` without trailing slashes; refuse anything but ``http(s)://host[:port][/path]``.

    An empty value stays empty: the service it names is not configured.
    """
    if not value:
        return value
    return _http_url(value, query=False).rstrip("/")


def _http_url(value: str, *, query: bool) -> str:
    """Return ``value`` if it is ``http(s)://host[:port][/path]`` (and ``?query`` if allowed)."""
    forbidden = "#" if query else "?#"
    what = "no fragment or space" if query else "no query, fragment or space"
    problem = f"expected an http:// or https:// URL with a host and {what}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(problem) from exc
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c in forbidden or c.isspace() for c in value)
    ):
        raise ValueError(problem)
    return value


# A base URL others are joined to (``f"{url}/api/..."``); "" where the setting is optional = unset.
BaseUrl = Annotated[str, AfterValidator(_base_url)]


class SocketSettings(CcciSettings):
    """Where the host agent listens (it binds, clients connect): all the operator commands read."""

    agent_socket: Path = Path("/run/ci-warm/agent.sock")


_ROOM_ID_RE = re.compile(r"![^\s]{1,254}")  # ``!opaque:server`` (room version 12: ``!opaque``)


def _webhook_url(value: str) -> str:
    """Return ``value`` if it is an ``http(s)://host…`` URL (a query is allowed, a fragment not)."""
    return _http_url(value, query=True)


class RelaySettings(SocketSettings):
    """Where ``cc-ci relay`` delivers alerts: a Matrix room, a JSON webhook, both or neither.

    The Matrix room is configured by all three of its settings or none; the webhook's URL is a
    secret (a hookshot URL is its own credential).
    """

    matrix_homeserver: BaseUrl = ""
    matrix_room: str = Field(default="", validate_default=True)
    matrix_token: SecretStr = Field(default=SecretStr(""), validate_default=True)
    alert_webhook_url: SecretStr = SecretStr("")

    @field_validator("matrix_room")
    @classmethod
    def _room(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            if info.data.get("matrix_homeserver"):
                raise ValueError("required when CCCI_MATRIX_HOMESERVER is set")
            return value
        if value.startswith("#"):
            raise ValueError(
                "a room alias; give the room ID (!…), e.g. Element: Room settings → Advanced"
            )
        if not _ROOM_ID_RE.fullmatch(value):
            raise ValueError("expected a room ID: '!' and up to 254 characters, no space")
        if not info.data.get("matrix_homeserver"):
            raise ValueError("set, but CCCI_MATRIX_HOMESERVER is not")
        return value

    @field_validator("matrix_token")
    @classmethod
    def _token(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        given = bool(value.get_secret_value())
        if info.data.get("matrix_homeserver") and not given:
            raise ValueError("required when CCCI_MATRIX_HOMESERVER is set")
        if given and not info.data.get("matrix_homeserver"):
            raise ValueError("set, but CCCI_MATRIX_HOMESERVER is not")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        return SecretStr(_webhook_url(url)) if url else value


class HostSettings(SocketSettings):
    """What the agent and the plugin both read: the socket and the base domain of every app."""

    domain: str = "ci.commoninternet.net"

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        try:
            return validate_base_domain(value)
        except ConfigError as exc:
            raise ValueError(exc.reason) from exc


class DeploySettings(HostSettings):
    """What deploying a recipe reads: the recipes and their tests, the deployer, abra, the probe."""

    recipes_dir: Path = Field(default_factory=lambda: Path.home() / ".abra" / "recipes")
    deployer: Literal["abra", "swarm"] = "abra"
    tests_dir: Path = Path("tests")  # holds <recipe>/recipe_meta.py
    abra_dir: Path = Field(default_factory=lambda: Path.home() / ".abra")  # the operator's
    abra_server: str = "default"  # servers/<name>/ that abra writes app envs under
    health_probe: Literal["proxy", "loopback", "exec"] = "proxy"  # how the probe reaches apps


def load(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment, or raise ConfigError naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        reason = first["msg"].removeprefix("Value error, ")
        secret = _is_secret(cls.model_fields.get(field, FieldInfo()).annotation)
        if first["type"] != "missing" and not secret:
            reason = f"{reason} (got {first['input']!r})"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(cls.variable_of(field), reason + more) from exc
