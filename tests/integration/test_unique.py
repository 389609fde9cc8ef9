"""Unique jobs (DESIGN.md §6.3): locks at push, at start and while running,
their TTLs and leases, and what retries, dead jobs and dead nodes do to them.
Executions are counted by an exec handler that appends to a file."""
import hashlib
import json
import os
import signal
import subprocess
import time

from conftest import FORQ, proc_children, wait_until
from test_jobs import handler, rconn


def lock_key(cls, args, queue="default", run=False):
    """forq:unique:<sha1 of class, queue, canonical args> (the contract)."""
    canon = json.dumps(args, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha1(f"{cls}\n{queue}\n{canon}".encode()).hexdigest()
    return f"forq:unique:{digest}" + (":run" if run else "")


CONFIG = {}  # the config file `forq push` reads, by Redis URL (one per test)


def push2(url, cls, args="[]", *extra):
    """forq push with the test's config: (jid or "", stderr)."""
    r = subprocess.run([FORQ, "push", cls, args, "-C", CONFIG[url], *extra],
                       capture_output=True, text=True, env=dict(os.environ, REDIS_URL=url),
                       timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip(), r.stderr


def raw_push(r, cls, args, jid, queue="default"):
    """What a Ruby Sidekiq client writes: no forq fields, no lock."""
    payload = json.dumps({"retry": True, "queue": queue, "class": cls, "args": args,
                          "jid": jid, "created_at": time.time(), "enqueued_at": time.time()})
    r.sadd("queues", queue)
    r.lpush(f"queue:{queue}", payload)


def recorder(tmpdir, name, seconds=0.0, fail=False):
    """Exec handler: records "jid start end" per run in <tmpdir>/<name>.runs."""
    runs = os.path.join(tmpdir, name + ".runs")
    body = (f'start=$(date +%s.%N)\nsleep {seconds}\n'
            f'echo "$FORQ_JID $start $(date +%s.%N)" >> {runs}\n')
    if fail:
        body += "exit 1\n"
    return handler(tmpdir, name + ".sh", body), runs


def runs_of(path):
    if not os.path.exists(path):
        return []
    return [l.split() for l in open(path).read().splitlines()]


def config(url, tmpdir, jobs, processes=1, extra=""):
    """The config text for forq, also written to a file for forq push."""
    text = f"[forq]\nprocesses = {processes}\n{extra}\n{jobs}"
    CONFIG[url] = os.path.join(tmpdir, "push.ini")
    with open(CONFIG[url], "w") as f:
        f.write(text)
    return text


def test_until_executed_drops_duplicates_queued_and_running(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "slow", 2)
    r = rconn(redis_server)
    cfg = config(redis_server, tmpdir_path,
                 f'[job "Slow"]\nexec = {h}\nunique = until_executed\n', 2)
    # pushed twice before any worker runs: one job
    first, _ = push2(redis_server, "Slow", '[1, {"b": 2, "a": 1}]')
    dup, err = push2(redis_server, "Slow", '[1,{"a":1,"b":2}]')  # same args, other key order
    assert first and not dup
    assert f"held by jid {first}" in err
    key = lock_key("Slow", [1, {"a": 1, "b": 2}])
    assert r.get(key) == first and 3500 < r.ttl(key) <= 3600
    assert r.llen("queue:default") == 1
    f = forq(config=cfg)
    wait_until(lambda: r.llen("queue:default") == 0, 10, what="job fetched")
    # while it runs: the lock is a runtime lease; a push is refused ...
    wait_until(lambda: 0 < r.ttl(key) <= 30, 5, what="lock turned into a lease")
    dup, err = push2(redis_server, "Slow", '[1,{"a":1,"b":2}]')
    assert not dup and first in err
    # ... and a Ruby client's raw duplicate is dropped at start, unrun
    raw_push(r, "Slow", [1, {"b": 2, "a": 1}], "0123456789abcdef01234567")
    f.wait_log("duplicate unique job dropped.* jid=0123456789abcdef01234567.* "
               f"holder={first}")
    f.wait_log(f"job done.* jid={first}")
    wait_until(lambda: not r.exists(key), 5, what="lock released after success")
    assert [run[0] for run in runs_of(runs)] == [first]
    assert int(r.get("stat:failed") or 0) == 0
    # after success a new push is accepted and runs
    again, _ = push2(redis_server, "Slow", '[1,{"a":1,"b":2}]')
    assert again
    f.wait_log(f"job done.* jid={again}")
    assert not [k for k in r.keys("forq:working:*") if r.llen(k)]


def test_ruby_client_job_takes_the_lock_at_start(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "r", 2)
    r = rconn(redis_server)
    f = forq(config=config(redis_server, tmpdir_path, f'[job "R"]\nexec = {h}\nunique = until_executed\n', 2))
    f.wait_workers(2)
    raw_push(r, "R", ["x"], "a" * 24)
    key = lock_key("R", ["x"])
    wait_until(lambda: r.get(key) == "a" * 24, 5, what="lock taken at start")
    raw_push(r, "R", ["x"], "b" * 24)
    f.wait_log("duplicate unique job dropped.* jid=" + "b" * 24)
    f.wait_log("job done.* jid=" + "a" * 24)
    assert [run[0] for run in runs_of(runs)] == ["a" * 24]


def test_until_executing_allows_a_push_once_started(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "ue", 3)
    r = rconn(redis_server)
    cfg = config(redis_server, tmpdir_path, f'[job "UE"]\nexec = {h}\nunique = until_executing\n')
    first, _ = push2(redis_server, "UE", "[7]")
    dup, _ = push2(redis_server, "UE", "[7]")
    assert first and not dup
    f = forq(config=cfg)
    wait_until(lambda: not r.exists(lock_key("UE", [7])), 10, what="lock released at start")
    second, _ = push2(redis_server, "UE", "[7]")
    assert second
    f.wait_log(f"job done.* jid={second}", timeout=15)
    assert [run[0] for run in runs_of(runs)] == [first, second]


def test_while_executing_never_runs_two_at_once(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "we", 1)
    r = rconn(redis_server)
    f = forq(config=config(redis_server, tmpdir_path, f'[job "WE"]\nexec = {h}\nunique = while_executing\n', 3))
    f.wait_workers(3)
    # no enqueue lock: both pushes are accepted
    a, _ = push2(redis_server, "WE", '["same"]')
    raw_push(r, "WE", ["same"], "c" * 24)
    assert a
    wait_until(lambda: len(runs_of(runs)) == 2, 30, what="both ran")
    (j1, s1, e1), (j2, s2, e2) = sorted(runs_of(runs), key=lambda x: float(x[1]))
    assert {j1, j2} == {a, "c" * 24}
    assert float(s2) >= float(e1), "the two runs overlapped"
    assert f.lines("unique job runs later: another one is running")
    wait_until(lambda: not r.exists(lock_key("WE", ["same"], run=True)), 5, what="run lease gone")


def test_until_expired_keeps_the_lock_after_success(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "ux")
    r = rconn(redis_server)
    f = forq(config=config(redis_server, tmpdir_path, f'[job "UX"]\nexec = {h}\nunique = until_expired\nunique_ttl = 3\n'))
    f.wait_workers(1)
    first, _ = push2(redis_server, "UX", "[]")
    f.wait_log(f"job done.* jid={first}")
    dup, _ = push2(redis_server, "UX", "[]")
    assert not dup
    assert r.get(lock_key("UX", [])) == first
    wait_until(lambda: not r.exists(lock_key("UX", [])), 5, what="TTL lapsed")
    later, _ = push2(redis_server, "UX", "[]")
    assert later


def test_unique_args_limit_the_lock(redis_server, tmpdir_path):
    r = rconn(redis_server)
    config(redis_server, tmpdir_path,
           '[job "UA"]\nexec = /bin/true\nunique = until_executed\nunique_args = 2, 0\n')
    a, _ = push2(redis_server, "UA", '["acct", "ignored-1", 5]')
    assert a
    assert not push2(redis_server, "UA", '["acct", "ignored-2", 5]')[0]  # same at 2 and 0
    assert push2(redis_server, "UA", '["acct", "ignored-1", 6]')[0]      # position 2 differs
    assert r.get(lock_key("UA", [5, "acct"])) == a
    assert r.llen("queue:default") == 2


def test_retry_keeps_the_lock_and_dead_releases_it(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "fl", fail=True)
    r = rconn(redis_server)
    f = forq(config=config(redis_server, tmpdir_path, f'[job "FL"]\nexec = {h}\nunique = until_executed\n'))
    f.wait_workers(1)
    jid, _ = push2(redis_server, "FL", "[1]", "--retry", "1")
    key = lock_key("FL", [1])
    f.wait_log(f"job failed.* jid={jid}.* next=retry")
    entry = wait_until(lambda: r.zrange("retry", 0, -1, withscores=True), 5, what="retry entry")
    assert r.get(key) == jid
    # TTL covers the retry delay plus unique_ttl
    assert r.pttl(key) / 1000 > entry[0][1] - time.time() + 3500
    assert not push2(redis_server, "FL", "[1]")[0]
    # run the retry now: it fails again and goes to the dead set
    r.zadd("retry", {entry[0][0]: time.time() - 1})
    f.wait_log(f"job failed.* jid={jid}.* next=dead", timeout=20)
    wait_until(lambda: not r.exists(key), 5, what="dead job released its lock")
    assert r.zcard("dead") == 1
    assert push2(redis_server, "FL", "[1]")[0]


def test_node_killed_frees_the_lock_within_the_lease(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "long", 60)
    r = rconn(redis_server)
    f = forq(config=config(redis_server, tmpdir_path, f'[job "Long"]\nexec = {h}\nunique = until_executed\n', 2,
                           "unique_lease = 3\n"))
    f.wait_workers(2)
    jid, _ = push2(redis_server, "Long", '["n"]')
    key = lock_key("Long", ["n"])
    wait_until(lambda: r.llen("queue:default") == 0 and 0 < r.pttl(key) <= 3000, 10,
               what="lock is a 3 s lease")
    time.sleep(3.5)   # the master renews it beyond its lease
    assert r.get(key) == jid
    everyone = [f.pid] + proc_children(f.pid)
    everyone += [k for p in everyone[1:] for k in proc_children(p)]   # the exec handler
    t0 = time.monotonic()
    for pid in everyone:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not r.exists(key), 6, what="lease lapsed")
    assert time.monotonic() - t0 < 3 + 1.5
    assert push2(redis_server, "Long", '["n"]')[0]


def test_requeue_at_stop_keeps_the_lock(forq, redis_server, tmpdir_path):
    h, runs = recorder(tmpdir_path, "st", 30)
    r = rconn(redis_server)
    f = forq("-t", "1", config=config(redis_server, tmpdir_path, f'[job "St"]\nexec = {h}\nunique = until_executed\n'
                                      'unique_ttl = 600\n', 1, "unique_lease = 3\n"))
    f.wait_workers(1)
    jid, _ = push2(redis_server, "St", "[]")
    key = lock_key("St", [])
    wait_until(lambda: 0 < r.pttl(key) <= 3000, 10, what="lease")
    f.signal(signal.SIGTERM)
    f.wait_exit(20)
    assert r.llen("queue:default") == 1
    assert r.get(key) == jid and r.ttl(key) > 500
    assert not push2(redis_server, "St", "[]")[0]


def test_worker_killed_mid_job_keeps_the_lock_for_the_requeued_job(forq, redis_server,
                                                                   tmpdir_path):
    marks = os.path.join(tmpdir_path, "marks")
    h = handler(tmpdir_path, "k.sh", f'echo x >> {marks}\n'
                f'if [ "$(wc -l < {marks})" -ge 2 ]; then exit 0; else sleep 30; fi\n')
    r = rconn(redis_server)
    f = forq(config=config(redis_server, tmpdir_path,
                           f'[job "K"]\nexec = {h}\nunique = until_executed\nunique_ttl = 900\n'))
    workers = f.wait_workers(1)
    jid, _ = push2(redis_server, "K", "[]")
    key = lock_key("K", [])
    wait_until(lambda: os.path.exists(marks), 10, what="job running")
    assert 0 < r.ttl(key) <= 30
    os.kill(workers[0][0], signal.SIGKILL)
    f.wait_log(f"job done.* jid={jid}", timeout=15)   # the same job ran again, not a duplicate
    assert not f.lines("duplicate unique job dropped")
    wait_until(lambda: not r.exists(key), 5, what="released after success")
