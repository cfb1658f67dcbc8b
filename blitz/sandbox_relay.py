"""The relay that gives a jailed agent CLI its one way out: inside the jail's own network
namespace it listens on ``127.0.0.1:<port>`` and forwards every connection to blitz's model
proxy through the unix socket mounted into the jail; then it starts the agent and exits with it.

It runs as ``python -I -S -c SOURCE socket port -- command...`` with the standard library only,
so it starts in a few tens of milliseconds and needs nothing of blitz inside the jail.
"""

from __future__ import annotations

import sys

SOURCE = r"""
import os, socket, sys, threading
path, port, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[4:]
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(128)

def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def serve(conn):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        conn.close()
        return
    back = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
    back.start()
    pipe(conn, upstream)
    back.join()
    conn.close()
    upstream.close()

def accept():
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

try:
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
except OSError as exc:
    sys.stderr.write("blitz sandbox: cannot start %s: %s\n" % (cmd[0], exc))
    sys.exit(127)
threading.Thread(target=accept, daemon=True).start()
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


def command(socket_path: str, port: int) -> list[str]:
    """The relay's command line (the agent's command follows it, after ``--``)."""
    return [sys.executable, "-I", "-S", "-c", SOURCE, socket_path, str(port)]
