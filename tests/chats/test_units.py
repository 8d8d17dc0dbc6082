"""The pieces without a store: the lossless codec, cutoffs, archive roots,
part files and manifests, and the operation objects."""
from __future__ import annotations

import datetime as dt
import decimal
import math
import subprocess
import sys
import uuid

import pytest

from ragrev.chats import archive, codec
from ragrev.errors import Irreversible, OperationError
from ragrev.ops.chats import ArchiveChats, ChatNamespace, RemapSessions

UTC = dt.timezone.utc


def test_typed_json_round_trips_every_sql_value():
    row = {"id": 7, "when": dt.datetime(2024, 5, 1, 12, 0, 0, 123456), "aware": dt.datetime(2024, 5, 1, tzinfo=UTC),
           "day": dt.date(2024, 5, 1), "at": dt.time(8, 30, 1, 5), "price": decimal.Decimal("10.010"),
           "blob": b"\x00\xff", "uid": uuid.UUID(int=5), "inf": math.inf, "none": None, "ok": True,
           "doc": {"$weird": [1, "two", {"a": None}], "plain": 1.5}, "list": [1, [2, 3]]}
    line = codec.dumps(row)
    back = codec.loads(line)
    assert back == {**row, "list": [1, [2, 3]]} and list(back) == list(row)
    assert codec.dumps(back) == line
    assert math.isnan(codec.loads(codec.dumps({"x": math.nan}))["x"])
    with pytest.raises(TypeError, match="cannot archive a value of type object"):
        codec.dumps({"x": object()})


def test_keys_and_hashes():
    bson = pytest.importorskip("bson")
    oid = bson.ObjectId()
    for key in ["s1", 5, oid, uuid.UUID(int=3), bson.Int64(9)]:
        assert codec.key_from_text(codec.key_text(key)) == key
        assert codec.decode_key(codec.encode_key(key)) == key
    assert codec.decode_key("plain") == "plain"
    a = {"_id": 1, "s": "x", "t": 2, "c": "hi"}
    b = {"c": "hi", "t": 2, "s": "x", "_id": 99}
    assert codec.content_hash(a, "_id") == codec.content_hash(b, "_id")
    assert codec.content_hash(a, "_id") != codec.content_hash(dict(a, c="ho"), "_id")
    assert codec.chain_hash(["a" * 64, "b" * 64]) != codec.chain_hash(["b" * 64, "a" * 64])


def test_cutoffs():
    now = dt.datetime(2025, 1, 31, tzinfo=UTC)
    assert archive.cutoff("90d", now) == now - dt.timedelta(days=90)
    assert archive.cutoff(3600, now) == now - dt.timedelta(hours=1)
    assert archive.cutoff(dt.timedelta(days=1), now) == now - dt.timedelta(days=1)
    assert archive.cutoff("2024-06-01", now) == dt.datetime(2024, 6, 1, tzinfo=UTC)
    assert archive.cutoff(dt.date(2024, 6, 1), now) == dt.datetime(2024, 6, 1, tzinfo=UTC)
    with pytest.raises(OperationError, match="older_than='soon'"):
        archive.cutoff("soon", now)
    assert archive.to_utc(0) == dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert archive.to_utc("nope") is None and archive.month_of(now) == "2025-01"


def test_roots(tmp_path):
    assert archive.open_root("file://./cold", tmp_path).path == str(tmp_path / "cold")
    assert archive.open_root("cold/x", tmp_path).path == str(tmp_path / "cold" / "x")
    assert archive.open_root(f"file://{tmp_path}/abs", "/elsewhere").path == str(tmp_path / "abs")
    root = archive.open_root("memory://ragrev-test/cold", tmp_path)
    assert not root.local and root.location("a/b") == "memory:///ragrev-test/cold/a/b"
    with pytest.raises(OperationError, match="nosuch"):
        archive.open_root("nosuch://x/y", tmp_path)


def test_s3_without_s3fs_is_a_clear_error(tmp_path):
    import importlib.util

    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(OperationError, match="pip install s3fs"):
            archive.open_root("s3://bucket/cold", tmp_path)
    else:
        pytest.skip("s3fs is installed (tests/chats/test_s3.py covers s3://)")


def lines(n, session="s"):
    out = []
    for i in range(n):
        text = codec.dumps({"id": i, "session_id": f"{session}{i // 3}", "ts": dt.datetime(2024, 1, 1, 0, i)})
        out.append(archive.Line(f"{session}{i // 3}", text, codec.sha256_text(text), dt.datetime(2024, 1, 1, 0, i)))
    return out


@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
@pytest.mark.parametrize("url", ["file://./cold", "memory://chat-units/cold"])
def test_parts_write_verify_and_detect_damage(tmp_path, fmt, url):
    root = archive.open_root(url + "-" + fmt, tmp_path)
    part = lines(10)
    manifest = archive.write_part(root, "conv/2024-01", part, fmt, {"month": "2024-01"})
    assert manifest["messages"] == 10 and [s["count"] for s in manifest["sessions"]] == [3, 3, 3, 1]
    again = archive.write_part(root, "conv/2024-01", part, fmt, {"month": "2024-01"})
    assert again["path"] == manifest["path"] and again["sha256"] == manifest["sha256"]
    got, texts = archive.load_part(root, manifest["path"], manifest["sha256"])
    assert texts == [x.text for x in part]
    assert archive.session_lines(root, manifest["path"], got, texts, "s1", manifest["sessions"][1]["checksum"], 3) \
        == [x.text for x in part[3:6]]
    with pytest.raises(archive.ArchiveDamaged, match="no session"):
        archive.session_lines(root, manifest["path"], got, texts, "zz", None, None)
    data = bytearray(archive.read_bytes(root, root.full(manifest["path"])))
    data[-20] ^= 1
    archive.put_durable(root, root.full(manifest["path"]), bytes(data))
    with pytest.raises(archive.ArchiveDamaged, match=r"conv/2024-01/part-.* is damaged"):
        archive.load_part(root, manifest["path"], manifest["sha256"])


def test_operation_objects():
    ops = []

    def emit(o):  # as the recorder does: keep it, hand it back
        ops.append(o)
        return o

    ns = ChatNamespace(emit, "conversations", {"order_key": "seq"})
    with pytest.raises(OperationError, match="unknown option"):
        ChatNamespace(emit, "c", {"order": "x"})
    a = ns.archive("90d", to="file://./cold")
    assert a.keys["order_key"] == "seq" and a.destructive and a.data_step
    assert a.describe().startswith("chats('conversations').archive(older_than='90d'")
    with pytest.raises(OperationError, match="format='csv'"):
        ns.archive("90d", format="csv").validate()
    with pytest.raises(OperationError, match="older_than"):
        ns.archive("someday").validate()
    with pytest.raises(Irreversible):
        a.reverse({})
    (restore,) = a.reverse({"tag": "r1:abc"})
    assert restore.name == "restore" and restore.tag == "r1:abc"
    (back,) = restore.reverse({"restored": [{"to": "file://./cold", "format": "jsonl.gz", "sessions": ["s1"]}]})
    assert back.name == "archive" and back.sessions == ["s1"] and back.older_than is None
    back.validate()
    r = ns.remap_sessions({"a": "b"})
    assert r.reverse(None)[0].pairs == [["b", "a"]]
    with pytest.raises(OperationError, match="two sessions map"):
        RemapSessions("c", {}, mapping={"a": "x", "b": "x"}).validate()
    fn = ns.remap_sessions(lambda s: s.upper())
    with pytest.raises(Irreversible):
        fn.reverse({})
    assert fn.reverse({"inverse": [["A", "a"]]})[0].pairs == [["A", "a"]]
    m = ns.merge_from("other.conversations")
    with pytest.raises(OperationError, match="on_conflict"):
        ns.merge_from("x", on_conflict="rename").validate()
    assert m.reverse({"ids": [1, 2]})[0].ids == [1, 2]
    assert ns.check_sequence().reverse(None) == []
    assert a.digest() == ArchiveChats("conversations", dict(a.keys), older_than="90d", to="file://./cold").digest()


def test_ops_module_imports_no_driver():
    code = ("import sys; from ragrev.ops.chats import ChatNamespace as C; "
            "C(lambda o: o, 'c', {}).archive('90d', format='parquet').validate(); "
            "bad = [m for m in ('pymongo', 'bson', 'sqlalchemy', 'pyarrow', 'fsspec') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
