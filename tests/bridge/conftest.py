"""Fixtures of the bridge's tests: settings, an app running its work inline, a test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
import responses

from ccci_bridge.app import create_app
from ccci_bridge.settings import BridgeSettings
from tests.bridge.payloads import DRONE, DRONE_SECRET, GITEA, GITHUB_API, SECRET


class InlineExecutor:
    """Run submitted work at once, so a test sees its effects when the request returns."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Call ``fn(*args)`` now."""
        fn(*args)


@pytest.fixture
def settings(tmp_path: Path) -> BridgeSettings:
    """Settings with every hook enabled and the state dir in tmp_path."""
    return BridgeSettings(
        drone_server=DRONE,
        drone_token="drone-token",
        drone_repo="coop-cloud/cc-ci",
        drone_branch="main",
        gitea_url=GITEA,
        gitea_token="gitea-token",
        github_url=GITHUB_API,
        github_token="github-token",
        webhook_secret=SECRET,
        chat_token="chat-token",
        chat_allowlist="@alice:example.org, @carol:example.org",
        trigger_allowlist="github:dora",
        bot_logins="cc-ci-bot",
        cooldown_s=60,
        bridge_state_dir=tmp_path / "state",
        drone_webhook_secret=DRONE_SECRET,
        poll_interval_s=0,
    )


@pytest.fixture
def app(settings: BridgeSettings) -> flask.Flask:
    """The bridge app doing its slow work inline."""
    return create_app(settings, executor=InlineExecutor())


@pytest.fixture
def client(app: flask.Flask) -> flask.testing.FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    """The upstream APIs; any request not registered fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
