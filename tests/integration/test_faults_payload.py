"""Payloads forq cannot carry as they are (issue #10, defects 5 and 7): one
with a NUL byte, and a jid longer than the 127 bytes a running job's jid may
have. Each goes to the dead set, every byte of it, leaves no working list
behind, and nothing loops on it; a jid up to the limit is carried whole."""
import json
import os
import signal
import subprocess
import time

import redis

from conftest import FORQ, wait_until
from test_jobs import handler

# A whole Sidekiq job up to the NUL, so a reader that stops there runs it.
def nul_payload(name):
    return (json.dumps({"class": "Nul", "args": [name], "jid": name * 24,
                        "queue": "default"}).encode() + b"\x00tail")


def rbytes(url):
    return redis.Redis.from_url(url)


def runs_file(tmpdir, name, seconds=0):
    """An exec handler that appends its jid to <tmpdir>/<name>.runs."""
    runs = os.path.join(tmpdir, name + ".runs")
    h = handler(tmpdir, name + ".sh", f'sleep {seconds}\necho "$FORQ_JID" >> {runs}\n')
    return h, runs


def busy_lanes(r):
    return [k for k in r.keys(b"forq:working:*") if r.llen(k)]


def test_nul_payload_goes_to_the_dead_set_whole(forq, redis_server, tmpdir_path):
    r = rbytes(redis_server)
    h, runs = runs_file(tmpdir_path, "nul")
    queued, scheduled, retried = nul_payload("q"), nul_payload("s"), nul_payload("r")
    r.lpush("queue:default", queued)
    r.sadd("queues", "default")
    r.zadd("schedule", {scheduled: time.time() - 1})   # the poller moves them whole
    r.zadd("retry", {retried: time.time() - 1})
    f = forq(config=f'[forq]\nprocesses = 1\n[job "Nul"]\nexec = {h}\n')
    wait_until(lambda: r.zcard("dead") == 3, 30, what=f"3 dead:\n{f.text()[-2000:]}")
    assert set(r.zrange("dead", 0, -1)) == {queued, scheduled, retried}
    assert not os.path.exists(runs)                     # the job before the NUL never ran
    assert r.llen("queue:default") == 0 and not busy_lanes(r)
    assert r.zcard("schedule") == 0 and r.zcard("retry") == 0
    assert len(f.lines(r"malformed job sent to the dead set.* NUL byte at offset")) == 3
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0


def test_recovery_of_a_nul_payload_makes_progress(forq, redis_server, tmpdir_path):
    r = rbytes(redis_server)
    h = handler(tmpdir_path, "long.sh", "sleep 60\n")
    f = forq(config=f'[forq]\nprocesses = 1\n[job "LongJob"]\nexec = {h}\n')
    workers = f.wait_workers(1)
    long_job = json.dumps({"class": "LongJob", "args": [], "jid": "l" * 24,
                           "queue": "default"}).encode()
    r.lpush("queue:default", long_job)
    wait_until(lambda: f.worker_titles() == ["forq: worker[0] busy LongJob"], 10, what="busy")
    lane = busy_lanes(r)[0]
    r.lpush(lane, nul_payload("n"))      # as if fetched in a batch behind the running job
    f.signal(signal.SIGTSTP)             # quiet: what comes back stays in the queue
    f.wait_log("quiet")
    os.kill(workers[0][0], signal.SIGKILL)
    wait_until(lambda: r.llen("queue:default") == 2, 15, what=f"both back:\n{f.text()[-2000:]}")
    assert r.lrange("queue:default", 0, -1) == [long_job, nul_payload("n")]  # NUL one at the front
    assert not busy_lanes(r)
    f.wait_log(r"jobs of a dead worker recovered.* requeued=2")
    f.signal(signal.SIGTERM)             # a master not stuck in recovery stops
    assert f.wait_exit(20) == 0


def test_jid_forq_cannot_carry_is_refused_and_dead_unrun(forq, redis_server, tmpdir_path):
    r = rbytes(redis_server)
    h, runs = runs_file(tmpdir_path, "u", 4)
    cfg = f'[forq]\nprocesses = 1\nunique_lease = 2\n[job "U"]\nexec = {h}\nunique = until_executed\n'
    long_jid, max_jid = "j" * 200, "m" * 127
    push = subprocess.run([FORQ, "push", "--jid", long_jid, "U", "[1]"], capture_output=True,
                          text=True, env=dict(os.environ, REDIS_URL=redis_server), timeout=10)
    assert push.returncode == 64 and "jid must be at most 127 bytes" in push.stderr, push
    assert r.llen("queue:default") == 0
    # What a Ruby client may write: a long jid, and one at the limit.
    for jid, arg in ((long_jid, 1), (max_jid, 2)):
        r.lpush("queue:default", json.dumps({"class": "U", "args": [arg], "jid": jid,
                                             "queue": "default", "retry": True}))
    r.sadd("queues", "default")
    f = forq(config=cfg)
    wait_until(lambda: r.zcard("dead") == 1, 15, what=f"dead:\n{f.text()[-2000:]}")
    dead = json.loads(r.zrange("dead", 0, -1)[0])
    assert dead["jid"] == long_jid and dead["error_class"] == "Forq::InvalidJob"
    assert "jid is 200 bytes, longer than the 127" in dead["error_message"]
    f.wait_log(f"job sent to the dead set unrun.* jid={long_jid}")
    # The one at the limit runs, and its lease is renewed under its whole jid
    # past unique_lease (2 s), so no duplicate could start beside it.
    locks = lambda: {k: r.get(k) for k in r.keys(b"forq:unique:*")}
    wait_until(lambda: list(locks().values()) == [max_jid.encode()], 10, what="lock taken")
    time.sleep(3)
    assert list(locks().values()) == [max_jid.encode()]
    wait_until(lambda: os.path.exists(runs), 15, what="the job at the limit ran")
    assert open(runs).read().split() == [max_jid]
    wait_until(lambda: not locks(), 5, what="lock released")
    assert r.llen("queue:default") == 0 and not busy_lanes(r)
