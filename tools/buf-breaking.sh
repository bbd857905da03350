#!/usr/bin/env bash
# buf breaking (the FILE rules of buf.yaml) of protos/ against main, for `make test`.
#
# `buf breaking --against '.git#branch=main'` alone is wrong in both places it runs:
#   - CI runs on a fresh clone of main, so main's tip *is* the work tree: the check compares main with itself
#     and always passes.
#   - On a feature branch (or a worktree of one), main's tip has moved on with other people's work: new files,
#     messages and fields that the branch does not have yet look deleted by the branch, a spurious failure.
# So the baseline is chosen by where this runs (BUF_BREAKING_AGAINST=<buf input> overrides it):
#   1. HEAD is not on main's line (a feature branch or worktree): the merge-base with main, the contract the
#      branch started from. The branch's committed and uncommitted changes are both checked.
#   2. On main (or a commit main contains) with uncommitted changes under protos/: HEAD, i.e. the change
#      being made, before it is committed.
#   3. On main with a clean protos/ (CI): the parent of the newest commit that changed protos/, i.e. the latest
#      contract change is checked, whatever commits came after it. Earlier changes were checked when they were
#      the latest. A shallow clone without that parent is reported and skipped, not failed.
# New files, packages, messages, fields and RPCs are never breaking under FILE rules: new proto packages
# (casemesh.video.v1, casemesh.harness.v1, ...) pass. Deliberately breaking a published contract means a new
# package version (v2) beside the old one, not an edit.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF="${BUF:-node_modules/.bin/buf}"

if [[ -n "${BUF_BREAKING_AGAINST:-}" ]]; then
  echo "buf breaking: against $BUF_BREAKING_AGAINST (BUF_BREAKING_AGAINST)"
  exec "$BUF" breaking --against "$BUF_BREAKING_AGAINST"
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "buf breaking: skipped, not a git checkout (nothing to compare against)"
  exit 0
fi

head=$(git rev-parse HEAD)
base="" why=""
if git rev-parse -q --verify 'refs/heads/main^{commit}' >/dev/null; then
  merge_base=$(git merge-base HEAD main || true)
  if [[ -n "$merge_base" && "$merge_base" != "$head" ]]; then
    base=$merge_base why="the merge-base of HEAD with main"
  fi
fi
if [[ -z "$base" ]]; then
  if [[ -n "$(git status --porcelain --untracked-files=all -- protos)" ]]; then
    base=$head why="HEAD (the uncommitted changes under protos/)"
  else
    latest=$(git log -1 --format=%H -- protos)
    if [[ -z "$latest" ]] || ! git rev-parse -q --verify "$latest^1^{commit}" >/dev/null; then
      echo "buf breaking: skipped, no commit before the newest change of protos/ in this clone (shallow or first commit)"
      exit 0
    fi
    base=$(git rev-parse "$latest^1") why="the parent of ${latest:0:12}, the newest commit that changed protos/"
  fi
fi
echo "buf breaking: against ${base:0:12}, $why"
exec "$BUF" breaking --against ".git#ref=$base"
