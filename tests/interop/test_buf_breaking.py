"""tools/buf-breaking.sh (the ``buf breaking`` step of ``make test``) picks a baseline that makes the check mean something.

Each test builds a small git repository of its own (a buf module with one
proto) in a temporary directory, makes the commits and branches of one
situation, and runs the script there with the real buf.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .support import ROOT, run

SCRIPT = ROOT / "tools" / "buf-breaking.sh"
BREAKING = 100  # buf's exit code for breaking changes found
PROTO = "protos/demo/shop/v1/shop.proto"


def _proto(*fields: str) -> str:
    body = "".join(f"  // Field {i + 1}.\n  {field} = {i + 1};\n" for i, field in enumerate(fields))
    return f'syntax = "proto3";\n\n// Demo.\npackage demo.shop.v1;\n\n// Item is sold.\nmessage Item {{\n{body}}}\n'


class Repo:
    """A git repository with buf.yaml, tools/buf-breaking.sh and node_modules/.bin/buf (a link to casemesh's)."""

    def __init__(self, path: Path, buf: str):
        self.path = path
        (path / "tools").mkdir(parents=True)
        shutil.copy(SCRIPT, path / "tools" / SCRIPT.name)
        (path / "node_modules" / ".bin").mkdir(parents=True)
        (path / "node_modules" / ".bin" / "buf").symlink_to(buf)
        (path / ".gitignore").write_text("node_modules/\n")
        (path / "buf.yaml").write_text("version: v2\nmodules:\n  - path: protos\nbreaking:\n  use:\n    - FILE\n")
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        done = run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=self.path, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def write(self, relative: str, text: str) -> None:
        (self.path / relative).parent.mkdir(parents=True, exist_ok=True)
        (self.path / relative).write_text(text)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def check(self, cwd: Path | None = None, **env: str):
        return run(["bash", "tools/buf-breaking.sh"], cwd=cwd or self.path, env=env, timeout=60)


@pytest.fixture
def repo(tmp_path, buf) -> Repo:
    made = Repo(tmp_path / "repo", buf)
    made.write(PROTO, _proto("string name", "int64 price_cents"))
    made.commit("shop contract")
    return made


def test_clean_main_checks_the_newest_contract_change(repo):
    first = repo.check()
    assert first.returncode == 0 and "skipped, no commit before the newest change" in first.stdout

    repo.write(PROTO, _proto("string name", "int64 price_cents", "string sku"))  # additive
    repo.commit("add sku")
    repo.write("README.md", "docs\n")
    repo.commit("docs")
    additive = repo.check()
    assert additive.returncode == 0, additive.stdout + additive.stderr
    assert "the newest commit that changed protos/" in additive.stdout

    repo.write(PROTO, _proto("string name", "string price_cents", "string sku"))  # int64 → string
    repo.commit("price as text")
    repo.write("README.md", "more docs\n")
    repo.commit("docs after the break")  # what CI sees: the break is not the last commit
    broken = repo.check()
    assert broken.returncode == BREAKING
    assert 'changed type from "int64" to "string"' in broken.stdout + broken.stderr


def test_uncommitted_changes_on_main_are_checked_against_head(repo):
    repo.write("protos/demo/cart/v1/cart.proto", _proto("string id").replace("shop", "cart"))  # a new package, untracked
    assert repo.check().returncode == 0
    repo.write(PROTO, _proto("string title", "int64 price_cents"))  # renamed field
    renamed = repo.check()
    assert renamed.returncode == BREAKING and "HEAD (the uncommitted changes" in renamed.stdout
    assert 'changed name from "name" to "title"' in renamed.stdout + renamed.stderr


def test_feature_branch_in_a_worktree_is_checked_against_its_merge_base(repo, tmp_path):
    repo.git("branch", "feature")
    # main moves on: someone adds a field and a new package
    repo.write(PROTO, _proto("string name", "int64 price_cents", "string colour"))
    repo.write("protos/demo/video/v1/video.proto", _proto("string id").replace("shop", "video"))
    repo.commit("main adds colour and a video package")
    worktree = tmp_path / "feature"
    repo.git("worktree", "add", "-q", str(worktree), "feature")
    (worktree / "node_modules").symlink_to(repo.path / "node_modules")

    # Against main's tip the branch seems to delete what main added since: the spurious failure avoided here.
    naive = run([str(repo.path / "node_modules/.bin/buf"), "breaking", "--against", ".git#branch=main"], cwd=worktree, timeout=60)
    assert naive.returncode == BREAKING
    # The branch adds a package of its own: fine against its merge-base.
    (worktree / "protos/demo/orders/v1").mkdir(parents=True)
    (worktree / "protos/demo/orders/v1/orders.proto").write_text(_proto("string id").replace("shop", "orders"))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    assert run([*git, "add", "-A"], cwd=worktree, timeout=30).returncode == 0
    assert run([*git, "commit", "-qm", "orders package"], cwd=worktree, timeout=30).returncode == 0
    branch = repo.check(cwd=worktree)
    assert branch.returncode == 0, branch.stdout + branch.stderr
    assert "merge-base of HEAD with main" in branch.stdout
    # ... and a real break on the branch is still caught.
    (worktree / PROTO).write_text(_proto("string name"))  # price_cents deleted
    deleted = repo.check(cwd=worktree)
    assert deleted.returncode == BREAKING and "price_cents" in deleted.stdout + deleted.stderr


def test_the_baseline_can_be_given(repo):
    repo.write(PROTO, _proto("string name"))
    repo.commit("drop price")
    given = repo.check(BUF_BREAKING_AGAINST=".git#ref=HEAD~1")
    assert given.returncode == BREAKING and "(BUF_BREAKING_AGAINST)" in given.stdout
