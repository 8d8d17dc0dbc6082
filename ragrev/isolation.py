"""``check`` and ``review`` load revision files, and loading one runs its code
(as Alembic does): a pull request's revisions may be untrusted. So these
commands import them in a child process (``python -m ragrev.isolation``)
whose environment holds none of the store URLs' secrets:

- the child gets the configuration as data, every store URL masked
  (``user:***@``, ``?token=***``): the store kinds are all that planning a
  revision needs, and the child never reads ``ragrev.toml`` (whose
  ``${VAR}`` would read the secrets from the environment);
- its environment is this process's without the variables ``ragrev.toml``
  refers to (``${VAR}``), without ``RAGREV_CONFIG``, and without any variable
  whose value holds a secret of a store URL (a password, a token);
- it prints its report as JSON; ``check --stores`` then compares the
  checksums the child computed with each store's journal here, in the
  parent, which connects to the stores but never imports a revision file
  (the child also sends the graph's headers).

The child still runs with the user's rights and file system: this keeps the
store credentials out of a revision's reach, it is not a sandbox.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ragrev.errors import RagrevError, StepFailed

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
#: set in the child: it runs the command itself
CHILD_FLAG = "RAGREV_ISOLATED_CHILD"


def child_environment(config) -> dict:
    """This process's environment without what could give a revision the stores' secrets."""
    from ragrev.config import KNOWN_SECRETS, secrets_of

    try:
        text = config.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    referenced = set(_REF.findall(text))
    secrets = {s for st in config.stores.values() for s in secrets_of(st.url)} | set(KNOWN_SECRETS)
    secrets = {s for s in secrets if len(s) >= 3}
    env = {}
    for name, value in os.environ.items():
        if name in referenced or name == "RAGREV_CONFIG" or any(s in value for s in secrets):
            continue
        env[name] = value
    env[CHILD_FLAG] = "1"
    return env


def _config_data(config) -> dict:
    from ragrev.config import mask_url, scrub

    return {
        "path": str(config.path), "script_location": str(config.script_location),
        "file_template": config.file_template, "lock_timeout": config.lock_timeout, "lock_lease": config.lock_lease,
        "options": {k: v for k, v in config.options.items() if isinstance(v, (str, int, float, bool))},
        "stores": {n: {"url": mask_url(s.url), "kind": s.kind,
                       "options": {k: (scrub(v) if isinstance(v, str) else v) for k, v in s.options.items()}}
                   for n, s in config.stores.items()},
    }


def _config_from(data: dict):
    from ragrev.config import Config, StoreConfig

    stores = {n: StoreConfig(n, s["url"], s["kind"], s["options"]) for n, s in data["stores"].items()}
    return Config(path=Path(data["path"]), script_location=Path(data["script_location"]), stores=stores,
                  file_template=data["file_template"], lock_timeout=data["lock_timeout"],
                  lock_lease=data["lock_lease"], options=data.get("options") or {})


def run(config, command: str, **kwargs) -> dict:
    """Run ``command`` (``check`` or ``review``) in the isolated child; its result."""
    request = {"command": command, "config": _config_data(config), "kwargs": kwargs}
    proc = subprocess.run([sys.executable, "-m", "ragrev.isolation"], input=json.dumps(request), text=True,
                          capture_output=True, env=child_environment(config), cwd=os.getcwd())
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise StepFailed(f"{command}: the process loading the revisions failed (exit {proc.returncode}): {tail}") \
            from None
    if "error" in answer:
        err = RagrevError(answer["error"])
        err.exit_code = answer["exit_code"]
        raise err
    return answer


def _child() -> int:
    from ragrev import review as rv

    request = json.loads(sys.stdin.read())
    config = _config_from(request["config"])
    kwargs = request["kwargs"]
    try:
        if request["command"] == "check":
            report, plans, graph = rv.check_report(config)
            answer = {"report": report,
                      "checksums": {p.revision: p.checksum for p in plans},
                      "former_checksums": {p.revision: p.former_checksum for p in plans if p.former_checksum},
                      "paths": {p.revision: str(p.script.path) for p in plans},
                      "graph": [{"revision": r.revision, "down_revision": list(r.down_revision),
                                 "branch_labels": list(r.branch_labels), "depends_on": list(r.depends_on),
                                 "path": r.path} for r in graph.revisions.values()] if graph is not None else None}
        else:
            answer = {"report": rv.review(config, kwargs.get("base"), isolate=False)}
    except RagrevError as e:
        answer = {"error": str(e), "exit_code": e.exit_code}
    sys.stdout.write("\n" + json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover - run as the child
    sys.exit(_child())
