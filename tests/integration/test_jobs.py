"""Job engine behaviour seen from Redis (the Ruby-client view is in
test_sidekiq_compat.py): handlers, reliable fetch, recovery, client commands."""
import json
import os
import signal
import subprocess
import time

import pytest
import redis

from conftest import FORQ, TESTPLUG, alive, proc_title, wait_until


def rconn(url):
    return redis.Redis.from_url(url, decode_responses=True)


def handler(tmpdir, name, body):
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def push(url, cls, args="[]", *extra):
    r = subprocess.run([FORQ, "push", cls, args, *extra], capture_output=True, text=True,
                       env=dict(os.environ, REDIS_URL=url), timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_exec_handler_gets_payload_env_and_output_is_logged(forq, redis_server, tmpdir_path):
    out = os.path.join(tmpdir_path, "seen")
    h = handler(tmpdir_path, "h.sh",
                f'cat > {out}.stdin\nenv | grep ^FORQ_ | sort > {out}.env\n'
                'echo "line one"\necho "to stderr" >&2\n')
    f = forq(config=f'[forq]\nprocesses = 1\n[job "EchoJob"]\nexec = {h} --flag "two words"\n')
    f.wait_workers(1)
    jid = push(redis_server, "EchoJob", '[1,"a b",{"k":12345678901234567890}]')
    f.wait_log(f"job done.* jid={jid}")
    stdin = open(out + ".stdin").read()
    stored = json.loads(stdin)
    assert stored["jid"] == jid and stored["class"] == "EchoJob"
    assert "12345678901234567890" in stdin          # big integers untouched
    env = dict(l.split("=", 1) for l in open(out + ".env").read().splitlines())
    assert env["FORQ_JID"] == jid and env["FORQ_CLASS"] == "EchoJob"
    assert env["FORQ_QUEUE"] == "default" and env["FORQ_RETRY_COUNT"] == "-1"
    assert f.lines(f'job output.* jid={jid} .*stream=stdout line="line one"')
    assert f.lines(f'job output.* jid={jid} .*stream=stderr line="to stderr"')
    r = rconn(redis_server)
    assert r.llen("queue:default") == 0
    assert not [k for k in r.keys("forq:working:*") if r.llen(k)]


def test_exec_arguments_are_never_shell_interpreted(forq, redis_server, tmpdir_path):
    canary = os.path.join(tmpdir_path, "pwned")
    h = handler(tmpdir_path, "args.sh", f'printf "%s\\n" "$@" > {tmpdir_path}/argv\n')
    # (" ;" would start an inline INI comment, as forq.ini(5) says)
    f = forq(config=f'[forq]\n[job "ArgJob"]\nexec = {h} "$(touch {canary})" a;id |id\n')
    f.wait_workers(1)
    jid = push(redis_server, "ArgJob", f'["$(touch {canary})"]')
    f.wait_log(f"job done.* jid={jid}")
    assert not os.path.exists(canary)
    assert open(f"{tmpdir_path}/argv").read().splitlines() == [f"$(touch {canary})", "a;id", "|id"]


def test_failing_exec_goes_to_retry_with_stderr_tail(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "fail.sh", 'echo "first" >&2\necho "the real reason" >&2\nexit 3\n')
    f = forq(config=f'[forq]\n[job "FailJob"]\nexec = {h}\n')
    f.wait_workers(1)
    jid = push(redis_server, "FailJob", "[]", "--retry", "2")
    f.wait_log(f"job failed.* jid={jid}")
    r = rconn(redis_server)
    entries = wait_until(lambda: r.zrange("retry", 0, -1, withscores=True), 5, what="retry entry")
    payload, score = entries[0]
    job = json.loads(payload)
    assert job["error_class"] == "Forq::ExitStatus3"
    assert job["error_message"].endswith("the real reason")
    assert job["retry_count"] == 0 and isinstance(job["failed_at"], float)
    assert 15 <= score - job["failed_at"] <= 25


def test_exec_timeout_kills_the_process_group_and_fails_the_job(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "slow.sh", "sleep 30 &\nsleep 30\n")
    f = forq(config=f'[forq]\n[job "SlowJob"]\nexec = {h}\ntimeout = 1\n')
    f.wait_workers(1)
    jid = push(redis_server, "SlowJob")
    f.wait_log(f"job failed.* jid={jid} .*error_class=Forq::Timeout", timeout=10)
    r = rconn(redis_server)
    job = json.loads(r.zrange("retry", 0, -1)[0])
    assert job["error_class"] == "Forq::Timeout"
    f.wait_workers(1)   # the worker itself lives on


def test_plugin_handler_and_unknown_class(forq, redis_server):
    f = forq("-P", "1", "--prefork", "-r", TESTPLUG)
    f.wait_workers(1)
    ok = push(redis_server, "TestJob", '["fine"]')
    bad = push(redis_server, "TestJob", '["fail"]')
    unknown = push(redis_server, "NoSuchJob")
    f.wait_log(f"job done.* jid={ok}")
    f.wait_log(f"job failed.* jid={bad} .*error_class=TestFailure")
    f.wait_log(f"job failed.* jid={unknown} .*error_class=UnknownJobClass")
    r = rconn(redis_server)
    classes = sorted(json.loads(p)["error_class"] for p in r.zrange("retry", 0, -1))
    assert classes == ["TestFailure", "UnknownJobClass"]


def test_catchall_handler_disposes_as_the_plugin_says_and_gets_events(forq, redis_server,
                                                                       tmpdir_path):
    """The ABI a language plugin uses: a "*" handler runs classes nobody
    registered (TestJob keeps its own), set_failure decides the outcome,
    delay, backtrace and full message, and the event hook hears quiet and
    shutdown in each worker."""
    events = os.path.join(tmpdir_path, "events")
    f = forq("-P", "2", "--prefork", "-r", TESTPLUG,
             env={"FORQ_TEST_CATCHALL": "1", "FORQ_TEST_DISPOSE": "retry",
                  "FORQ_TEST_EVENT_FILE": events})
    f.wait_workers(2)
    r = rconn(redis_server)
    own = push(redis_server, "TestJob", '["fine"]')
    retried = push(redis_server, "Some::RubyJob", "[1]")
    f.wait_log(f"job done.* jid={own}")
    f.wait_log(f"job failed.* jid={retried} .*error_class=CatchAll::Failed.*next=retry")
    [(payload, score)] = r.zrange("retry", 0, -1, withscores=True)
    job = json.loads(payload)
    assert job["error_backtrace"] == ["catchall.c:1"]
    assert job["error_message"] == "m" * 3000   # not cut at forq_error's 1 KiB
    assert 3500 < score - time.time() < 3700
    f.stop()
    for how, want in (("dead", 1), ("discard", 0)):
        r.delete("dead")
        g = forq("-P", "1", "--prefork", "-r", TESTPLUG,
                 env={"FORQ_TEST_CATCHALL": "1", "FORQ_TEST_DISPOSE": how,
                      "FORQ_TEST_EVENT_FILE": events})
        g.wait_workers(1)
        jid = push(redis_server, "Other", "[]")
        g.wait_log(f"job failed.* jid={jid} .*next={how}")
        assert r.zcard("dead") == want
        g.signal(signal.SIGTSTP)
        g.wait_log("worker quiet")
        g.signal(signal.SIGTERM)
        assert g.wait_exit() == 0
    lines = open(events).read().split()
    # the first forq was killed by the harness: only the two stopped ones speak
    assert lines.count("quiet") == 2 and lines.count("shutdown") == 2, lines


def test_malformed_payloads_go_to_dead_and_worker_keeps_serving(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "ok.sh", "exit 0\n")
    f = forq(config=f'[forq]\n[job "OkJob"]\nexec = {h}\n')
    f.wait_workers(1)
    r = rconn(redis_server)
    r.lpush("queue:default", "not json")
    r.lpush("queue:default", '{"args":[1],"jid":"0123456789abcdef01234567"}')
    jid = push(redis_server, "OkJob")
    f.wait_log(f"job done.* jid={jid}")
    dead = r.zrange("dead", 0, -1)
    assert "not json" in dead
    assert any("0123456789abcdef01234567" in d for d in dead)
    assert len(f.lines("malformed job sent to the dead set")) == 2


def test_sigkill_of_busy_worker_requeues_its_job(forq, redis_server, tmpdir_path):
    marks = os.path.join(tmpdir_path, "runs")
    h = handler(tmpdir_path, "long.sh", f'echo "$FORQ_JID" >> {marks}\nsleep 2\n')
    f = forq(config=f'[forq]\nprocesses = 1\n[job "LongJob"]\nexec = {h}\n')
    workers = f.wait_workers(1)
    jid = push(redis_server, "LongJob")
    wait_until(lambda: os.path.exists(marks), 5, what="job started")
    os.kill(workers[0][0], signal.SIGKILL)
    f.wait_log("jobs of a dead worker recovered.* requeued=1")
    f.wait_log(f"job done.* jid={jid}", timeout=15)
    assert open(marks).read().split() == [jid, jid]     # ran again, not lost
    r = rconn(redis_server)
    assert r.llen("queue:default") == 0


def test_term_during_long_jobs_puts_them_back_at_the_front(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "long.sh", "sleep 30\n")
    f = forq("-t", "1", config=f'[forq]\nprocesses = 2\n[job "LongJob"]\nexec = {h}\n')
    f.wait_workers(2)
    jids = [push(redis_server, "LongJob") for _ in range(2)]
    wait_until(lambda: len(f.worker_titles()) == 2 and
               all(t.endswith("busy LongJob") for t in f.worker_titles()), 5, what="busy")
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    assert f.wait_exit(10) == 0
    assert time.monotonic() - t0 < 1 + 3 + 1
    r = rconn(redis_server)
    back = [json.loads(p)["jid"] for p in r.lrange("queue:default", 0, -1)]
    assert sorted(back) == sorted(jids)
    assert not r.keys("forq:working:*")
    assert not r.smembers("processes")


def test_quiet_and_term_take_effect_within_2s_while_idle(forq, redis_server):
    f = forq("-P", "2")
    f.wait_workers(2)
    t0 = time.monotonic()
    f.signal(signal.SIGTSTP)
    f.wait_workers(2, state="quiet", timeout=3)
    t1 = time.monotonic()
    f.signal(signal.SIGTERM)
    assert f.wait_exit(5) == 0
    assert t1 - t0 < 2.5 and time.monotonic() - t1 < 2.5


def commandstats(r):
    return {k: v["calls"] for k, v in r.info("commandstats").items()}


def test_idle_worker_makes_about_one_redis_call_per_second(forq, redis_server):
    f = forq("-P", "1")
    f.wait_workers(1)
    r = rconn(redis_server)
    time.sleep(1)
    before = commandstats(r)
    time.sleep(6)
    after = commandstats(r)
    worker_calls = sum(after.get(k, 0) - before.get(k, 0)
                       for k in ("cmdstat_brpoplpush", "cmdstat_evalsha"))
    assert worker_calls <= 8, (before, after)   # ~1/s over 6 s, with slack


def test_pushed_job_starts_within_milliseconds_on_idle_workers(forq, redis_server, tmpdir_path):
    out = os.path.join(tmpdir_path, "t")
    h = handler(tmpdir_path, "t.sh", f'date +%s.%N > {out}\n')
    f = forq(config=f'[forq]\nprocesses = 2\n[job "T"]\nexec = {h}\n')
    f.wait_workers(2)
    time.sleep(1.5)   # both workers blocked in their fetch
    r = rconn(redis_server)
    t0 = time.time()
    payload = json.dumps({"class": "T", "args": [], "jid": "a" * 24, "queue": "default",
                          "enqueued_at": t0})
    r.lpush("queue:default", payload)
    wait_until(lambda: os.path.exists(out) and open(out).read().strip(), 5, what="ran")
    started = float(open(out).read())
    assert started - t0 < 0.5, started - t0    # generous: the figure is in scripts/bench


def test_scheduled_job_is_moved_by_the_poller(forq, redis_server, tmpdir_path):
    out = os.path.join(tmpdir_path, "when")
    h = handler(tmpdir_path, "w.sh", f'date +%s.%N > {out}\n')
    f = forq(config=f'[forq]\n[job "Later"]\nexec = {h}\n')
    f.wait_workers(1)
    t0 = time.time()
    jid = push(redis_server, "Later", "[]", "--in", "2")
    r = rconn(redis_server)
    assert r.zcard("schedule") == 1
    f.wait_log(f"job done.* jid={jid}", timeout=20)
    assert float(open(out).read()) >= t0 + 2


def test_status_and_health(forq, redis_server, tmpdir_path):
    h = handler(tmpdir_path, "s.sh", "sleep 5\n")
    pidfile = os.path.join(tmpdir_path, "forq.pid")
    f = forq("--pidfile", pidfile, config=f'[forq]\nprocesses = 2\ntag = billing\n'
             f'[job "Sleepy"]\nexec = {h}\n')
    f.wait_workers(2)
    jid = push(redis_server, "Sleepy")
    env = dict(os.environ, REDIS_URL=redis_server)
    wait_until(lambda: f"jid={jid}" in subprocess.run([FORQ, "status"], capture_output=True,
               text=True, env=env).stdout, 10, what="busy job in status")
    st = subprocess.run([FORQ, "status"], capture_output=True, text=True, env=env).stdout
    assert "nodes: 1" in st and "[billing]" in st and "processes 2" in st
    assert "Sleepy" in st and "queues: 1" in st
    ok = subprocess.run([FORQ, "health", "--pid", str(f.pid)], capture_output=True, text=True,
                        env=env)
    assert ok.returncode == 0 and ok.stdout.startswith("healthy"), ok.stdout
    cfg = os.path.join(tmpdir_path, "h.ini")
    with open(cfg, "w") as fh:
        fh.write(f"[forq]\npidfile = {pidfile}\n")
    assert subprocess.run([FORQ, "health", "-C", cfg], capture_output=True, env=env).returncode == 0
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
    bad = subprocess.run([FORQ, "health", "--pid", str(f.pid)], capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 1 and bad.stdout.startswith("unhealthy")
    gone = subprocess.run([FORQ, "health"], capture_output=True, env=dict(
        os.environ, REDIS_URL="redis://127.0.0.1:1/0"))
    assert gone.returncode == 1


def test_push_validates_its_input(redis_server):
    env = dict(os.environ, REDIS_URL=redis_server)
    for args in (["push"], ["push", "X", "{}"], ["push", "X", "[", "--bogus"], ["push", "X",
                 "[]", "--retry", "maybe"]):
        r = subprocess.run([FORQ, *args], capture_output=True, text=True, env=env)
        assert r.returncode == 64, (args, r)


def test_reload_updates_the_process_entry(forq, redis_server):
    f = forq(config="[forq]\nprocesses = 1\ntag = before\n")
    f.wait_workers(1)
    r = rconn(redis_server)
    ident = wait_until(lambda: next(iter(r.smembers("processes")), None), 10, what="entry")
    with open(f.config_path, "w") as fh:
        fh.write("[forq]\nprocesses = 3\ntag = after\nqueues = critical, default\n")
    f.signal(signal.SIGHUP)
    f.wait_workers(3)
    def updated():
        info = json.loads(r.hget(ident, "info") or "{}")
        return info.get("concurrency") == 3 and info.get("tag") == "after" and info
    info = wait_until(updated, 10, what="new info after a beat")
    assert info["queues"] == ["critical", "default"]
    assert r.hget(ident, "concurrency") == "3"
