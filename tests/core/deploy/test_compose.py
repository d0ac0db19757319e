"""What abra adds around docker's loader: abra.sh, COMPOSE_FILE, secrets, object names."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccci_core.deploy import compose, envfile
from ccci_core.deploy.errors import DeployError, RecipeError
from ccci_core.deploy.stack_config import StackConfig

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
OVERLAY = RECIPES / "ccci-overlay" / "1.0.0+2.0"
WEB = RECIPES / "ccci-web" / "1.0.0+1.0"


def _loaded(folder: Path, stack: str = "s") -> tuple[dict[str, Any], dict[str, str], Any]:
    text = (folder / ".env.sample").read_text()
    env = {**compose.recipe_env(folder, {}), "STACK_NAME": stack, "WEB_IMAGE": "img:1"}
    files = compose.compose_files(env)
    loader = StackConfig()
    tree = loader.load(folder, files, env)
    raw = compose.raw_secret_names(folder, files)
    return tree, raw, envfile.parse(text).modifiers


def test_abra_sh_exports_are_read_not_run() -> None:
    """Only literal ``export X=Y`` lines count; commands and expansions are ignored."""
    text = (
        "#!/bin/sh\nexport APP_ENTRYPOINT_VERSION=v2\nexport QUOTED='v3'\n"
        "export EVIL=$(rm -rf /)\nexport TICK=`id`\nexport SPACED=a b\nrm -rf /\n"
        "  export INDENTED=v4\nfunction f() { export INNER=1; }\n"
    )
    expected = {"APP_ENTRYPOINT_VERSION": "v2", "QUOTED": "v3", "INDENTED": "v4"}
    assert expected == compose.parse_abra_sh(text)


@pytest.mark.parametrize("entry", ["postgres/compose.postgres.tune.yml", "a/b/c.yaml"])
def test_compose_file_list_takes_nested_overlays(entry: str) -> None:
    """An overlay in a subfolder of the recipe is a compose file like any other."""
    assert ["compose.yml", entry] == compose.compose_files({"COMPOSE_FILE": f"compose.yml:{entry}"})


@pytest.mark.parametrize(
    "entry", ["../compose.yml", "/etc/passwd", "compose.yml.sh", "a/../b.yml", "a//b.yml", "-x.yml"]
)
def test_compose_file_list_stays_in_the_recipe(entry: str) -> None:
    """A COMPOSE_FILE entry that is not a compose file inside the recipe is refused."""
    with pytest.raises(RecipeError):
        compose.compose_files({"COMPOSE_FILE": f"compose.yml:{entry}"})


@pytest.mark.docker
def test_secrets_take_name_version_and_modifiers_from_the_recipe() -> None:
    """Versions come from the loaded name, length/charset from the variable in the raw name."""
    tree, raw, modifiers = _loaded(OVERLAY)

    found = {s.key: s for s in compose.secrets(tree, raw, modifiers, "s")}

    assert {
        "db_password": compose.Secret("db_password", "s_db_password_v1", "v1", 128, "default"),
        "admin_token": compose.Secret(
            "admin_token", "s_admin_token_v2", "v2", 40, "default,special"
        ),
        # the compose key and its variable differ (DB_ROOT_SECRET_VERSION): abra reads the name
        "root_password": compose.Secret("root_password", "s_root_password_v3", "v3"),
    } == found


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"name": "s_db_password_"}, "no version"),
        ({"external": True}, "has no name"),
        ({"name": "other_db_password_v1"}, "does not start with s_"),
    ],
)
def test_secret_without_a_usable_name_is_refused(spec: dict[str, Any], reason: str) -> None:
    """A generated secret needs a name of the stack's that ends in a version."""
    with pytest.raises(RecipeError, match=reason):
        compose.secrets({"secrets": {"db_password": spec}}, {}, {}, "s")


@pytest.mark.parametrize(
    ("modifiers", "reason"),
    [({"length": "0"}, "length"), ({"length": "x"}, "length"), ({"charset": "emoji"}, "charset")],
)
def test_bad_modifiers_are_refused(modifiers: dict[str, str], reason: str) -> None:
    """A length or charset abra would not understand is a RecipeError, not a weak secret."""
    tree = {"secrets": {"k": {"name": "s_k_v1"}}}
    raw = {"k": "${STACK_NAME}_k_${SECRET_K_VERSION}"}
    with pytest.raises(RecipeError, match=reason):
        compose.secrets(tree, raw, {"SECRET_K_VERSION": modifiers}, "s")


def test_charsets_unite() -> None:
    """``default`` is letters and digits; ``default,special`` adds punctuation, once each."""
    assert set(string.ascii_letters + string.digits) == set(compose.alphabet("default"))
    both = compose.alphabet("default,special")
    assert len(set(both)) == len(both)
    assert set(compose.alphabet("default")) < set(both)


@pytest.mark.docker
def test_recipe_suffix_counts_configs_and_secrets() -> None:
    """The longest ``<stack>_...`` part is the tuning config's (item 9), nested overlay included."""
    suffix = compose.recipe_suffix(OVERLAY, {"WEB_IMAGE": "img:1"}, StackConfig())
    assert len("pg_tuning_config_v1") == suffix


@pytest.mark.docker
def test_object_names_over_swarms_limit_are_refused_before_deploy() -> None:
    """A 65-character config name is a clear RecipeError, not a failed deploy."""
    stack = "s" * (64 - len("pg_tuning_config_v1"))  # one too many with the "_"
    tree, raw, modifiers = _loaded(OVERLAY, stack)
    names = compose.object_names(tree, compose.secrets(tree, raw, modifiers, stack), stack)
    with pytest.raises(RecipeError, match="pg_tuning_config_v1' is longer"):
        compose.check_names(names)


def test_loader_without_stack_config_says_so(tmp_path: Path) -> None:
    """A docker CLI that lacks ``stack config`` is named as the problem."""
    old = tmp_path / "docker"
    old.write_text('#!/bin/sh\necho "unknown flag: --compose-file" >&2\nexit 125\n')
    old.chmod(0o755)
    with pytest.raises(DeployError, match="has no 'docker stack config'"):
        StackConfig(str(old)).load(WEB, ["compose.yml"], {})


@pytest.mark.docker
def test_escape_tree_survives_dockers_second_interpolation(tmp_path: Path) -> None:
    """An escaped tree, loaded again by docker with variables set, comes back unchanged."""
    command = ["sh", "-c", "echo $HOME ${HOME} $$ $${HOME}"]
    tree = {"version": "3.8", "services": {"app": {"image": "img:1", "command": command}}}
    (tmp_path / "compose.yml").write_text(yaml.safe_dump(compose.escape_tree(tree)))

    loaded = StackConfig().load(tmp_path, ["compose.yml"], {"HOME": "/root"})

    assert command == loaded["services"]["app"]["command"]


@pytest.mark.docker
def test_the_stack_file_reads_back_in_dockers_yaml_as_we_wrote_it(tmp_path: Path) -> None:
    """Strings that YAML 1.2 would read as numbers or booleans stay strings through docker.

    ``752e0145`` is a commit prefix the chaos label carries: written bare, docker's loader reads it
    as the float 7.52e+147 (seen on a real run).
    """
    labels = {"chaos": "752e0145", "a": "1e5", "b": "0x1F", "c": "true", "d": "012", "e": "~"}
    ports = [{"target": 80, "published": 8080, "protocol": "tcp", "mode": "host"}]
    tree = {
        "version": "3.8",
        "services": {
            "app": {"image": "img:1", "ports": ports, "deploy": {"labels": labels, "replicas": 2}}
        },
    }
    (tmp_path / "compose.yml").write_text(compose.dump_tree(tree))

    loaded = StackConfig().load(tmp_path, ["compose.yml"], {})["services"]["app"]

    assert labels == loaded["deploy"]["labels"]
    assert (2, 8080) == (loaded["deploy"]["replicas"], int(loaded["ports"][0]["published"]))
