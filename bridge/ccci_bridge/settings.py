"""The bridge's settings; every token may be given as ``CCCI_<NAME>_FILE``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from ccci_core.settings import CcciSettings


class BridgeSettings(CcciSettings):
    """Settings of ``cc-ci bridge`` and the gunicorn app."""

    drone_server: str = ""
    drone_token: SecretStr = SecretStr("")
    drone_repo: str = ""
    drone_branch: str = "main"
    gitea_url: str = ""
    gitea_token: SecretStr = SecretStr("")
    github_url: str = "https://api.github.com"
    github_token: SecretStr = SecretStr("")
    webhook_secret: SecretStr = SecretStr("")
    chat_token: SecretStr = SecretStr("")
    chat_allowlist: str = ""
    trigger_allowlist: str = ""
    cooldown_s: int = Field(default=60, ge=0)
    bridge_state_dir: Path = Path("/var/lib/ci-bridge")
