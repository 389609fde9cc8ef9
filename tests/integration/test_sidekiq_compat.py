"""Sidekiq wire compatibility (DESIGN.md §4-5, research/sidekiq-data-model.md §19).
Jobs are pushed and state is read with the real Ruby gem (Debian's ruby-sidekiq
6.4.1) through tests/ruby/sidekiq_cli.rb; forq runs them with exec handlers
that record what they got. Each test has its own redis-server."""
import json
import os
import re
import socket
import subprocess
import time

import pytest
import redis

from conftest import ROOT, _try, free_port, wait_until

RUBY_CLI = os.path.join(ROOT, "tests", "ruby", "sidekiq_cli.rb")
WEB_PAGES = ["/", "/busy", "/queues", "/queues/default", "/retries", "/scheduled", "/morgue"]


# -- helpers ---------------------------------------------------------------

def rb(url, cmd, arg=None, check=True):
    """Run one sidekiq_cli.rb command against url; returns its JSON output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    env["REDIS_URL"] = url
    argv = ["ruby", RUBY_CLI, cmd] + ([json.dumps(arg)] if arg is not None else [])
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    if check:
        assert r.returncode == 0, f"ruby {cmd} failed: {r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def push(url, items):
    """Sidekiq::Client.push each item; returns [{"jid","raw","score"}]."""
    return rb(url, "push", items if isinstance(items, list) else [items])


def stats(url):
    return rb(url, "stats")


def write_handler(tmpdir, name, fail=False, sleep=0):
    """An exec handler that records each run: its stdin in stdin.<jid>.<n>
    and one line "<wall time> <jid> <class> <queue> <FORQ_RETRY_COUNT>" in runs."""
    path = os.path.join(tmpdir, name)
    tail = ""
    if sleep:
        tail += f"sleep {sleep}\n"
    if fail:
        tail += "echo 'warming up' >&2\necho 'boom: it broke' >&2\nexit 3\n"
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
n=$(date +%s.%N)
cat > "{tmpdir}/stdin.$FORQ_JID.$n"
printf '%s %s %s %s %s\\n' "$n" "$FORQ_JID" "$FORQ_CLASS" "$FORQ_QUEUE" "$FORQ_RETRY_COUNT" \\
    >> "{tmpdir}/runs"
{tail}exit 0
""")
    os.chmod(path, 0o755)
    return path


def runs(tmpdir):
    """Recorded runs in order: dicts with t, jid, cls, queue, retry_count, stdin."""
    try:
        with open(os.path.join(tmpdir, "runs")) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        t, jid, cls, queue, rc = (line.split(" ") + [""] * 5)[:5]
        with open(os.path.join(tmpdir, f"stdin.{jid}.{t}"), "rb") as f:
            stdin = f.read()
        out.append({"t": float(t), "jid": jid, "cls": cls, "queue": queue,
                    "retry_count": rc, "stdin": stdin})
    return out


def wait_runs(tmpdir, n, timeout=15, f=None):
    return wait_until(lambda: len(r := runs(tmpdir)) >= n and r, timeout,
                      what=f"{n} recorded runs (have {len(runs(tmpdir))})"
                      + (f"\n{f.text()[-3000:]}" if f else ""))


def config(processes=1, queues="default", jobs=(), extra=""):
    text = (f"[forq]\nprocesses = {processes}\nqueues = {queues}\nshutdown_timeout = 5\n"
            f"{extra}")
    for cls, path in jobs:
        text += f'[job "{cls}"]\nexec = {path}\ntimeout = 30\n'
    return text


def wait_stats(url, pred, timeout=12, what="stats"):
    last = {}

    def ok():
        last["s"] = stats(url)
        return pred(last["s"]) and last["s"]
    try:
        return wait_until(ok, timeout, interval=0.5, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}; last stats: {last.get('s')}") from None


def wait_set(url, name, pred=lambda es: es, timeout=12, what=None):
    """Poll RetrySet/DeadSet/ScheduledSet (cmd name) until pred(entries)."""
    last = {}

    def ok():
        last["e"] = rb(url, name)
        return pred(last["e"]) and last["e"]
    try:
        return wait_until(ok, timeout, interval=0.3, what=what or name)
    except AssertionError as e:
        raise AssertionError(f"{e}; last {name}: {last.get('e')}") from None


def web_status(url, paths):
    return {p: v["status"] for p, v in rb(url, "web", paths).items()}


def key_of(entry):
    """The Web UI's link key "<score>-<jid>", with the score as Ruby prints it."""
    return entry["key"]


# -- 1. enqueue by Ruby, run by forq ----------------------------------------

def test_pushed_job_runs_once_with_the_exact_payload_on_stdin(forq, redis_server, tmpdir_path):
    h = write_handler(tmpdir_path, "echo.sh")
    assert stats(redis_server)["processed"] == 0
    pushed = push(redis_server, {"class": "EchoJob", "args": [1, "x", {"k": [2.5, None]}]})[0]
    raw = pushed["raw"]
    assert raw and pushed["jid"] in raw
    f = forq(config=config(processes=2, jobs=[("EchoJob", h)]))
    r = wait_runs(tmpdir_path, 1, f=f)
    # Byte-for-byte what the Ruby client stored, and the environment around it.
    assert r[0]["stdin"] == raw.encode()
    assert (r[0]["jid"], r[0]["cls"], r[0]["queue"]) == (pushed["jid"], "EchoJob", "default")
    s = wait_stats(redis_server, lambda s: s["processed"] >= 1, 12, "processed == 1")
    assert s["processed"] == 1 and s["failed"] == 0
    assert s["queues"] == {"default": 0}
    assert (s["retry_size"], s["dead_size"], s["scheduled_size"]) == (0, 0, 0)
    assert len(runs(tmpdir_path)) == 1


# -- 2. scheduled job -------------------------------------------------------

def test_scheduled_job_runs_not_before_its_time_and_keeps_its_jid(forq, redis_server,
                                                                  tmpdir_path):
    h = write_handler(tmpdir_path, "echo.sh")
    f = forq(config=config(jobs=[("EchoJob", h)]))
    f.wait_workers(1)
    at = time.time() + 3.0
    pushed = push(redis_server, {"class": "EchoJob", "args": ["later"], "at": at})[0]
    assert pushed["score"] == pytest.approx(at, abs=1e-3)
    stored = json.loads(pushed["raw"])
    assert "enqueued_at" not in stored
    assert len(rb(redis_server, "scheduled")) == 1
    r = wait_runs(tmpdir_path, 1, timeout=20, f=f)
    assert r[0]["jid"] == pushed["jid"]
    assert r[0]["t"] >= at, f"ran at {r[0]['t']:.3f}, {at - r[0]['t']:.3f}s before its time"
    ran = json.loads(r[0]["stdin"])
    assert ran["jid"] == pushed["jid"] and ran["args"] == ["later"]
    assert ran["created_at"] == stored["created_at"]
    assert isinstance(ran["enqueued_at"], float) and ran["enqueued_at"] >= at
    assert '"enqueued_at":' in r[0]["stdin"].decode()
    assert rb(redis_server, "scheduled") == []
    assert len(runs(tmpdir_path)) == 1


# -- 3. retries, Retry Now, dead set ------------------------------------------

def test_failures_retry_then_die_with_sidekiq_fields(forq, redis_server, tmpdir_path):
    h = write_handler(tmpdir_path, "boom.sh", fail=True)
    pushed = push(redis_server, {"class": "BoomJob", "args": [7, "seven"], "retry": 2})[0]
    jid, orig = pushed["jid"], json.loads(pushed["raw"])
    f = forq(config=config(jobs=[("BoomJob", h)]))

    # First failure: retry_count 0, failed_at, error fields, 15..24 s backoff.
    e = wait_set(redis_server, "retries", what="first retry entry")
    assert len(e) == 1
    e = e[0]
    item = e["item"]
    assert e["jid"] == jid
    assert item["retry_count"] == 0
    assert item["error_class"] == "Forq::ExitStatus3"
    assert isinstance(item["error_message"], str) and "boom: it broke" in item["error_message"]
    assert isinstance(item["failed_at"], float)
    assert "retried_at" not in item
    assert 15 - 0.01 <= e["score"] - item["failed_at"] <= 24 + 0.01, e
    for k in ("class", "args", "queue", "retry", "created_at", "enqueued_at"):
        assert item[k] == orig[k], k
    status = web_status(redis_server, ["/retries", f"/retries/{key_of(e)}"])
    assert status == {"/retries": 200, f"/retries/{key_of(e)}": 200}
    failed_at = item["failed_at"]

    # Retry Now (SortedEntry#retry) decrements retry_count to -1 and pushes;
    # forq's failure bumps it back to 0 and sets retried_at.
    rb(redis_server, "retry_entry", {"set": "retry", "jid": jid})
    r = wait_runs(tmpdir_path, 2, f=f)
    second = json.loads(r[1]["stdin"])
    assert r[1]["jid"] == jid and second["retry_count"] == -1
    e = wait_set(redis_server, "retries", lambda es: es and "retried_at" in es[0]["item"],
                 what="retry entry after Retry Now")[0]
    item = e["item"]
    assert e["jid"] == jid and item["retry_count"] == 0
    assert item["failed_at"] == failed_at
    assert isinstance(item["retried_at"], float) and item["retried_at"] >= failed_at
    assert 15 - 0.01 <= e["score"] - item["retried_at"] <= 24 + 0.01, e

    # Add to queue (no decrement): retry_count 1, backoff 16..34 s.
    rb(redis_server, "add_to_queue", {"set": "retry", "jid": jid})
    wait_runs(tmpdir_path, 3, f=f)
    e = wait_set(redis_server, "retries",
                 lambda es: es and es[0]["item"]["retry_count"] == 1,
                 what="retry entry with retry_count 1")[0]
    assert 16 - 0.01 <= e["score"] - e["item"]["retried_at"] <= 34 + 0.01, e

    # The last failure (retry_count would reach the limit 2) goes to the morgue.
    rb(redis_server, "add_to_queue", {"set": "retry", "jid": jid})
    wait_runs(tmpdir_path, 4, f=f)
    d = wait_set(redis_server, "dead", what="dead entry")[0]
    item = d["item"]
    assert d["jid"] == jid and item["retry_count"] == 2
    assert isinstance(item["retried_at"], float) and item["failed_at"] == failed_at
    assert item["error_class"] == "Forq::ExitStatus3"
    assert rb(redis_server, "retries") == []
    assert web_status(redis_server, ["/morgue", f"/morgue/{key_of(d)}"]) == \
        {"/morgue": 200, f"/morgue/{key_of(d)}": 200}
    s = wait_stats(redis_server, lambda s: s["failed"] >= 4, what="failed == 4")
    assert (s["processed"], s["failed"], s["retry_size"], s["dead_size"]) == (4, 4, 0, 1)
    assert len(runs(tmpdir_path)) == 4


def test_retry_0_goes_to_dead_and_retry_false_leaves_nothing(forq, redis_server, tmpdir_path):
    h = write_handler(tmpdir_path, "boom.sh", fail=True)
    f = forq(config=config(jobs=[("BoomJob", h)]))
    zero, false = push(redis_server, [{"class": "BoomJob", "args": [0], "retry": 0},
                                      {"class": "BoomJob", "args": [False], "retry": False}])
    wait_runs(tmpdir_path, 2, f=f)
    d = wait_set(redis_server, "dead", what="dead entry for retry: 0")
    s = wait_stats(redis_server, lambda s: s["failed"] >= 2, what="failed == 2")
    assert (s["processed"], s["failed"]) == (2, 2)
    d = rb(redis_server, "dead")
    assert [x["jid"] for x in d] == [zero["jid"]]
    assert d[0]["item"]["retry_count"] == 0
    assert d[0]["item"]["error_class"] == "Forq::ExitStatus3"
    assert isinstance(d[0]["item"]["failed_at"], float)
    assert rb(redis_server, "retries") == []
    assert s["queues"] == {"default": 0}
    assert len(runs(tmpdir_path)) == 2


# -- 4. process registry, Workers, Web UI, Quiet and Stop ----------------------

def test_process_set_workers_web_ui_quiet_and_stop(forq, redis_server, tmpdir_path):
    slow = write_handler(tmpdir_path, "slow.sh", sleep=8)
    echo = write_handler(tmpdir_path, "echo.sh")
    pushed = push(redis_server, {"class": "SlowJob", "args": ["zzz"]})[0]
    f = forq(config=config(processes=2, jobs=[("SlowJob", slow), ("EchoJob", echo)]))
    ident_rx = re.compile(r"\A[^:]+:\d+:[0-9a-f]{12}\Z")

    ps = wait_until(lambda: (p := rb(redis_server, "processes"))["list"]
                    and p["list"][0]["busy"] == 1 and p, 10, interval=0.5,
                    what=f"a busy forq process\n{f.text()[-2000:]}")
    assert ps["size"] == 1 and len(ps["list"]) == 1
    p = ps["list"][0]
    assert ident_rx.match(p["identity"]), p
    assert p["pid"] == f.pid and p["hostname"] == socket.gethostname()
    assert p["identity"].startswith(f"{p['hostname']}:{f.pid}:")
    assert p["concurrency"] == 2 and ps["total_concurrency"] == 2
    assert p["queues"] == ["default"]
    assert isinstance(p["tag"], str) and isinstance(p["labels"], list)
    assert isinstance(p["started_at"], float) and isinstance(p["beat"], float)
    assert p["quiet"] == "false" and p["stopping"] is False
    assert p["rss"] > 0
    assert 0 < rb(redis_server, "ttl", p["identity"]) <= 60

    w = rb(redis_server, "workers")
    assert w["size"] == 1 and len(w["list"]) == 1, w
    job = w["list"][0]
    assert (job["jid"], job["class"], job["queue"], job["process"]) == \
        (pushed["jid"], "SlowJob", "default", p["identity"])
    assert isinstance(job["run_at"], int)
    assert stats(redis_server)["workers_size"] == 1
    r = redis.Redis.from_url(redis_server)       # 6.4.1 reads :workers, 6.4.2+ :work
    for key in (f"{p['identity']}:workers", f"{p['identity']}:work"):
        assert 0 < r.ttl(key) <= 60, key
        assert r.hlen(key) == 1, key

    pages = rb(redis_server, "web", WEB_PAGES)
    assert {k: v["status"] for k, v in pages.items()} == {k: 200 for k in WEB_PAGES}
    assert pushed["jid"] in pages["/busy"]["body"]
    assert f"{p['hostname']}:{f.pid}" in pages["/busy"]["body"]

    # Quiet from the API: the next beats report it; a later job is not fetched.
    rb(redis_server, "quiet", p["identity"])
    wait_until(lambda: (q := rb(redis_server, "processes")["list"]) and q[0]["stopping"], 12,
               interval=0.5, what=f"stopping? true\n{f.text()[-2000:]}")
    assert f.lines(r'msg="signal from redis".* signal=TSTP'), f.text()[-2000:]
    assert f.lines(r'msg="quiet'), f.text()[-2000:]
    late = push(redis_server, {"class": "EchoJob", "args": ["late"]})[0]

    # Stop from the API: forq exits 0 and leaves the process set at once.
    rb(redis_server, "stop", p["identity"])
    assert f.wait_exit(15) == 0
    assert f.lines(r'msg="signal from redis".* signal=TERM'), f.text()[-2000:]
    assert rb(redis_server, "processes")["size"] == 0
    assert late["raw"] in rb(redis_server, "queue", "default")
    assert late["jid"] not in [x["jid"] for x in runs(tmpdir_path)]


# -- 5. queue order ------------------------------------------------------------

def test_strict_queue_order_critical_before_default(forq, redis_server, tmpdir_path):
    h = write_handler(tmpdir_path, "echo.sh")
    items = [{"class": "EchoJob", "queue": q, "args": [q, i]}
             for i in range(5) for q in ("default", "critical")]
    pushed = push(redis_server, items)
    f = forq(config=config(processes=1, queues="critical, default", jobs=[("EchoJob", h)]))
    r = wait_runs(tmpdir_path, 10, f=f)
    queues = [x["queue"] for x in r]
    assert queues == ["critical"] * 5 + ["default"] * 5, queues
    # FIFO within each queue.
    want = [p["jid"] for p, it in zip(pushed, items) if it["queue"] == "critical"] + \
           [p["jid"] for p, it in zip(pushed, items) if it["queue"] == "default"]
    assert [x["jid"] for x in r] == want


def test_weighted_queues_shrink_together(forq, redis_server, tmpdir_path):
    h = write_handler(tmpdir_path, "echo.sh")
    n = 40
    items = [{"class": "EchoJob", "queue": q, "args": [i]}
             for i in range(n) for q in ("critical", "default")]
    push(redis_server, items)
    f = forq(config=config(processes=1, queues="critical:3, default:1", jobs=[("EchoJob", h)]))
    r = wait_runs(tmpdir_path, 2 * n, timeout=30, f=f)
    queues = [x["queue"] for x in r]
    last_critical = max(i for i, q in enumerate(queues) if q == "critical")
    first_default = queues.index("default")
    assert first_default < last_critical, queues       # not strict
    assert queues[:n].count("critical") > n // 2, queues  # but weighted toward critical


# -- 6. malformed payloads ----------------------------------------------------

def test_malformed_payloads_go_to_dead_unchanged_and_the_worker_survives(forq, redis_server,
                                                                        tmpdir_path):
    h = write_handler(tmpdir_path, "echo.sh")
    f = forq(config=config(processes=1, jobs=[("EchoJob", h)]))
    before = f.wait_workers(1)
    r = redis.Redis.from_url(redis_server)
    r.lpush("queue:default", "not json")
    wait_until(lambda: b"not json" in r.zrange("dead", 0, -1), 10,
               what=f"'not json' in dead\n{f.text()[-2000:]}")
    noclass = json.dumps({"args": [1], "jid": "0123456789abcdef01234567", "queue": "default"})
    r.lpush("queue:default", noclass)
    wait_until(lambda: len(r.zrange("dead", 0, -1)) == 2, 10,
               what=f"class-less job in dead\n{f.text()[-2000:]}")
    dead = [m.decode() for m in r.zrange("dead", 0, -1)]
    assert "not json" in dead
    other = [json.loads(m) for m in dead if m != "not json"]
    assert other[0]["jid"] == "0123456789abcdef01234567" and other[0]["args"] == [1]
    good = push(redis_server, {"class": "EchoJob", "args": ["ok"]})[0]
    got = wait_runs(tmpdir_path, 1, f=f)
    assert got[0]["jid"] == good["jid"]
    assert f.workers() == before                   # same worker, never restarted
    assert not f.lines("worker exited")
    assert f.proc.poll() is None
    assert r.llen("queue:default") == 0


# -- 7. Redis restart -----------------------------------------------------------

class AofRedis:
    """A redis-server with an fsync-always AOF in dir, restartable on one port."""

    def __init__(self, dir):
        self.dir, self.port, self.proc = dir, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        wait_until(lambda: _try(up), 10, what="redis-server (aof)")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def aof_redis(tmpdir_path):
    d = os.path.join(tmpdir_path, "aof")
    os.mkdir(d)
    srv = AofRedis(d)
    srv.start()
    try:
        yield srv
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait(10)


def test_redis_restart_mid_run_all_jobs_run_and_forq_reconnects(forq, aof_redis, tmpdir_path):
    h = write_handler(tmpdir_path, "echo.sh")
    url = aof_redis.url
    f = forq(env={"REDIS_URL": url}, config=config(processes=2, jobs=[("EchoJob", h)]))
    f.wait_workers(2)
    first = push(url, [{"class": "EchoJob", "args": ["before", i]} for i in range(3)])
    wait_runs(tmpdir_path, 3, f=f)
    # Due only after the restart: survives in the AOF, then the poller (the
    # master's own connection) has to have reconnected to move it.
    later = push(url, {"class": "EchoJob", "args": ["scheduled"], "at": time.time() + 2.0})

    aof_redis.stop()
    f.wait_log(r"redis unavailable", timeout=10)
    time.sleep(1.0)                                 # let the backoff grow a little
    aof_redis.start()
    restarted = time.time()
    second = push(url, [{"class": "EchoJob", "args": ["after", i]} for i in range(3)])
    r = wait_runs(tmpdir_path, 7, timeout=30, f=f)
    assert sorted(x["jid"] for x in r) == sorted(p["jid"] for p in first + later + second)
    # The heartbeat beats again on the new server.
    wait_until(lambda: (p := rb(url, "processes")["list"]) and p[0]["beat"] > restarted, 12,
               interval=0.5, what=f"a heartbeat after the restart\n{f.text()[-2000:]}")
    assert f.proc.poll() is None
    text = f.text()
    down = text.index("redis unavailable")
    assert "redis connected" in text[down:], text[-3000:]
    assert not f.lines("forq stopped")
    assert stats(url)["queues"] == {"default": 0}
    assert len(runs(tmpdir_path)) == 7


# -- 8. unknown class ----------------------------------------------------------

def test_unknown_class_goes_to_retry_set_as_unknown_job_class(forq, redis_server,
                                                               tmpdir_path):
    h = write_handler(tmpdir_path, "echo.sh")
    f = forq(config=config(jobs=[("EchoJob", h)]))
    pushed = push(redis_server, {"class": "NoSuchJob", "args": [1]})[0]
    e = wait_set(redis_server, "retries", what=f"retry entry\n{f.text()[-2000:]}")
    assert len(e) == 1
    item = e[0]["item"]
    assert e[0]["jid"] == pushed["jid"] and item["class"] == "NoSuchJob"
    assert item["error_class"] == "UnknownJobClass"
    assert item["retry_count"] == 0 and isinstance(item["failed_at"], float)
    assert isinstance(item["error_message"], str)
    assert 15 - 0.01 <= e[0]["score"] - item["failed_at"] <= 24 + 0.01
    assert web_status(redis_server, [f"/retries/{key_of(e[0])}"]) == \
        {f"/retries/{key_of(e[0])}": 200}
    assert runs(tmpdir_path) == []
