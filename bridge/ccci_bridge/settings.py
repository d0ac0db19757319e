"""The bridge's settings; every token may be given as ``CCCI_<NAME>_FILE``.

Drone and the webhook secret are required. Each forge and the chat endpoint is enabled by its
settings: Gitea/Forgejo by ``CCCI_GITEA_URL`` (then ``CCCI_GITEA_TOKEN`` is required), GitHub by
``CCCI_GITHUB_TOKEN``, chat by ``CCCI_CHAT_TOKEN``, Drone's system webhooks (``/hooks/drone``) by
``CCCI_DRONE_WEBHOOK_SECRET``, chat replies by ``CCCI_MATRIX_HOMESERVER`` (then
``CCCI_MATRIX_TOKEN`` is required). A disabled route answers 404.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from ccci_core.settings import BaseUrl, CcciSettings

_REPO_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def _names(text: str) -> frozenset[str]:
    return frozenset(item for item in re.split(r"[\s,]+", text) if item)


class BridgeSettings(CcciSettings):
    """Settings of ``cc-ci bridge`` and the gunicorn app."""

    drone_server: BaseUrl = Field(min_length=1)
    drone_token: SecretStr = Field(min_length=1)
    drone_repo: str
    drone_branch: str = Field(default="main", min_length=1)
    gitea_url: BaseUrl = ""
    gitea_token: SecretStr = Field(default=SecretStr(""), validate_default=True)
    github_url: BaseUrl = "https://api.github.com"
    github_token: SecretStr = SecretStr("")
    webhook_secret: SecretStr = Field(min_length=1)
    chat_token: SecretStr = SecretStr("")
    chat_allowlist: str = ""
    trigger_allowlist: str = ""
    bot_logins: str = ""
    recipe_owner: str = Field(default="coop-cloud", pattern=r"^[A-Za-z0-9_.-]+$")
    cooldown_s: int = Field(default=60, ge=0)
    bridge_state_dir: Path = Path("/var/lib/ci-bridge")
    max_body: int = Field(default=1024 * 1024, ge=1024)
    http_timeout_s: float = Field(default=10.0, gt=0)
    bridge_threads: int = Field(default=4, ge=1, le=64)
    drone_webhook_secret: SecretStr = SecretStr("")
    verdict_timeout_s: int = Field(default=3 * 3600, ge=60)
    poll_interval_s: float = Field(default=60.0, ge=0)
    matrix_homeserver: BaseUrl = ""
    matrix_token: SecretStr = Field(default=SecretStr(""), validate_default=True)

    @field_validator("drone_repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not _REPO_RE.fullmatch(value):
            raise ValueError("expected the CI repository as owner/name")
        return value

    @field_validator("gitea_token")
    @classmethod
    def _gitea_token(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("gitea_url") and not value.get_secret_value():
            raise ValueError("required when CCCI_GITEA_URL is set")
        return value

    @field_validator("matrix_token")
    @classmethod
    def _matrix_token(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("matrix_homeserver") and not value.get_secret_value():
            raise ValueError("required when CCCI_MATRIX_HOMESERVER is set")
        return value

    @property
    def chat_users(self) -> frozenset[str]:
        """Return the chat users (e.g. Matrix IDs) allowed to ask for runs."""
        return _names(self.chat_allowlist)

    @property
    def trigger_users(self) -> frozenset[str]:
        """Return forge logins trusted without write access (``login`` or ``forge:login``)."""
        return _names(self.trigger_allowlist)

    @property
    def bots(self) -> frozenset[str]:
        """Return the bridge's own forge logins, whose comments are never commands."""
        return _names(self.bot_logins)

    @property
    def gitea_enabled(self) -> bool:
        """Return whether ``/hooks/gitea`` is served."""
        return bool(self.gitea_url)

    @property
    def github_enabled(self) -> bool:
        """Return whether ``/hooks/github`` is served."""
        return bool(self.github_token.get_secret_value())

    @property
    def drone_hook_enabled(self) -> bool:
        """Return whether ``/hooks/drone`` is served."""
        return bool(self.drone_webhook_secret.get_secret_value())

    @property
    def chat_enabled(self) -> bool:
        """Return whether ``/hooks/chat`` is served."""
        return bool(self.chat_token.get_secret_value())
