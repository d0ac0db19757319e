"""The recipe's own tests run in a child pytest that sees the app, not cc-ci's secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccci_plugin.recipe_tests import run_tests


def test_the_child_sees_the_app_env_and_none_of_our_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CCCI_APP_URL reaches the tests; a token in cc-ci's own environment does not."""
    monkeypatch.setenv("CCCI_FORGE_TOKEN", "never-for-a-recipe")
    monkeypatch.setenv("CCCI_KEYCLOAK_ADMIN_PASSWORD", "never-either")
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "test_env.py").write_text(
        "import os\n\n"
        "def test_env():\n"
        "    assert os.environ['CCCI_APP_URL'] == 'http://127.0.0.1:1'\n"
        "    assert 'CCCI_FORGE_TOKEN' not in os.environ\n"
        "    assert 'CCCI_KEYCLOAK_ADMIN_PASSWORD' not in os.environ\n"
        "    assert os.environ['PATH']\n"
    )

    outcome = run_tests(folder, {"CCCI_APP_URL": "http://127.0.0.1:1"}, tmp_path / "junit.xml")

    assert (True, True, 1) == (outcome.ran, outcome.passed, outcome.total), outcome.output


def test_a_relative_tests_dir_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CCCI_TESTS_DIR's default is relative (``tests``, the CI repository's clone in Drone)."""
    monkeypatch.chdir(tmp_path)
    folder = Path("tests") / "ccci-web"
    folder.mkdir(parents=True)
    (folder / "test_ok.py").write_text("def test_ok():\n    pass\n")

    outcome = run_tests(folder, {}, Path("junit.xml"))

    assert (True, True, 1) == (outcome.ran, outcome.passed, outcome.total), outcome.output
