#!/usr/bin/python3
"""A daemon for tests/integration/test_daemon.py. It records one run per file
DREC_DIR/run-<pid>: a first line "start <ts> <token> <pid> <node>", then a
line "hb <ts>" every 0.1 s (so a run's end is known even after SIGKILL) and
"end <ts>" on TERM. Behaviour by environment:

  DREC_FAIL=1        exit 1 at once (a crash-looping daemon)
  DREC_CHECKINS=N    check in N times (every 0.2 s) on FORQ_CHECKIN_FD, then never
  DREC_CHECKIN=1     check in with every heartbeat
  DREC_REDIS_PORT=P  with every heartbeat, a write fenced by FORQ_DAEMON_TOKEN
                     to 127.0.0.1:P: refused once a higher token has written;
                     refusals are logged as "refused <ts>" lines
"""
import os
import signal
import socket
import sys
import time

FENCE = ("local max = tonumber(redis.call('GET', KEYS[1]) or '0') "
         "if tonumber(ARGV[1]) < max then return 0 end "
         "redis.call('SET', KEYS[1], ARGV[1]) return 1")


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def fenced_write(sock, token):
    sock.sendall(resp("EVAL", FENCE, 1, "test:fence", token))
    reply = sock.recv(64)
    return reply.startswith(b":1")


def main():
    if os.environ.get("DREC_FAIL") == "1":
        sys.exit(1)
    d = os.environ["DREC_DIR"]
    token = os.environ.get("FORQ_DAEMON_TOKEN", "0")
    node = os.environ.get("DREC_NODE", "?")
    path = os.path.join(d, f"run-{os.getpid()}")
    f = open(path, "a", buffering=1)
    f.write(f"start {time.time():.6f} {token} {os.getpid()} {node}\n")

    def on_term(signum, frame):
        f.write(f"end {time.time():.6f}\n")
        f.close()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    fd = int(os.environ["FORQ_CHECKIN_FD"]) if "FORQ_CHECKIN_FD" in os.environ else None
    checkins = int(os.environ.get("DREC_CHECKINS", "-1"))
    every = os.environ.get("DREC_CHECKIN") == "1"
    sock = None
    if os.environ.get("DREC_REDIS_PORT"):
        sock = socket.create_connection(("127.0.0.1", int(os.environ["DREC_REDIS_PORT"])))
    i = 0
    while True:
        now = time.time()
        f.write(f"hb {now:.6f}\n")
        if sock and not fenced_write(sock, token):
            f.write(f"refused {now:.6f}\n")
        if fd is not None and (every or (i % 2 == 0 and checkins > 0)):
            os.write(fd, b".")
            if not every:
                checkins -= 1
        i += 1
        time.sleep(0.1)


main()
