"""Run the Milvus standalone server of PyPI's ``milvus`` package (2.3.x) on
free ports, with the Python of the virtual environment it is installed in:

    <milvus-venv>/bin/python .ci/milvus_server.py DATA_DIR INFO_FILE

The package picks each port (gRPC proxy, etcd, the coordinators, and the
health/metrics port 9091) by trying to bind 127.0.0.1 from its default
upwards, so a second server on the machine takes the next free ones; only
the chosen metrics port is never written down (it goes to the child's
environment). This starts the server, then writes ``{"port": <gRPC port>,
"health": <metrics port>, "pid": <server pid>}`` to INFO_FILE once
``/healthz`` answers, and stays in the foreground until SIGTERM/SIGINT,
when it stops the server.
"""
import json
import os
import signal
import sys

from milvus import MilvusServer


def main() -> None:
    data, info = sys.argv[1], sys.argv[2]
    server = MilvusServer()
    server.set_base_dir(data)
    stop = lambda *_: (server.stop(), sys.exit(0))  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    tmp = info + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": server.listen_port, "health": server.webservice_port, "pid": server.server_proc.pid}, f)
    os.replace(tmp, info)
    server.wait()


if __name__ == "__main__":
    main()
