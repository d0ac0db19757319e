"""The recipe catalog against real git repositories made in temporary directories."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from ccci_core.catalog import Catalog, note_path_version, release_notes, validate_ref
from ccci_core.errors import GitError, InvalidName, UnknownRecipe
from ccci_core.git import Git
from tests.gitrepo import commit, git, init


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A forge-side recipe repository with two releases, a later main and a PR head ref."""
    repo = init(tmp_path / "forge" / "app")
    commit(repo, {"compose.yml": "v1\n", "release/1.0.0+1.0": "first"}, "one", "1.0.0+1.0")
    commit(
        repo,
        {"compose.yml": "v2\n", "releaseNotes/1.1.0+1.1.md": "Breaking change"},
        "two",
        "1.1.0+1.1",
    )
    git(repo, "tag", "not-a-version")
    commit(repo, {"compose.yml": "main\n"}, "unreleased")
    git(repo, "checkout", "-q", "-b", "pr")
    pr_sha = commit(repo, {"compose.yml": "pr\n"}, "the PR")
    git(repo, "update-ref", "refs/pull/7/head", pr_sha)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "pr")
    return repo


@pytest.fixture
def catalog(tmp_path: Path, upstream: Path) -> Catalog:
    """A catalog whose shared checkout of ``app`` was cloned from the forge (no PR refs)."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    subprocess.run(["git", "clone", "-q", str(upstream), str(recipes / "app")], check=True)
    return Catalog(recipes, Git())


def test_versions_and_latest_ignore_odd_tags(catalog: Catalog) -> None:
    """Tags that are not versions are skipped; latest is the newest release."""
    assert ["1.0.0+1.0", "1.1.0+1.1"] == [str(v) for v in catalog.versions("app")]
    assert "1.1.0+1.1" == str(catalog.latest("app"))


def test_checkout_latest_by_default(catalog: Catalog, tmp_path: Path) -> None:
    """No ref means the newest release tag, checked out in the run's own directory."""
    run_dir = tmp_path / "run-1"
    with catalog.checkout("app", None, run_dir) as co:
        assert ("v2\n", "1.1.0+1.1", False) == (
            (co.path / "compose.yml").read_text(),
            str(co.version),
            co.chaos,
        )
        assert run_dir / "app" == co.path
    assert not (run_dir / "app").exists()


def test_checkout_a_tag_and_a_commit(catalog: Catalog, tmp_path: Path, upstream: Path) -> None:
    """A version tag gives a release checkout; a commit sha a chaos one."""
    with catalog.checkout("app", "1.0.0+1.0", tmp_path / "r1") as co:
        assert "v1\n" == (co.path / "compose.yml").read_text()
    sha = git(upstream, "rev-parse", "main")
    with catalog.checkout("app", sha[:12], tmp_path / "r2") as co:
        assert (sha, True, "main\n") == (co.commit, co.chaos, (co.path / "compose.yml").read_text())


def test_pull_request_head_is_fetched_on_demand(catalog: Catalog, tmp_path: Path) -> None:
    """refs/pull/N/head comes from the forge without touching the shared checkout's refs."""
    shared = catalog.repo("app")
    with catalog.checkout("app", "refs/pull/7/head", tmp_path / "r") as co:
        assert ("pr\n", True) == ((co.path / "compose.yml").read_text(), co.chaos)
    assert "" == git(shared, "for-each-ref", "refs/pull", "refs/ccci")


def test_concurrent_checkouts_do_not_see_each_other(catalog: Catalog, tmp_path: Path) -> None:
    """Two runs on one recipe at different refs each see only their own files."""
    seen: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def run(ref: str) -> None:
        with catalog.checkout("app", ref, tmp_path / ref.replace("/", "_")) as co:
            barrier.wait()
            (co.path / "scratch").write_text(ref)
            barrier.wait()
            seen[ref] = (co.path / "compose.yml").read_text() + (co.path / "scratch").read_text()

    threads = [
        threading.Thread(target=run, args=(ref,)) for ref in ("1.0.0+1.0", "refs/pull/7/head")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {"1.0.0+1.0": "v1\n1.0.0+1.0", "refs/pull/7/head": "pr\nrefs/pull/7/head"} == seen
    assert "" == git(catalog.repo("app"), "status", "--porcelain")


def test_checkout_is_removed_when_the_run_fails(catalog: Catalog, tmp_path: Path) -> None:
    """An exception inside the run still removes its checkout."""
    run_dir = tmp_path / "r"
    with pytest.raises(RuntimeError), catalog.checkout("app", None, run_dir):
        raise RuntimeError("the run blew up")
    assert [] == list(run_dir.iterdir())


@pytest.mark.parametrize("ref", ["no-such-tag", "deadbeef", "refs/pull/0/head"])
def test_unknown_refs_are_bad_input(catalog: Catalog, tmp_path: Path, ref: str) -> None:
    """A ref the recipe does not have is refused, and nothing is left behind."""
    with pytest.raises(InvalidName), catalog.checkout("app", ref, tmp_path / "r"):
        pass
    assert not (tmp_path / "r" / "app").exists()


def test_missing_pull_request_is_bad_input_and_leaves_nothing(
    catalog: Catalog, tmp_path: Path
) -> None:
    """A PR ref the forge answers it does not have is refused like an unknown tag."""
    with (
        pytest.raises(InvalidName) as caught,
        catalog.checkout("app", "refs/pull/9/head", tmp_path / "r"),
    ):
        pass
    assert "refs/pull/9/head" in str(caught.value)
    assert "no such pull request head" in str(caught.value)
    assert not (tmp_path / "r" / "app").exists()


def test_unreachable_forge_is_a_git_error_not_bad_input(
    catalog: Catalog, upstream: Path, tmp_path: Path
) -> None:
    """When the forge does not answer, fetching a PR head fails with git's reason (exit 1)."""
    git(catalog.repo("app"), "remote", "set-url", "origin", str(tmp_path / "gone"))
    with (
        pytest.raises(GitError) as caught,
        catalog.checkout("app", "refs/pull/7/head", tmp_path / "r"),
    ):
        pass
    assert (1, "fetch") == (caught.value.exit_code, caught.value.command[1])
    assert not (tmp_path / "r" / "app").exists()


@pytest.mark.parametrize(
    "ref", ["--upload-pack=x", "a..b", "refs/heads/main", "x y", "", "a.lock", "/abs"]
)
def test_unsafe_refs_are_refused(ref: str) -> None:
    """Refs that could be options, ranges or paths never reach git."""
    with pytest.raises(InvalidName):
        validate_ref(ref)


@pytest.mark.parametrize("recipe", ["missing", "../forge", "App"])
def test_unknown_or_invalid_recipe(catalog: Catalog, recipe: str) -> None:
    """A recipe the catalog does not hold, or an invalid name, is bad input."""
    with pytest.raises((UnknownRecipe, InvalidName)):
        catalog.repo(recipe)


def test_release_notes_from_both_folders(catalog: Catalog) -> None:
    """release/<v> and releaseNotes/<v>.md are both read, keyed by version."""
    notes = release_notes(catalog.repo("app"), ["refs/tags/1.1.0+1.1"], catalog.git)
    expected = [("release/1.0.0+1.0", "first"), ("releaseNotes/1.1.0+1.1.md", "Breaking change")]
    assert expected == sorted((n.path, n.text) for n in notes)


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("release/1.0.0+1.0", "1.0.0+1.0"),
        ("releaseNotes/1.0.0+1.0.md", "1.0.0+1.0"),
        ("release/next", None),
        ("releaseNotes/1.0.0+1.0", None),
        ("release/sub/1.0.0+1.0", None),
        ("docs/1.0.0+1.0", None),
    ],
)
def test_note_path_version(path: str, version: str | None) -> None:
    """Only notes named after a version count."""
    found = note_path_version(path)
    assert version == (None if found is None else str(found))


def _move_pr(upstream: Path, content: str, *, keep_history: bool) -> str:
    """Point refs/pull/7/head at a new commit (on top of the old head, or replacing it)."""
    old = git(upstream, "rev-parse", "refs/pull/7/head")
    git(upstream, "checkout", "-q", "--detach", old if keep_history else "main")
    new = commit(upstream, {"compose.yml": content}, "the PR, pushed again")
    git(upstream, "update-ref", "refs/pull/7/head", new)
    git(upstream, "checkout", "-q", "main")
    return old


@pytest.mark.parametrize("keep_history", [True, False])
def test_a_pinned_sha_is_tested_even_if_the_pull_request_moved(
    catalog: Catalog, tmp_path: Path, upstream: Path, keep_history: bool
) -> None:
    """CCCI_SHA wins over where the PR head is now: pushed on top, or force-pushed away."""
    old = _move_pr(upstream, "pushed later\n", keep_history=keep_history)

    with catalog.checkout("app", "refs/pull/7/head", tmp_path / "r", sha=old) as co:
        assert (old, "pr\n") == (co.commit, (co.path / "compose.yml").read_text())
    with catalog.checkout("app", "refs/pull/7/head", tmp_path / "r2") as co:
        assert "pushed later\n" == (co.path / "compose.yml").read_text()


@pytest.mark.parametrize(
    ("ref", "sha", "reason"),
    [
        ("refs/pull/7/head", "0" * 40, "is gone"),
        ("1.0.0+1.0", "0" * 40, r"1\.0\.0\+1\.0 of 'app' is"),
        (None, "0" * 40, "latest of 'app' is"),
        ("refs/pull/7/head", "--upload-pack=x", "lowercase hex"),
    ],
)
def test_a_sha_the_ref_does_not_have_is_bad_input(
    catalog: Catalog, tmp_path: Path, ref: str | None, sha: str, reason: str
) -> None:
    """A sha that is not the tag's, or that the forge no longer has, is refused; nothing left."""
    with (
        pytest.raises(InvalidName, match=reason),
        catalog.checkout("app", ref, tmp_path / "r", sha=sha),
    ):
        pass
    assert not (tmp_path / "r" / "app").exists()
