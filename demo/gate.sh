#!/usr/bin/env bash
# Demo of what has landed so far: a throwaway recipe repository with four releases, then the
# release-note gate on two upgrades (one applies, one holds). Grows into a full run as the plugin lands.
set -euo pipefail
cc_ci=${CC_CI:-.venv/bin/cc-ci}
repo=$(mktemp -d)/demo-recipe
trap 'rm -rf "$(dirname "$repo")"' EXIT
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.org GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.org
git init -q -b main "$repo"
release() { # release VERSION [NOTE]
  mkdir -p "$repo/release"
  echo "image: demo:${1#*+}" > "$repo/compose.yml"
  [ -n "${2:-}" ] && printf '%s\n' "$2" > "$repo/release/$1"
  git -C "$repo" add -A && git -C "$repo" commit -q -m "release $1" && git -C "$repo" tag "$1"
}
release 1.0.0+2.4.0
release 1.0.1+2.4.1 "Security fix."
release 1.1.0+2.5.0 "Breaking change: the DB_HOST variable is now DATABASE_HOST."
release 2.0.0+3.0.0 "New major version of the app."

echo "== versions of $repo"
"$cc_ci" versions "$repo"
echo
echo "== 1.0.0 → 1.0.1 (patch, harmless note)"
"$cc_ci" versions "$repo" --from 1.0.0+2.4.0 --to 1.0.1+2.4.1 | tail -n +6 && echo "exit 0: apply"
echo
echo "== 1.0.1 → latest (a skipped note asks for a migration, and it is a major bump)"
if "$cc_ci" versions "$repo" --from 1.0.1+2.4.1 | tail -n +6; then echo "exit 0"; else echo "exit $?: hold"; fi
