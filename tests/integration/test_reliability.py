"""Assured execution: no job lost to a crash, poison pills end in the dead
set, dead nodes' jobs come back (DESIGN.md §5, §6.1)."""
import json
import os
import signal
import time

import redis

from conftest import TESTPLUG, alive, proc_children, proc_title, wait_until
from test_jobs import handler, push, rconn


def sanitizer_env():
    """A deliberate SIGSEGV must kill the worker, not be reported by ASan."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "handle_segv=0"}


def test_handler_that_segfaults_every_time_becomes_a_poison_pill(forq, redis_server):
    f = forq("-P", "2", "--prefork", "-r", TESTPLUG, env=sanitizer_env())
    f.wait_workers(2)
    jid = push(redis_server, "TestJob", '["segv"]')
    r = rconn(redis_server)
    dead = wait_until(lambda: r.zrange("dead", 0, -1), 30, what="poison pill in dead")
    job = json.loads(dead[0])
    assert job["jid"] == jid and job["error_class"] == "Forq::ProcessLost"
    assert "3 times" in job["error_message"] and "SEGV" in job["error_message"]
    assert len(f.lines(r"worker exited.* status=\"signal SEGV")) == 3
    assert not r.keys("forq:lost:*")
    ok = push(redis_server, "TestJob", '["fine"]')     # workers keep serving
    f.wait_log(f"job done.* jid={ok}", timeout=15)


def test_success_clears_the_loss_count(forq, redis_server, tmpdir_path):
    marks = os.path.join(tmpdir_path, "runs")
    h = handler(tmpdir_path, "once.sh", f'echo x >> {marks}\n'
                f'if [ "$(wc -l < {marks})" -ge 2 ]; then sleep 1; else sleep 30; fi\n')
    f = forq(config=f'[forq]\nprocesses = 1\n[job "Flaky"]\nexec = {h}\n')
    workers = f.wait_workers(1)
    jid = push(redis_server, "Flaky")
    r = rconn(redis_server)
    wait_until(lambda: os.path.exists(marks), 5, what="first run")
    os.kill(workers[0][0], signal.SIGKILL)
    wait_until(lambda: r.get(f"forq:lost:{jid}") == "1", 5, what="one loss counted")
    f.wait_log(f"job done.* jid={jid}", timeout=15)
    assert r.get(f"forq:lost:{jid}") is None


def test_plugin_timeout_costs_the_worker_and_records_a_failure(forq, redis_server):
    f = forq("-P", "1", "--prefork", "-r", TESTPLUG,
             config='[forq]\n[job "TestJob"]\ntimeout = 1\n')
    workers = f.wait_workers(1)
    jid = push(redis_server, "TestJob", '["sleep"]')
    r = rconn(redis_server)
    entry = wait_until(lambda: r.zrange("retry", 0, -1), 10, what="timeout in retry")
    job = json.loads(entry[0])
    assert job["jid"] == jid and job["error_class"] == "Forq::Timeout"
    assert f.lines(r"worker exited.* status=\"signal ALRM")
    new = f.wait_workers(1)
    assert new[0][0] != workers[0][0]
    assert not [k for k in r.keys("forq:working:*") if r.llen(k)]


def node_config(extra=""):
    return ("[forq]\nprocesses = 2\nshutdown_timeout = 5\nnode_dead_after = 2\n"
            f"sweep_interval = 0.5\nleader_ttl = 2\nleader_renew = 0.5\n{extra}")


def test_dead_node_jobs_are_requeued_by_another_node(forq, redis_server, tmpdir_path):
    marks = os.path.join(tmpdir_path, "runs")
    h = handler(tmpdir_path, "long.sh", f'echo "$FORQ_JID $PPID" >> {marks}\nsleep 4\n')
    cfg = node_config(f'[job "LongJob"]\nexec = {h}\n')
    a = forq(config=cfg)
    a.wait_workers(2)
    jids = [push(redis_server, "LongJob") for _ in range(2)]
    wait_until(lambda: os.path.exists(marks) and len(open(marks).read().split("\n")) >= 3, 5,
               what="both jobs running on node A")
    b = forq(config=cfg)
    b.wait_workers(2)
    everyone = [a.pid] + proc_children(a.pid)
    t0 = time.monotonic()
    for pid in everyone:                     # the whole node dies at once
        os.kill(pid, signal.SIGKILL)
    for jid in jids:
        b.wait_log(f"job done.* jid={jid}", timeout=30)
    took = time.monotonic() - t0
    assert b.lines("node stopped beating; recovering its jobs")
    # dead-after, then (A may have led) the lease TTL and a poll, two sweeps, the job; slack
    assert took < 2 + 2 + 1 + 2 * 0.5 + 4 + 8, took
    r = rconn(redis_server)
    assert r.llen("queue:default") == 0


def test_live_slow_node_is_never_swept(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "long.sh", "sleep 6\n")
    cfg = node_config(f'[job "LongJob"]\nexec = {h}\n')
    a = forq(config=cfg)
    b = forq(config=cfg)
    a.wait_workers(2)
    b.wait_workers(2)
    jid = push(redis_server, "LongJob")
    done = wait_until(lambda: a.lines(f"job done.* jid={jid}") or b.lines(f"job done.* jid={jid}"),
                      20, what="job done")
    assert len(a.lines(f"job done.* jid={jid}") + b.lines(f"job done.* jid={jid}")) == 1
    assert not a.lines("node stopped beating") and not b.lines("node stopped beating")


def test_redis_restart_pauses_the_sweep(forq, tmpdir_path):
    # A Redis restart without persistence loses every node key at once: no
    # live node may be judged dead because of that.
    import subprocess
    from conftest import free_port
    port = free_port()
    def start():
        return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", tmpdir_path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    srv = start()
    try:
        wait_until(lambda: _ping(port), 10, what="redis")
        h = handler(tmpdir_path, "long.sh", "sleep 5\n")
        cfg = node_config(f'[job "LongJob"]\nexec = {h}\n')
        a = forq(config=cfg, env={"REDIS_URL": url})
        b = forq(config=cfg, env={"REDIS_URL": url})
        a.wait_workers(2)
        b.wait_workers(2)
        time.sleep(1.5)
        srv.terminate(); srv.wait(10)
        srv = start()
        wait_until(lambda: _ping(port), 10, what="redis again")
        time.sleep(4)
        assert not a.lines("node stopped beating") and not b.lines("node stopped beating")
        assert a.lines("redis connected") or b.lines("redis connected")
    finally:
        srv.terminate()
        srv.wait(10)


def _ping(port):
    try:
        return redis.Redis(port=port).ping()
    except redis.ConnectionError:
        return False


def test_term_during_10_long_jobs_puts_every_one_back_at_the_front(forq, redis_server,
                                                                    tmpdir_path):
    h = handler(tmpdir_path, "long.sh", "sleep 60\n")
    f = forq("-t", "2", config=f'[forq]\nprocesses = 10\n[job "LongJob"]\nexec = {h}\n'
             f'[job "Later"]\nexec = /bin/true\n')
    f.wait_workers(10)
    r = rconn(redis_server)
    long_jids = [push(redis_server, "LongJob") for _ in range(10)]
    wait_until(lambda: sum(t.endswith("busy LongJob") for t in f.worker_titles()) == 10, 10,
               what="10 long jobs running")
    later = [push(redis_server, "Later", "[]", "-q", "other") for _ in range(3)]
    r.lpush("queue:default", *[json.dumps({"class": "Waiting", "args": [i], "jid": f"{i:024x}",
                                           "queue": "default"}) for i in range(5)])
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
    assert time.monotonic() - t0 <= 2 + 3 + 1.5
    queue = [json.loads(p)["jid"] for p in r.lrange("queue:default", 0, -1)]
    # The front of a Sidekiq queue is its right end (RPOP side).
    assert sorted(queue[-10:]) == sorted(long_jids)
    assert queue[:5] == [f"{i:024x}" for i in reversed(range(5))]
    assert not [k for k in r.keys("forq:working:*") if r.llen(k)]
    assert r.llen("queue:other") == 3 and later


def test_idle_workers_share_jobs_pushed_together(forq, redis_server, tmpdir_path):
    out = os.path.join(tmpdir_path, "starts")
    h = handler(tmpdir_path, "one.sh", f'date +%s.%N >> {out}\nsleep 1\n')
    f = forq(config=f'[forq]\nprocesses = 4\n[job "OneSec"]\nexec = {h}\n')
    f.wait_workers(4)
    time.sleep(1.5)     # all four blocked in their fetch
    r = rconn(redis_server)
    r.lpush("queue:default", *[json.dumps({"class": "OneSec", "args": [i], "jid": f"{i:024x}",
                                           "queue": "default"}) for i in range(4)])
    wait_until(lambda: os.path.exists(out) and len(open(out).read().split()) == 4, 5,
               what="4 starts")
    starts = [float(x) for x in open(out).read().split()]
    assert max(starts) - min(starts) < 0.05, starts     # no worker hoarded two


def test_sigkill_of_busy_worker_requeues_within_100ms(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "long.sh", "sleep 60\n")
    f = forq(config=f'[forq]\nprocesses = 1\n[job "LongJob"]\nexec = {h}\n')
    workers = f.wait_workers(1)
    jid = push(redis_server, "LongJob")
    wait_until(lambda: f.worker_titles() == ["forq: worker[0] busy LongJob"], 5, what="busy")
    r = rconn(redis_server)
    f.signal(signal.SIGTSTP)     # quiet: the requeued job stays visible in the queue
    f.wait_log("quiet")
    t0 = time.monotonic()
    os.kill(workers[0][0], signal.SIGKILL)
    wait_until(lambda: r.llen("queue:default") == 1, 5, interval=0.002, what="requeued")
    took = time.monotonic() - t0
    assert json.loads(r.lindex("queue:default", 0))["jid"] == jid
    assert took < 1.0, took     # target 100 ms; the figure comes from scripts/bench


def test_worker_whose_master_died_finishes_its_job_and_exits(forq, redis_server, tmpdir_path):
    done = os.path.join(tmpdir_path, "done")
    h = handler(tmpdir_path, "two.sh", f"sleep 2\necho $FORQ_JID > {done}\n")
    f = forq(config=f'[forq]\nprocesses = 1\n[job "TwoSec"]\nexec = {h}\n')
    workers = f.wait_workers(1)
    worker = workers[0][0]
    jid = push(redis_server, "TwoSec")
    wait_until(lambda: f.worker_titles() == ["forq: worker[0] busy TwoSec"], 5, what="busy")
    os.kill(f.pid, signal.SIGKILL)                 # only the master
    wait_until(lambda: not alive(worker), 15, what="orphaned worker exits")
    assert open(done).read().strip() == jid        # the job finished
    r = rconn(redis_server)
    assert not [k for k in r.keys("forq:working:*") if r.llen(k)]   # and was acknowledged
    assert r.llen("queue:default") == 0
    assert f.lines(r"worker stopping.* reason=\"master gone\"|reason=TERM")


def test_unstarted_jobs_of_a_dead_worker_go_back_in_order(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "long.sh", "sleep 60\n")
    f = forq(config=f'[forq]\nprocesses = 1\n[job "LongJob"]\nexec = {h}\n')
    workers = f.wait_workers(1)
    r = rconn(redis_server)
    running = push(redis_server, "LongJob")
    wait_until(lambda: f.worker_titles() == ["forq: worker[0] busy LongJob"], 5, what="busy")
    lane = [k for k in r.keys("forq:working:*") if r.llen(k)][0]
    # As if the worker had fetched a batch: a, then b, behind the running job.
    for name in ("a", "b"):
        r.lpush(lane, json.dumps({"class": "Later", "args": [name], "jid": name * 24,
                                  "queue": "default"}))
    f.signal(signal.SIGTSTP)       # quiet: what comes back stays in the queue
    f.wait_log("quiet")
    os.kill(workers[0][0], signal.SIGKILL)
    wait_until(lambda: r.llen("queue:default") == 3, 5, what="3 jobs back")
    order = [json.loads(p)["jid"] for p in reversed(r.lrange("queue:default", 0, -1))]
    assert order == ["a" * 24, "b" * 24, running]   # front first; the running job at the back
