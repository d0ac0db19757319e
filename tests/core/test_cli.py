"""The cc-ci command: --version, --help, versions and config, and their exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ccci_core import __version__
from ccci_core.cli import main
from tests.gitrepo import commit, git, init


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """A recipe repository: 1.0.0 → 1.0.1 (harmless) → 1.1.0 (asks for a migration) → 2.0.0."""
    repo = init(tmp_path / "app")
    commit(repo, {"compose.yml": "a"}, "a", "1.0.0+1.0")
    commit(repo, {"release/1.0.1+1.0": "bug fixes"}, "b", "1.0.1+1.0")
    commit(repo, {"releaseNotes/1.1.0+1.1.md": "Manual migration: run x"}, "c", "1.1.0+1.1")
    git(repo, "tag", "experiment")
    commit(repo, {"compose.yml": "b"}, "d", "2.0.0+2.0")
    return repo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run cc-ci in-process and return (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version."""
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert (0, f"cc-ci {__version__}\n") == (caught.value.code, capsys.readouterr().out)


def test_versions_lists_sorted_versions(capsys: pytest.CaptureFixture[str], recipe: Path) -> None:
    """Without --from/--to it prints the version tags, oldest first, and exits 0."""
    assert (0, "1.0.0+1.0\n1.0.1+1.0\n1.1.0+1.1\n2.0.0+2.0\n", "") == run(
        capsys, "versions", str(recipe)
    )


@pytest.mark.parametrize(
    ("start", "target", "code", "bump", "action"),
    [
        ("1.0.0+1.0", "1.0.1+1.0", 0, "patch", "apply"),
        ("1.0.1+1.0", "1.1.0+1.1", 1, "minor", "hold"),
        ("1.0.0+1.0", "1.1.0+1.1", 1, "minor", "hold"),
        ("1.1.0+1.1", "2.0.0+2.0", 1, "major", "hold"),
        ("2.0.0+2.0", "2.0.0+2.0", 0, "none", "none"),
    ],
)
def test_versions_gate_json(
    capsys: pytest.CaptureFixture[str],
    recipe: Path,
    start: str,
    target: str,
    code: int,
    bump: str,
    action: str,
) -> None:
    """--from/--to classify the bump and run the gate; exit 1 means hold."""
    got, out, _ = run(capsys, "versions", str(recipe), "--from", start, "--to", target, "--json")
    decision = json.loads(out)["decision"]
    assert (code, bump, action) == (got, decision["bump"], decision["action"])


def test_versions_to_defaults_to_latest(capsys: pytest.CaptureFixture[str], recipe: Path) -> None:
    """--from alone targets the latest version and prints the reasons."""
    code, out, _ = run(capsys, "versions", str(recipe), "--from", "1.0.1+1.0")
    assert 1 == code
    assert "1.0.1+1.0 → 2.0.0+2.0: major bump, HOLD" in out
    assert "releaseNotes/1.1.0+1.1.md asks for a manual migration" in out


def test_note_added_after_the_tag_still_counts(
    capsys: pytest.CaptureFixture[str], recipe: Path
) -> None:
    """A note committed on main after its version was tagged holds the upgrade too."""
    commit(recipe, {"release/1.0.1+1.0": "breaking change after all"}, "late note")
    code, _, _ = run(capsys, "versions", str(recipe), "--from", "1.0.0+1.0", "--to", "1.0.1+1.0")
    assert 1 == code


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--to", "1.0.1+1.0"], "--to needs --from"),
        (["--from", "9.9.9+9"], "not a version tag"),
        (["--from", "garbage"], "not a version"),
    ],
)
def test_versions_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], recipe: Path, args: list[str], reason: str
) -> None:
    """Bad flags exit 2 with one line on stderr."""
    code, _, err = run(capsys, "versions", str(recipe), *args)
    assert 2 == code
    assert reason in err
    assert 1 == len(err.strip().splitlines())


def test_versions_of_a_plain_directory_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A directory that is not a git repository is bad input."""
    code, _, err = run(capsys, "versions", str(tmp_path))
    assert (2, f"cc-ci: {tmp_path} is not a git repository\n") == (code, err)


def test_config_prints_resolved_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """cc-ci config shows each CCCI_* value a component would use."""
    monkeypatch.setenv("CCCI_MAX_TESTS", "2")
    code, out, _ = run(capsys, "config", "agent", "--json")
    assert (0, 2) == (code, json.loads(out)["CCCI_MAX_TESTS"])


AGENT_READS = {
    "CCCI_AGENT_SOCKET",
    "CCCI_DOMAIN",
    "CCCI_STATE_DIR",
    "CCCI_SOCKET_GROUP",
    "CCCI_MAX_TESTS",
    "CCCI_VOLUME_WAIT",
    "CCCI_AGENT_THREADS",
    "CCCI_TAR",
}
PLUGIN_READS = {
    "CCCI_AGENT_SOCKET",
    "CCCI_DOMAIN",
    "CCCI_RECIPES_DIR",
    "CCCI_DEPLOYER",
    "CCCI_TESTS_DIR",
    "CCCI_ABRA_DIR",
    "CCCI_ABRA_SERVER",
    "CCCI_HEALTH_PROBE",
    "CCCI_RUNS_DIR",
    "CCCI_APPS_DIR",
    "CCCI_LEASE_WAIT_S",
    "CCCI_RESULT_FILE",
    "CCCI_KEYCLOAK_URL",
    "CCCI_KEYCLOAK_ADMIN_USER",
    "CCCI_KEYCLOAK_ADMIN_PASSWORD",
}


PRUNE_READS = {"CCCI_AGENT_SOCKET", "CCCI_PRUNE_THRESHOLD"}
RELAY_READS = {
    "CCCI_AGENT_SOCKET",
    "CCCI_MATRIX_HOMESERVER",
    "CCCI_MATRIX_ROOM",
    "CCCI_MATRIX_TOKEN",
    "CCCI_ALERT_WEBHOOK_URL",
}


@pytest.mark.parametrize(
    ("component", "reads"),
    [
        ("agent", AGENT_READS),
        ("plugin", PLUGIN_READS),
        ("prune", PRUNE_READS),
        ("relay", RELAY_READS),
    ],
)
def test_config_shows_every_setting_a_component_reads(
    capsys: pytest.CaptureFixture[str], component: str, reads: set[str]
) -> None:
    """cc-ci config lists each variable the component's code reads, and only those."""
    code, out, _ = run(capsys, "config", component, "--json")
    assert (0, reads) == (code, set(json.loads(out)))


def test_operator_commands_find_the_agent_through_ccci_agent_socket(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """cc-ci status asks the agent on CCCI_AGENT_SOCKET and says in one line that none answers."""
    socket = tmp_path / "agent.sock"
    monkeypatch.setenv("CCCI_AGENT_SOCKET", str(socket))

    code, _, err = run(capsys, "status")

    said = f"cc-ci: the host agent is not reachable on {socket}: "
    assert (2, True, 1) == (code, err.startswith(said), len(err.splitlines()))


def test_operator_commands_read_no_other_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bad CCCI_DOMAIN or CCCI_DEPLOYER (not the operator's) does not stop cc-ci status."""
    socket = tmp_path / "agent.sock"
    monkeypatch.setenv("CCCI_AGENT_SOCKET", str(socket))
    monkeypatch.setenv("CCCI_DOMAIN", "Not A Domain")
    monkeypatch.setenv("CCCI_DEPLOYER", "helm")

    code, _, err = run(capsys, "status")

    said = f"cc-ci: the host agent is not reachable on {socket}: "
    assert (2, True) == (code, err.startswith(said))


def test_console_script_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    """The installed cc-ci exits 2 with one line naming the variable, no traceback."""
    cc_ci = Path(sys.executable).with_name("cc-ci")
    done = subprocess.run(
        [str(cc_ci), "config", "plugin"],
        capture_output=True,
        text=True,
        env={"CCCI_DEPLOYER": "helm", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert 2 == done.returncode
    assert done.stderr.startswith("cc-ci: CCCI_DEPLOYER: ")
    assert "Traceback" not in done.stderr
    assert 1 == len(done.stderr.strip().splitlines())


# What each deployable's install lacks (pyproject's extras): the parser must build without it.
_LACKS = {
    "plugin": ["flask", "werkzeug", "gunicorn"],
    "bridge": ["docker", "keycloak", "yaml"],
    "agent": ["keycloak"],
    "core": ["requests", "flask", "werkzeug", "gunicorn", "docker", "keycloak", "yaml"],  # bare
}
_BLOCKED_RUN = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # an import of it raises ImportError, as if not installed
from ccci_core.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    ("install", "argv"),
    [
        ("plugin", ["--help"]),
        ("plugin", ["run", "--help"]),
        ("plugin", ["relay", "--help"]),
        ("bridge", ["--help"]),
        ("bridge", ["bridge", "serve", "--help"]),
        ("bridge", ["relay", "--help"]),
        ("agent", ["--help"]),
        ("agent", ["agent", "serve", "--help"]),
        ("agent", ["relay", "--help"]),
        ("core", ["--help"]),
        ("core", ["relay", "--help"]),
    ],
)
def test_each_install_builds_the_parser_without_the_others_dependencies(
    install: str, argv: list[str]
) -> None:
    """``pip install '.[plugin]'`` has no Flask, the bridge no docker: ``cc-ci`` still starts."""
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, ",".join(_LACKS[install]), *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (0, "") == (done.returncode, done.stderr), done.stderr
    assert "usage: cc-ci" in done.stdout


def test_relay_without_requests_says_what_to_install(tmp_path: Path) -> None:
    """A bare core install has no requests: a configured relay says so in one line, exit 2."""
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, ",".join(_LACKS["core"]), "relay"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CCCI_ALERT_WEBHOOK_URL": "https://hooks.example.org/x"},
    )
    said = "cc-ci: relay needs requests (pip install 'cc-ci[agent]'): "
    assert (2, True, 1) == (
        done.returncode,
        done.stderr.startswith(said),
        len(done.stderr.splitlines()),
    )
