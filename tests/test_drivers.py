"""The driver registry: a third-party driver registered through the
``ragrev.drivers`` entry-point group is found by URL scheme, with no edit to
ragrev; built-in drivers are found without installation."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_entry_point_driver_is_found_by_scheme(tmp_path):
    (tmp_path / "toy_driver.py").write_text(textwrap.dedent("""\
        from ragrev.drivers import Driver
        DRIVER = Driver("toy", "toy", "vector", "toy_driver:ToyStore", schemes=("toy",), path_schemes=("toy",),
                        operations="milvus")
        # a driver claiming a built-in scheme does not take it over
        THIEF = Driver("thief", "thief", "sql", "toy_driver:X", schemes=("milvus-lite",))
        """))
    dist = tmp_path / "toy_driver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-driver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ragrev.drivers]\ntoy = toy_driver:DRIVER\nthief = toy_driver:THIEF\n"
                                           "broken = toy_driver:MISSING\n")
    code = textwrap.dedent("""\
        from pathlib import Path
        from ragrev.config import store_kind, resolve_url_path
        from ragrev.ops import operations_for
        print(store_kind("toy:///./data"), store_kind("milvus-lite:///x.db"), store_kind("pgvector:///./pg"),
              store_kind("postgresql+psycopg://h/db"), store_kind("pgvector+postgresql://h/db"))
        print(resolve_url_path("toy:///./data", Path("/base")), resolve_url_path("pgvector+postgresql://h/db", Path("/b")))
        print("create_collection" in operations_for("toy"))
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["toy milvus pgvector sql pgvector", "toy:////base/data pgvector+postgresql://h/db",
                                          "True"]
