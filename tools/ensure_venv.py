"""Make or reuse the virtual environment that ./demo and ./test run in.

    python3 tools/ensure_venv.py VENV EXTRAS [--wheel]

Creates VENV when it does not exist and installs this checkout into it with
the given extras (``embedded``, ``all,test`` ...): editable by default, so
edits to ragrev/ count without reinstalling; ``--wheel`` installs a built
wheel instead, as users get it (``.ci/run`` uses that). An existing VENV is
reused when it already holds those extras of this setup.cfg (a stamp file
inside it records what was installed), so the second run installs nothing.

Needs only the Python that runs it (>= 3.11) and the network to PyPI: on a
Debian python3 without the ``python3-venv`` package (no ``ensurepip``), the
environment is made without pip and pip is bootstrapped from its wheel on
PyPI. System Python is never installed into (PEP 668).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = "ragrev-installed.json"


def say(text: str) -> None:
    print(f"== {text}", file=sys.stderr, flush=True)


def python_of(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def project_hash() -> str:
    h = hashlib.sha256()
    for name in ("setup.cfg", "setup.py", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()[:16]


def index_url() -> str | None:
    """The package index pip is set to use: ``PIP_INDEX_URL``, else ``index-url``
    in pip's configuration files (``PIP_CONFIG_FILE``, the site, user and global
    ones); None when nothing names one."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    import configparser

    paths = [os.environ.get("PIP_CONFIG_FILE"), os.path.join(sys.prefix, "pip.conf"),
             os.path.expanduser("~/.config/pip/pip.conf"), os.path.expanduser("~/.pip/pip.conf"),
             "/etc/xdg/pip/pip.conf", "/etc/pip.conf"]
    for path in filter(None, paths):
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        for section in ("install", "global"):
            if parser.has_option(section, "index-url"):
                return parser.get(section, "index-url").split()[0]
    return None


def bootstrap_pip(py: Path) -> None:
    """pip for an environment made without it: pip's newest wheel from the
    package index pip is set to use (the simple repository API's JSON form,
    PEP 691), checked against its SHA-256 and run as a zip to install itself."""
    index = index_url()
    if not index:
        sys.exit("tools/ensure_venv.py: this python3 has no ensurepip (on Debian: apt-get install python3-venv); "
                 "or set PIP_INDEX_URL to the package index to bootstrap pip from")
    request = urllib.request.Request(index.rstrip("/") + "/pip/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        files, base = json.load(r)["files"], r.geturl()

    def version(name: str) -> tuple:
        return tuple(int(x) if x.isdigit() else 0 for x in name.split("-")[1].split("."))

    wheels = [f for f in files if f["filename"].endswith(".whl") and not f.get("yanked")
              and f.get("hashes", {}).get("sha256")]
    wheel = max(wheels, key=lambda f: version(f["filename"]))
    url = urllib.parse.urljoin(base, wheel["url"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(url, timeout=120) as r:
            path.write_bytes(r.read())
        if hashlib.sha256(path.read_bytes()).hexdigest() != wheel["hashes"]["sha256"]:
            sys.exit("tools/ensure_venv.py: the pip wheel from the package index does not match its SHA-256")
        subprocess.run([str(py), f"{path}/pip", "install", "-q", "--no-index", str(path)], check=True)


def create(env: Path) -> None:
    say(f"creating a virtual environment in {env}")
    try:
        import ensurepip  # noqa: F401  (Debian ships it separately, in python3-venv)

        venv.EnvBuilder(with_pip=True).create(env)
    except (ImportError, subprocess.CalledProcessError):
        venv.EnvBuilder(with_pip=False, clear=True).create(env)
        say("no ensurepip in this Python: bootstrapping pip from the package index")
        bootstrap_pip(python_of(env))


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    env, extras = Path(args[0]).resolve(), sorted(filter(None, args[1].split(",")))
    mode = "wheel" if "--wheel" in argv else "editable"
    py = python_of(env)
    stamp = env / STAMP
    if py.exists() and stamp.exists():
        done = json.loads(stamp.read_text())
        if done.get("project") == project_hash() and done.get("mode") == mode and set(extras) <= set(done["extras"]):
            return 0
        extras = sorted(set(extras) | set(done["extras"]) if done.get("project") == project_hash() else extras)
    if not py.exists():
        create(env)
    spec = f".[{','.join(extras)}]" if extras else "."
    say(f"installing ragrev{spec[1:]} into {env} ({mode}; a few minutes the first time)")
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, *(["-e"] if mode == "editable" else []), spec], check=True, cwd=ROOT)
    stamp.write_text(json.dumps({"project": project_hash(), "mode": mode, "extras": extras}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
