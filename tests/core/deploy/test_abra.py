"""The abra adapter's command lines, pinned through a fake ``abra`` on PATH that records argv."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from ccci_core.catalog import Catalog
from ccci_core.deploy import envfile
from ccci_core.deploy.abra import AbraDeployer
from ccci_core.deploy.errors import DeployError, RecipeError
from ccci_core.names import AppName, cold_app
from tests.deploy_fixtures import stacks

FAKE_ABRA = """#!{python}
import json, os, pathlib, sys
argv = sys.argv[1:]
with open(os.environ["FAKE_ABRA_LOG"], "a") as log:
    log.write(json.dumps({{"argv": argv, "abra_dir": os.environ.get("ABRA_DIR")}}) + "\\n")
if os.environ.get("FAKE_ABRA_FAIL") == " ".join(argv[:2]):
    print("INFO doing things")
    print("FATA deploy failed: network proxy not found", file=sys.stderr)
    sys.exit(1)
if argv[:2] == ["app", "new"]:
    # Like abra: the app's env starts as the recipe's .env.sample under servers/<server>/.
    root = pathlib.Path(os.environ["ABRA_DIR"])
    server, domain = argv[argv.index("--server") + 1], argv[argv.index("--domain") + 1]
    sample = (root / "recipes" / argv[2] / ".env.sample").read_text()
    (root / "servers" / server).mkdir(parents=True, exist_ok=True)
    (root / "servers" / server / (domain + ".env")).write_text(sample)
"""


@pytest.fixture
def abra_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake ``abra`` first on PATH; return the file it records its calls in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "abra"
    fake.write_text(FAKE_ABRA.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "abra.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ABRA_LOG", str(log))
    return log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()]


@pytest.fixture
def operator_dir(tmp_path: Path) -> Path:
    """The operator's ``~/.abra`` with an empty ``servers/``."""
    path = tmp_path / "operator-abra"
    (path / "servers").mkdir(parents=True)
    return path


@pytest.fixture
def abra(docker_client: docker.DockerClient, tmp_path: Path, operator_dir: Path) -> AbraDeployer:
    """An abra deployer with a per-run ABRA_DIR."""
    return AbraDeployer.for_run(
        stacks(docker_client), tmp_path / "run", operator_dir, server="ci-host"
    )


@pytest.fixture
def app() -> AppName:
    """A cold app name no engine object has."""
    return cold_app("ccci-web", "t.ccci.example", uuid.uuid4().hex[:6], suffix=10)


Operation = Callable[[AbraDeployer, AppName, object], object]


@pytest.mark.docker
@pytest.mark.parametrize(
    ("ref", "operation", "expected"),
    [
        (
            "1.0.0+1.0",
            lambda d, a, c: d.new(a, c, {}),
            ["app", "new", "ccci-web", "1.0.0+1.0", "--server", "ci-host", "--domain", "{domain}",
             "--secrets", "--no-input"],
        ),
        (
            "chaos",
            lambda d, a, c: d.new(a, c, {}),
            ["app", "new", "ccci-web", "--chaos", "--server", "ci-host", "--domain", "{domain}",
             "--secrets", "--no-input"],
        ),
        (
            "1.0.0+1.0",
            lambda d, a, c: d.generate_secrets(a, c),
            ["app", "secret", "generate", "{domain}", "--all", "--no-input"],
        ),
        (
            "1.1.0+1.1",
            lambda d, a, c: d.deploy(a, c),
            ["app", "deploy", "{domain}", "1.1.0+1.1", "--force", "--no-converge-checks",
             "--no-input"],
        ),
        (
            "chaos",
            lambda d, a, c: d.deploy(a, c),
            ["app", "deploy", "{domain}", "--chaos", "--force", "--no-converge-checks",
             "--no-input"],
        ),
        (
            "1.0.0+1.0",
            lambda d, a, c: d.remove(a),
            ["app", "remove", "{domain}", "--force", "--no-input"],
        ),
    ],
)  # fmt: skip
def test_argv_of_every_operation(
    abra: AbraDeployer,
    abra_log: Path,
    catalog: Catalog,
    app: AppName,
    ref: str,
    operation: Operation,
    expected: list[str],
) -> None:
    """Each operation runs exactly one pinned abra command line with the run's ABRA_DIR."""
    if ref == "chaos":
        with catalog.checkout("ccci-web", "1.1.0+1.1", abra.abra_dir / "tag") as tagged:
            ref = tagged.commit
    with catalog.checkout("ccci-web", ref, abra.recipes_dir) as checkout:
        operation(abra, app, checkout)
    wanted = [part.replace("{domain}", app.domain) for part in expected]
    assert [wanted] == _calls(abra_log)
    recorded = json.loads(abra_log.read_text().splitlines()[0])["abra_dir"]
    assert str(abra.abra_dir) == recorded


@pytest.mark.docker
def test_undeploy_of_a_stack_that_is_not_deployed_runs_nothing(
    abra: AbraDeployer, abra_log: Path, app: AppName
) -> None:
    """Undeploy only calls abra when the stack has services, and returns once none is left."""
    abra.undeploy(app)
    assert [] == _calls(abra_log)


@pytest.mark.docker
def test_new_sets_env_in_the_operators_servers_dir(
    abra: AbraDeployer, abra_log: Path, catalog: Catalog, app: AppName, operator_dir: Path
) -> None:
    """``new`` edits the env abra wrote, through the shared ``servers/`` symlink."""
    with catalog.checkout("ccci-web", "1.0.0+1.0", abra.recipes_dir) as checkout:
        abra.new(app, checkout, {"HTTP_PORT": "9999", "LETS_ENCRYPT_ENV": ""})
    text = (operator_dir / "servers" / "ci-host" / f"{app.domain}.env").read_text()
    assert "HTTP_PORT='9999'" in text.splitlines()
    assert "LETS_ENCRYPT_ENV=''" in text.splitlines()
    assert "HTTP_PORT=8080" not in text


@pytest.mark.docker
def test_abra_failure_becomes_deploy_error_with_command_and_tail(
    abra: AbraDeployer,
    abra_log: Path,
    catalog: Catalog,
    app: AppName,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A non-zero exit of abra is a DeployError carrying the argv and abra's last words."""
    monkeypatch.setenv("FAKE_ABRA_FAIL", "app deploy")
    with (
        catalog.checkout("ccci-web", "1.0.0+1.0", abra.recipes_dir) as checkout,
        pytest.raises(DeployError) as caught,
    ):
        abra.deploy(app, checkout)
    error = caught.value
    assert ["abra", "app", "deploy", app.domain, "1.0.0+1.0"] == error.command[:5]
    assert 1 == error.returncode
    assert "FATA deploy failed: network proxy not found" in error.output
    assert "FATA deploy failed" in str(error)


@pytest.mark.docker
def test_checkout_outside_the_runs_recipes_dir_is_refused(
    abra: AbraDeployer, abra_log: Path, catalog: Catalog, app: AppName, tmp_path: Path
) -> None:
    """abra only reads recipes under ABRA_DIR/recipes: anything else is refused before running."""
    with (
        catalog.checkout("ccci-web", "1.0.0+1.0", tmp_path / "elsewhere") as checkout,
        pytest.raises(RecipeError),
    ):
        abra.deploy(app, checkout)
    assert [] == _calls(abra_log)


@pytest.mark.docker
def test_extra_env_compose_file_is_the_final_value_on_an_overlay_chain(
    abra: AbraDeployer, abra_log: Path, catalog: Catalog, operator_dir: Path
) -> None:
    """EXTRA_ENV COMPOSE_FILE replaces the whole chain, as the swarm deployer reads it."""
    app = cold_app("ccci-overlay", "t.ccci.example", uuid.uuid4().hex[:6], suffix=19)
    with catalog.checkout("ccci-overlay", None, abra.recipes_dir) as checkout:
        abra.new(app, checkout, {"COMPOSE_FILE": "compose.yml:compose.postgres.yml"})
    text = (operator_dir / "servers" / "ci-host" / f"{app.domain}.env").read_text()
    assert "compose.yml:compose.postgres.yml" == envfile.parse_env(text)["COMPOSE_FILE"]


@pytest.mark.docker
def test_remove_that_leaves_a_secret_is_an_error(
    abra: AbraDeployer, abra_log: Path, app: AppName, docker_client: docker.DockerClient
) -> None:
    """abra's secrets carry no label of ours: one left named ``<stack>_...`` is still found."""
    left = docker_client.secrets.create(name=f"{app.stack}_api_key_v1", data=b"x")
    try:
        with pytest.raises(DeployError, match=f"{app.stack}_api_key_v1"):
            abra.remove(app)
    finally:
        left.remove()


@pytest.mark.abra
def test_real_abra_round_trip(
    docker_client: docker.DockerClient,
    catalog: Catalog,
    tmp_path: Path,
    web_image: str,
    free_port: int,
) -> None:
    """With a real abra on PATH: new → deploy → undeploy → remove leaves no volume."""
    if shutil.which("abra") is None:
        pytest.skip("no abra binary on PATH (it cannot be installed on these machines)")
    operator = Path.home() / ".abra"
    deployer = AbraDeployer.for_run(stacks(docker_client), tmp_path / "run", operator)
    app = cold_app("ccci-web", "t.ccci.example", uuid.uuid4().hex[:6], suffix=10)
    with catalog.checkout("ccci-web", "1.0.0+1.0", deployer.recipes_dir) as checkout:
        deployer.new(app, checkout, {"WEB_IMAGE": web_image, "HTTP_PORT": str(free_port)})
        try:
            assert "1.0.0+1.0" == deployer.deploy(app, checkout).version
            deployer.undeploy(app)
            assert deployer.deployed(app) is None
        finally:
            deployer.remove(app)
    assert [] == deployer.volumes(app)
