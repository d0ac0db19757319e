"""The recipe catalog: recipe repositories, their versions and notes, and per-run checkouts.

A recipe lives in ``<recipes_dir>/<recipe>/`` as a git repository. Runs never work in that shared
checkout: :meth:`Catalog.checkout` makes a private clone under the run's directory at the version or
ref the run needs and removes it when the run ends, so concurrent runs on one recipe never see each
other's files. A ref is a version tag, a commit, or a pull-request head ``refs/pull/N/head``, which
is fetched on demand from the shared repository's ``origin`` (the forge).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import CcciError, GitError, InvalidName, UnknownRecipe, VersionError
from .gate import ReleaseNote
from .git import Git
from .names import validate_recipe
from .versions import Version, latest, parse_tags

PULL_REF_RE = re.compile(r"refs/pull/(?P<number>[1-9]\d{0,9})/head")
_COMMIT_RE = re.compile(r"[0-9a-f]{7,40}")
_TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_NOTE_DIRS = ("release", "releaseNotes")


def validate_ref(ref: object) -> str:
    """Return ``ref`` if it is a tag, commit or PR head ref we can check out safely."""
    if not isinstance(ref, str) or not ref:
        raise InvalidName("ref", ref, "empty")
    if PULL_REF_RE.fullmatch(ref) or _COMMIT_RE.fullmatch(ref):
        return ref
    if _TAG_RE.fullmatch(ref) and ".." not in ref and not ref.endswith((".lock", ".")):
        return ref
    raise InvalidName("ref", ref, "expected a tag, a commit sha or refs/pull/<N>/head")


@dataclass(frozen=True)
class Checkout:
    """A run's private checkout of a recipe."""

    recipe: str
    path: Path
    ref: str | None  # what was asked for; None means latest
    commit: str
    version: Version | None  # the version tag checked out, None for a chaos (non-tag) ref

    @property
    def chaos(self) -> bool:
        """Return whether this is not a release (abra deploys it with ``--chaos``)."""
        return self.version is None


def note_path_version(path: str) -> Version | None:
    """Return the version a release-note path belongs to, or None if it is not one."""
    folder, _, name = path.partition("/")
    if folder not in _NOTE_DIRS or "/" in name:
        return None
    if folder == "releaseNotes":
        if not name.endswith(".md"):
            return None
        name = name[: -len(".md")]
    try:
        return Version.parse(name)
    except VersionError:
        return None


def versions_of(repo: Path, git: Git) -> list[Version]:
    """Return the version tags of a git repository, oldest first."""
    return parse_tags(git("tag", "--list", cwd=repo).splitlines())


def release_notes(repo: Path, revs: list[str], git: Git) -> list[ReleaseNote]:
    """Return the release notes found in the trees of ``revs`` (deduplicated by path and text)."""
    seen: dict[tuple[str, str], ReleaseNote] = {}
    for rev in revs:
        listing = git("ls-tree", "-r", "--name-only", "-z", rev, "--", *_NOTE_DIRS, cwd=repo)
        for path in filter(None, listing.split("\0")):
            version = note_path_version(path)
            if version is None:
                continue
            text = git("cat-file", "blob", f"{rev}:{path}", cwd=repo)
            seen.setdefault((path, text), ReleaseNote(version, path, text))
    return list(seen.values())


def gate_notes(repo: Path, target: Version, git: Git) -> list[ReleaseNote]:
    """Return the notes the gate reads for a move to ``target``: at its tag and on HEAD.

    A note written after the tag (on the default branch) still counts.
    """
    revs = [f"refs/tags/{target}"]
    if git.succeeds("rev-parse", "--verify", "--quiet", "HEAD", cwd=repo):
        revs.append("HEAD")
    return release_notes(repo, revs, git)


class Catalog:
    """Recipe repositories under one directory."""

    def __init__(self, recipes_dir: Path, git: Git | None = None) -> None:
        self.recipes_dir = recipes_dir
        self.git = git or Git()

    def repo(self, recipe: str) -> Path:
        """Return the shared repository of ``recipe``, or raise UnknownRecipe."""
        path = self.recipes_dir / validate_recipe(recipe)
        if not (path / ".git").exists():
            raise UnknownRecipe(f"no recipe repository {recipe!r} in {self.recipes_dir}")
        return path

    def versions(self, recipe: str) -> list[Version]:
        """Return the recipe's versions, oldest first."""
        return versions_of(self.repo(recipe), self.git)

    def latest(self, recipe: str) -> Version | None:
        """Return the recipe's newest version, or None when it has no release tag."""
        return latest(self.versions(recipe))

    def notes(self, recipe: str, target: Version) -> list[ReleaseNote]:
        """Return the release notes the gate reads for a move to ``target`` (:func:`gate_notes`)."""
        return gate_notes(self.repo(recipe), target, self.git)

    @contextmanager
    def checkout(
        self, recipe: str, ref: str | None, run_dir: Path, *, sha: str | None = None
    ) -> Iterator[Checkout]:
        """Yield a private checkout of ``recipe`` at ``ref`` (latest if None); remove it after.

        With ``sha`` (the head the forge reported when the build was asked for) the checkout is
        exactly that commit: a pull-request head that moved since is not what is tested. A tag or
        commit ``ref`` must already be ``sha``.
        """
        source = self.repo(recipe)
        if ref is not None:
            validate_ref(ref)
        if sha is not None and not _COMMIT_RE.fullmatch(sha):
            raise InvalidName("sha", sha, "expected a lowercase hex commit id")
        dest = run_dir / recipe
        if dest.exists():
            raise CcciError(f"checkout {dest} already exists; is another run using it?")
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            # A local clone hardlinks objects: cheap, and immune to later gc in the shared repo.
            self.git("clone", "--quiet", "--no-checkout", "--", str(source), str(dest))
            rev, version = self._resolve(source, dest, recipe, ref)
            if sha is not None:
                rev, version = self._pin(source, dest, recipe, ref, rev, sha), version
            self.git("checkout", "--quiet", "--detach", rev, "--", cwd=dest)
            commit = self.git("rev-parse", "HEAD", cwd=dest).strip()
            yield Checkout(recipe, dest, ref, commit, version)
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def _resolve(
        self, source: Path, dest: Path, recipe: str, ref: str | None
    ) -> tuple[str, Version | None]:
        if ref is None:
            newest = latest(versions_of(dest, self.git))
            return (f"refs/tags/{newest}", newest) if newest else ("origin/HEAD", None)
        if PULL_REF_RE.fullmatch(ref):
            upstream = self._upstream(source)
            fetched = f"+{ref}:refs/ccci/head"
            try:
                self.git("fetch", "--quiet", "--no-tags", "--", upstream, fetched, cwd=dest)
            except GitError as exc:
                if self._lacks(upstream, ref):
                    reason = f"recipe {recipe!r} has no such pull request head"
                    raise InvalidName("ref", ref, reason) from exc
                raise  # the forge did not answer: not the caller's fault
            return "refs/ccci/head", None
        if self.git.succeeds("rev-parse", "--verify", "--quiet", f"refs/tags/{ref}", cwd=dest):
            try:
                return f"refs/tags/{ref}", Version.parse(ref)
            except VersionError:
                return f"refs/tags/{ref}", None
        if _COMMIT_RE.fullmatch(ref) and self.git.succeeds(
            "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=dest
        ):
            return ref, None
        raise InvalidName("ref", ref, f"recipe {recipe!r} has no such tag or commit")

    def _pin(
        self, source: Path, dest: Path, recipe: str, ref: str | None, rev: str, sha: str
    ) -> str:
        """Return ``sha`` as the revision to check out, fetching it if the PR head moved."""
        resolved = self.git("rev-parse", f"{rev}^{{commit}}", cwd=dest).strip()
        if resolved.startswith(sha):
            return resolved
        if ref is None or not PULL_REF_RE.fullmatch(ref):
            raise InvalidName("sha", sha, f"{ref or 'latest'} of {recipe!r} is {resolved[:12]}")
        if not self.git.succeeds("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", cwd=dest):
            upstream = self._upstream(source)
            if not self.git.succeeds(
                "fetch", "--quiet", "--no-tags", "--", upstream, sha, cwd=dest
            ):
                raise InvalidName(
                    "sha", sha, f"{ref} of {recipe!r} moved to {resolved[:12]} and {sha} is gone"
                )
        return self.git("rev-parse", f"{sha}^{{commit}}", cwd=dest).strip()

    def _lacks(self, upstream: str, ref: str) -> bool:
        """Return whether ``upstream`` answers and has no ``ref`` (ls-remote exits 2)."""
        try:
            self.git("ls-remote", "--exit-code", "--", upstream, ref)
        except GitError as exc:
            return exc.returncode == 2
        return False

    def _upstream(self, source: Path) -> str:
        """Return where PR refs come from: the shared repository's origin, else itself."""
        try:
            return self.git("config", "--get", "remote.origin.url", cwd=source).strip()
        except GitError:
            return str(source)
