"""Archive to ``s3://`` and restore, through fsspec/s3fs, against moto's
S3-compatible server on a loopback port (skipped when s3fs or moto's server
is not installed). Credentials and endpoint come from the environment
(``AWS_*``), never from the revision."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers.chats import CHATS, messages

s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs) — s3:// archives untested")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed — no local S3 to test against")


@pytest.fixture
def s3(monkeypatch):
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    fs.bucket = "chats-" + uuid.uuid4().hex[:8]  # moto's state is per process: one bucket per test
    fs.mkdir(fs.bucket)
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
def test_archive_to_s3_and_restore(chat_env, s3, fmt):
    env = chat_env
    env.seed(messages(30, 4, step_hours=24 * 3))
    before = env.raw()
    env.project.add("s1", None, f'''
        def upgrade(op):
            {CHATS}.archive(older_than="30d", to="s3://{s3.bucket}/cold", format="{fmt}")
    ''')
    env.project.cli("upgrade", "head")
    assert env.raw() == {}
    keys = s3.find(f"{s3.bucket}/cold")
    data = [k for k in keys if not k.endswith(".manifest.json")]
    assert data and len(keys) == 2 * len(data) and all(k.split("/")[3][:4] == "2024" for k in data)
    pointers = env.rows("conversations_archive")
    assert len(pointers) == 30 and {p["root"] for p in pointers} == {f"s3://{s3.bucket}/cold"}

    s3fs.S3FileSystem.clear_instance_cache()
    env.project.cli("downgrade", "base")
    assert env.raw() == before
