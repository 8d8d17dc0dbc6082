"""Every run record says who ran it and the project's git commit (asked
once per runner, when its first revision runs; ``current`` never asks)."""
from __future__ import annotations

import subprocess

import sqlalchemy as sa


def test_run_records_name_the_user_host_and_git_commit(make_project):
    p = make_project({"meta": "sqlite:///./var/meta.db"})
    p.add("a1", None, 'def upgrade(op):\n    op.meta.create_table("t", sa.Column("id", sa.Integer, primary_key=True))\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=p.root, check=True)
    subprocess.run(git + ["add", "-A"], cwd=p.root, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "a1"], cwd=p.root, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=p.root, capture_output=True, text=True).stdout.strip()
    p.cli("upgrade", "head")
    engine = sa.create_engine(f"sqlite:///{p.root}/var/meta.db")
    with engine.connect() as c:
        runs = c.execute(sa.text("SELECT git_commit, username, hostname FROM ragrev_log WHERE type = 'run'")).all()
    engine.dispose()
    assert len(runs) == 1 and runs[0][0] == head and runs[0][1] and runs[0][2]
