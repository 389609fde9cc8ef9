"""Redis faults under a cluster daemon (issue 10, defect 6): when Redis loses
its data (a restart without persistence), forq:daemon:<name>:epoch restarts,
yet a token must never repeat or go back, and no token may be handed out
while a holder from before still runs. Each test starts its own
redis-server (no persistence) so it can restart it on the same port; the
daemon is tests/bin/daemon_rec.py, which records its runs in files."""
import os
import signal
import subprocess
import time

import redis as redispy

from conftest import alive, free_port, wait_until
from test_daemon import (ACQUIRE, TTL, assert_no_overlap, config, holder, node_of, rundir,
                         run_with_token, runs, start_node, track)
from test_jobs import rconn


class Redis:
    """A redis-server without persistence on a free loopback port, which can
    be stopped by pid and started afresh on the same port."""

    def __init__(self, tmpdir):
        self.port, self.dir, self.proc = free_port(), tmpdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = rconn(self.url)

        def up():
            try:
                return r.ping()
            except redispy.exceptions.ConnectionError:
                return False
        try:
            wait_until(up, 10, what="redis-server")
        except BaseException:
            self.stop()
            raise
        finally:
            r.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def two_nodes(forq, redis, d):
    nodes = []
    for i in range(2):
        n = start_node(forq, d, i, env={"REDIS_URL": redis.url})
        n.label = str(i)
        nodes.append(n)
    return nodes


def test_daemon_token_never_repeats_after_redis_restarts_empty(forq, tmpdir_path):
    """The old holder's master renews late (SIGSTOPped for 1.5 s, less than
    its fence of TTL/2): before the fix the other node took token 1 again
    from the emptied Redis while the old daemon, also token 1, ran on."""
    d = rundir(tmpdir_path)
    redis = Redis(tmpdir_path)
    nodes = []
    try:
        nodes = two_nodes(forq, redis, d)
        r = rconn(redis.url)
        ident, token = wait_until(lambda: holder(r), 15, what="a holder")
        old = wait_until(lambda: run_with_token(d, token), 5, what="the holder's daemon")
        time.sleep(2 * ACQUIRE)                 # the other node has seen the token
        track(nodes, d)
        slow = node_of(nodes, ident)
        os.kill(slow.pid, signal.SIGSTOP)
        try:
            redis.stop()
            restarted = time.time()
            redis.start()
            time.sleep(1.5)
        finally:
            os.kill(slow.pid, signal.SIGCONT)
        new = wait_until(lambda: next((x for x in runs(d) if x["pid"] != old["pid"]), None),
                         3 * TTL + 5, what="a daemon started after the restart")
        time.sleep(0.5)
        track(nodes, d)
        assert new["token"] > token, runs(d)
        assert_no_overlap(runs(d))
        assert holder(r)[1] == new["token"]
        assert int(r.get("forq:daemon:rec:epoch")) == new["token"]
        print("tokens:", [x["token"] for x in runs(d)],
              "takeover after the restart (s): %.2f" % (new["start"] - restarted))
    finally:
        track(nodes, d)
        redis.stop()


def test_holder_outrun_by_a_higher_token_stops_and_hands_over(forq, redis_server, tmpdir_path):
    """A node that knew a higher token raised the epoch (here set by hand):
    the holder's next renewal stops its daemon, releases the lease once the
    daemon is gone, and the next token is above the one that outran it."""
    d = rundir(tmpdir_path)
    r = rconn(redis_server)
    node = start_node(forq, d, 0)
    node.label = "0"
    try:
        _, token = wait_until(lambda: holder(r), 15, what="a holder")
        old = wait_until(lambda: run_with_token(d, token), 5, what="the holder's daemon")
        r.set("forq:daemon:rec:epoch", token + 10)
        new = wait_until(lambda: next((x for x in runs(d) if x["token"] > token), None),
                         TTL + ACQUIRE + 3, what="a daemon with a higher token")
        track([node], d)
        assert new["token"] == token + 11
        assert not alive(old["pid"])
        assert_no_overlap(runs(d))
        node.wait_log(r'daemon lease outrun by a higher token" daemon=rec token=%d' % token)
        node.wait_log(r'daemon lease released" daemon=rec token=%d' % token)
    finally:
        track([node], d)
