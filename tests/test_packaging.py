"""The wheel users install: it must carry the project templates and the
``ragrev`` entry point, and ``ragrev init`` must work from it alone.

The wheel is built from a copy of the source tree (so no ``build/`` or
``*.egg-info`` lands in the repository) with ``pip wheel --no-deps
--no-build-isolation`` (``wheel`` is in the ``test`` extra; without it the
build falls back to pip's isolated build). The wheel is then unpacked into a
directory that goes first on ``PYTHONPATH``, and ``python -m ragrev init``
runs from there, outside the source tree, so the templates it writes come
from inside the wheel.

With ``RAGREV_TEST_INSTALLED=1`` (set by ``.ci/run``, which ``pip install``\\ s
the package into a fresh virtual environment) the ``ragrev`` console script of
that environment is run too.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["setup.cfg", "setup.py", "pyproject.toml", "README.md", "ragrev", "templates"]
TEMPLATES = sorted(p.name for p in (REPO / "templates").iterdir() if (p / "revision.py.tmpl").is_file())
PROJECT_TEMPLATES = sorted(p.name for p in (REPO / "templates").iterdir() if (p / "ragrev.toml").is_file())


def _can_build_in_place() -> bool:
    """setuptools>=64 here, and bdist_wheel (from ``wheel``, or built into setuptools>=70.1)."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(x) for x in re.findall(r"\d+", setuptools.__version__)[:2])
    return version >= (70, 1) or (version >= (64, 0) and importlib.util.find_spec("wheel") is not None)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(out)]
    if _can_build_in_place():
        cmd.insert(5, "--no-build-isolation")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    (whl,) = out.glob("ragrev-*.whl")
    return whl


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


@pytest.mark.slow  # builds the wheel
def test_the_wheel_carries_templates_and_the_entry_point(wheel):
    assert TEMPLATES and "generic" in PROJECT_TEMPLATES and "multistore" in PROJECT_TEMPLATES
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry = z.read(entry_points).decode()
    for t in TEMPLATES:
        assert f"ragrev/templates/{t}/revision.py.tmpl" in names
    for t in PROJECT_TEMPLATES:
        assert f"ragrev/templates/{t}/ragrev.toml" in names
    assert "ragrev/templates/generic/ragrev.toml" in names
    assert {"ragrev/__init__.py", "ragrev/cli.py", "ragrev/graph.py", "ragrev/ops/__init__.py",
            "ragrev/stores/__init__.py", "ragrev/drivers/milvus/__init__.py", "ragrev/drivers/mongo/store.py",
            "ragrev/drivers/sql/chats.py", "ragrev/drivers/pgvector/store.py"} <= names
    assert not any(n.startswith(("tests/", "templates/", "benchmarks/")) for n in names)
    lines = [ln.replace(" ", "") for ln in entry.splitlines()]
    assert "[console_scripts]" in lines and "ragrev=ragrev.cli:main" in lines


def _from_wheel(site: Path, args, cwd: Path):
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("RAGREV_CONFIG", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow  # builds the wheel
@pytest.mark.parametrize("template", PROJECT_TEMPLATES)
def test_init_from_the_unpacked_wheel(unpacked, tmp_path, template):
    p = _from_wheel(unpacked, ["-c", "import ragrev.templating as t; print(t.shipped_templates_dir())"], tmp_path)
    assert p.returncode == 0 and Path(p.stdout.strip()) == unpacked / "ragrev" / "templates", p.stderr
    p = _from_wheel(unpacked, ["-m", "ragrev", "init", "proj", "--template", template], tmp_path)
    assert p.returncode == 0, p.stderr
    shipped = (REPO / "templates" / template / "ragrev.toml").read_text()
    assert (tmp_path / "proj" / "ragrev.toml").read_text() == shipped
    assert (tmp_path / "proj" / "revisions").is_dir()
    p = _from_wheel(unpacked, ["-m", "ragrev", "-c", "proj/ragrev.toml", "revision", "-m", "first"], tmp_path)
    assert p.returncode == 0, p.stderr
    (rev,) = (tmp_path / "proj" / "revisions").glob("*_first.py")
    assert "def upgrade(op):" in rev.read_text()


def test_python_m_ragrev_help(tmp_path):
    p = subprocess.run([sys.executable, "-m", "ragrev", "--help"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Usage: ragrev [OPTIONS] COMMAND [ARGS]...")
    for command in ("init", "revision", "upgrade", "downgrade", "history", "heads", "branches", "show", "merge"):
        assert f"\n  {command} " in p.stdout


@pytest.mark.skipif(os.environ.get("RAGREV_TEST_INSTALLED") != "1",
                    reason="set RAGREV_TEST_INSTALLED=1 (as .ci/run does) to test the installed package")
def test_the_installed_console_script(tmp_path):
    bindir = Path(sys.executable).parent
    script = bindir / ("ragrev.exe" if os.name == "nt" else "ragrev")
    assert script.is_file(), f"no console script at {script}"
    env = {k: v for k, v in os.environ.items() if k not in ("RAGREV_CONFIG", "PYTHONPATH")}
    p = subprocess.run([sys.executable, "-c", "import ragrev.templating as t; print(t.shipped_templates_dir())"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    where = Path(p.stdout.strip())
    assert where.name == "templates" and where.parent.name == "ragrev" and REPO not in where.parents, where
    p = subprocess.run([str(script), "init", "proj", "--template", "multistore"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "proj" / "ragrev.toml").read_text() == (REPO / "templates/multistore/ragrev.toml").read_text()
    p = subprocess.run([str(script), "-c", "proj/ragrev.toml", "revision", "-m", "first"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(list((tmp_path / "proj" / "revisions").glob("*_first.py"))) == 1
