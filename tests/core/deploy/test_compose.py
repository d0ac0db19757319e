"""Reading a recipe folder: env files, abra.sh exports, interpolation, merging, object names."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccci_core.deploy import compose
from ccci_core.deploy.errors import RecipeError

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "ccci-web" / "1.0.0+1.0"


def test_parse_env_reads_abra_env_files() -> None:
    """Comments, blanks, quotes, ``export`` and abra's ``# length=N`` modifiers are handled."""
    text = (
        '# a comment\n\nTYPE=web\nexport A=1\nCOMPOSE_FILE="compose.yml:compose.x.yml"\n'
        "SECRET_DB_VERSION=v1 # length=32\nQUOTED='a # b'\nEMPTY=\n"
    )
    expected = {
        "TYPE": "web",
        "A": "1",
        "COMPOSE_FILE": "compose.yml:compose.x.yml",
        "SECRET_DB_VERSION": "v1",
        "QUOTED": "a # b",
        "EMPTY": "",
    }
    assert expected == compose.parse_env(text)


def test_render_env_round_trips() -> None:
    """What render_env writes, parse_env reads back."""
    env = {"A": "1", "B": "with space", "C": "", "D": "x#y"}
    assert env == compose.parse_env(compose.render_env(env))


@pytest.mark.parametrize("text", ["no equals sign\n", "BAD KEY=1\n", "1X=2\n"])
def test_parse_env_refuses_garbage(text: str) -> None:
    """A line that is not KEY=VALUE is a RecipeError."""
    with pytest.raises(RecipeError):
        compose.parse_env(text)


def test_abra_sh_exports_are_read_not_run() -> None:
    """Only literal ``export X=Y`` lines count; commands and expansions are ignored."""
    text = (
        "#!/bin/sh\nexport APP_ENTRYPOINT_VERSION=v2\nexport QUOTED='v3'\n"
        "export EVIL=$(rm -rf /)\nexport TICK=`id`\nexport SPACED=a b\nrm -rf /\n"
        "  export INDENTED=v4\nfunction f() { export INNER=1; }\n"
    )
    expected = {"APP_ENTRYPOINT_VERSION": "v2", "QUOTED": "v3", "INDENTED": "v4"}
    assert expected == compose.parse_abra_sh(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A-x", "1-x"),
        ("${MISSING}", ""),
        ("${MISSING:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("$$A", "$A"),
        ("a_${A}_$${B}", "a_1_${B}"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    """Compose's substitution rules, including defaults and the ``$$`` escape."""
    assert expected == compose.interpolate(text, {"A": "1", "EMPTY": ""})


def test_required_variable_missing_is_an_error() -> None:
    """``${VAR:?msg}`` with VAR unset is refused with the message."""
    with pytest.raises(RecipeError, match="set the domain"):
        compose.interpolate("${DOMAIN:?set the domain}", {})


def test_merge_follows_compose_override_rules() -> None:
    """Mappings merge, list-form labels/environment merge by key, other lists unite."""
    base = {
        "services": {
            "app": {
                "image": "a:1",
                "environment": ["A=1", "B=2"],
                "deploy": {"labels": ["x=1"]},
                "networks": ["internal"],
                "command": ["a", "b"],
            }
        }
    }
    override = {
        "services": {
            "app": {
                "image": "a:2",
                "environment": {"B": "3"},
                "deploy": {"labels": ["y=2"]},
                "networks": ["internal", "proxy"],
                "command": ["c"],
            }
        }
    }
    expected = {
        "services": {
            "app": {
                "image": "a:2",
                "environment": {"A": "1", "B": "3"},
                "deploy": {"labels": {"x": "1", "y": "2"}},
                "networks": ["internal", "proxy"],
                "command": ["c"],
            }
        }
    }
    assert expected == compose.merge(base, override)


def test_load_compose_merges_compose_file_list_and_types_substitutions() -> None:
    """The test recipe's two compose files merge; ``published: ${HTTP_PORT}`` becomes an int."""
    env = {
        **compose.parse_env((RECIPE / ".env.sample").read_text()),
        "STACK_NAME": "s",
        "WEB_IMAGE": "img:1",
        "ENTRYPOINT_VERSION": "v1",
    }
    tree = compose.load_compose(RECIPE, env)
    app = tree["services"]["app"]
    assert "img:1" == app["image"]
    assert [{"target": 80, "published": 8080, "protocol": "tcp", "mode": "host"}] == app["ports"]
    assert ["coop-cloud.s.version=1.0.0+1.0"] == app["deploy"]["labels"]
    assert "s_entrypoint_v1" == tree["configs"]["entrypoint"]["name"]
    assert ["data"] == compose.volume_keys(tree)
    assert {"api_key": "v1"} == compose.secret_versions(tree, env)


@pytest.mark.parametrize("entry", ["../compose.yml", "/etc/passwd", "compose.yml.sh", "a/b.yml"])
def test_compose_file_list_stays_in_the_recipe(entry: str) -> None:
    """A COMPOSE_FILE entry that is not a plain compose file name is refused."""
    with pytest.raises(RecipeError):
        compose.compose_files({"COMPOSE_FILE": f"compose.yml:{entry}"})


def test_secret_without_version_variable_is_refused() -> None:
    """A generated secret needs its SECRET_<NAME>_VERSION."""
    with pytest.raises(RecipeError, match="SECRET_DB_PASSWORD_VERSION"):
        compose.secret_versions({"secrets": {"db_password": {"external": True}}}, {})


def test_escape_tree_protects_dollars_from_a_second_interpolation() -> None:
    """Escaped output interpolates back to itself."""
    tree = {"command": ["sh", "-c", "echo $HOME $$"], "n": 1}
    escaped = compose.escape_tree(tree)
    assert tree["command"] == [compose.interpolate(s, {}) for s in escaped["command"]]
