"""The Drone contract: build parameters, plugin settings and flags become a RunRequest."""

from __future__ import annotations

import pytest

from ccci_bridge.commands import Command
from ccci_bridge.forge import Pull
from ccci_bridge.trigger import build_params
from ccci_core.errors import BadInput
from ccci_plugin.request import RunRequest, from_drone


@pytest.mark.parametrize(
    ("env", "flags", "expected"),
    [
        # env only: build parameters as the bridge sets them
        (
            {"RECIPE": "custom-html", "REF": "refs/pull/3/head", "CCCI_QUICK": "1", "CCCI_PR": "3"},
            {},
            RunRequest("custom-html", "refs/pull/3/head", True, 3),
        ),
        # plugin settings only
        ({"PLUGIN_RECIPE": "keycloak"}, {}, RunRequest("keycloak")),
        # flags only
        (
            {},
            {"recipe": "app", "ref": "1.0.0+1.0", "quick": True},
            RunRequest("app", "1.0.0+1.0", True),
        ),
        # both: flags win over build parameters, which win over plugin settings
        (
            {
                "RECIPE": "from-param",
                "PLUGIN_RECIPE": "from-setting",
                "REF": "abc1234",
                "CCCI_QUICK": "1",
            },
            {"recipe": "from-flag", "quick": False},
            RunRequest("from-flag", "abc1234", False),
        ),
        ({"RECIPE": "from-param", "PLUGIN_RECIPE": "from-setting"}, {}, RunRequest("from-param")),
        # empty REF means latest; empty CCCI_QUICK means cold
        ({"RECIPE": "app", "REF": "", "CCCI_QUICK": ""}, {}, RunRequest("app")),
        (
            {"RECIPE": "app", "DRONE_BUILD_NUMBER": "42", "DRONE_BUILD_LINK": "https://drone/x/42"},
            {},
            RunRequest("app", build_number="42", build_link="https://drone/x/42"),
        ),
    ],
)
def test_contract(env: dict[str, str], flags: dict[str, object], expected: RunRequest) -> None:
    """Each source, alone or combined, yields the documented request."""
    assert expected == from_drone(env, **flags)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "flags", "reason"),
    [
        ({}, {}, "no recipe"),
        ({"RECIPE": "../etc"}, {}, "RECIPE: invalid recipe"),
        ({"PLUGIN_RECIPE": "Bad"}, {}, "PLUGIN_RECIPE: invalid recipe"),
        ({}, {"recipe": "a/b"}, "flag: invalid recipe"),
        ({"RECIPE": "app", "REF": "--upload-pack=x"}, {}, "REF: invalid ref"),
        ({"RECIPE": "app", "CCCI_QUICK": "maybe"}, {}, "CCCI_QUICK: expected"),
        ({"RECIPE": "app", "CCCI_PR": "-3"}, {}, "CCCI_PR: expected a pull request number"),
        ({"RECIPE": "app", "CCCI_PR": "0"}, {}, "CCCI_PR"),
    ],
)
def test_bad_input_is_refused_with_its_source(
    env: dict[str, str], flags: dict[str, str], reason: str
) -> None:
    """Missing or invalid values raise BadInput naming where they came from."""
    with pytest.raises(BadInput) as caught:
        from_drone(env, **flags)
    assert reason in str(caught.value)


def test_lane() -> None:
    """The lane is quick or cold."""
    assert ("quick", "cold") == (RunRequest("a", quick=True).lane, RunRequest("a").lane)


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("from_pull", [False, True])
def test_what_the_bridge_sends_is_what_the_plugin_runs(quick: bool, from_pull: bool) -> None:
    """The bridge's build parameters, through the plugin's parser, give back the same run."""
    command = Command(quick=quick)
    sha = "0123456789abcdef0123456789abcdef01234567"
    pull = Pull(number=7, state="open", head_sha=sha) if from_pull else None

    request = from_drone(build_params("custom-html", command, pull))

    expected = RunRequest(
        "custom-html",
        ref="refs/pull/7/head" if from_pull else None,
        quick=quick,
        pr=7 if from_pull else None,
        sha=sha if from_pull else None,
    )
    assert expected == request
