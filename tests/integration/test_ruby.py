"""Ruby jobs in forq's workers (forq(1), RUBY JOBS): a Rails 6.1 app and a
plain Sidekiq app (tests/apps/) loaded by forq's Ruby plugin run their own
Sidekiq::Worker and ActiveJob classes. Jobs are enqueued by the apps' own
Sidekiq client (tests/ruby/enqueue.rb); what the jobs, the middleware, the
error handlers and the lifecycle events saw is read back from the JSON-lines
files the apps write in $FORQ_TEST_OUT, and from Redis."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import BUILD, alive, proc_children, wait_until
from test_jobs import rconn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "tests", "apps")
ENQUEUE = os.path.join(ROOT, "tests", "ruby", "enqueue.rb")
RUBY = "/usr/bin/ruby"
RUBY_PLUGIN = os.path.join(BUILD, "plugins", "ruby", "libforq_ruby.so")

if os.environ.get("FORQ_SANITIZED") == "1":
    # Ruby's conservative GC reads whole stacks and heaps, which ASan reports.
    pytest.skip("Ruby jobs are not run under the sanitizers", allow_module_level=True)
if not os.path.exists(RUBY_PLUGIN):
    pytest.skip(f"no Ruby plugin at {RUBY_PLUGIN}", allow_module_level=True)

# Variables of the caller's shell that would change how the apps boot.
FOREIGN_ENV = ("RAILS_ENV", "RACK_ENV", "BUNDLE_GEMFILE", "RUBYOPT", "RUBYLIB", "REDIS_PROVIDER")


@pytest.fixture(autouse=True)
def clean_ruby_env(monkeypatch):
    for k in FOREIGN_ENV:
        monkeypatch.delenv(k, raising=False)


class App:
    """A Ruby app under test: its path, its output directory and database."""

    def __init__(self, tmpdir, path):
        self.path = path
        self.out = os.path.join(tmpdir, "out")
        os.makedirs(self.out, exist_ok=True)
        self.env = {"FORQ_TEST_OUT": self.out, "FORQ_TEST_DB": os.path.join(tmpdir, "test.sqlite3")}

    def read(self, name):
        """The JSON records in out/NAME, oldest first."""
        try:
            with open(os.path.join(self.out, name)) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def wait(self, name, pred=lambda r: True, count=1, timeout=10.0):
        def found():
            hits = [r for r in self.read(name) if pred(r)]
            return len(hits) >= count and hits
        try:
            return wait_until(found, timeout, what=f"{count} record(s) in {name}")
        except AssertionError as e:
            raise AssertionError(f"{e}; {name} has: {self.read(name)}") from None

    def enqueue(self, redis_url, *requests):
        """Enqueues through the app's own client; returns the jids (and job ids)."""
        r = subprocess.run([RUBY, ENQUEUE, self.path, json.dumps(list(requests))],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, REDIS_URL=redis_url, **self.env))
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout.splitlines()[-1])

    def records(self):
        """The rows of the Rails app's records table, by name."""
        db = sqlite3.connect(self.env["FORQ_TEST_DB"], timeout=5)
        try:
            rows = db.execute("SELECT name, worker_pid, conn_id, note FROM records").fetchall()
        finally:
            db.close()
        return {name: {"name": name, "worker_pid": pid, "conn_id": conn,
                       "note": json.loads(note or "{}")} for name, pid, conn, note in rows}


def ruby_run(args, env, cwd=None, timeout=60):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       env=dict(os.environ, **env))
    assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture
def rails_app(tmpdir_path):
    """A copy of tests/apps/rails_app with its bundle locked offline against
    the installed gems and its sqlite database created."""
    path = os.path.join(tmpdir_path, "rails_app")
    shutil.copytree(os.path.join(APPS, "rails_app"), path,
                    ignore=shutil.ignore_patterns("Gemfile.lock", "log", "tmp", "*.sqlite3*"))
    app = App(tmpdir_path, path)
    ruby_run(["bundle", "lock", "--local"], {"BUNDLE_GEMFILE": os.path.join(path, "Gemfile")},
             cwd=path)
    ruby_run([RUBY, os.path.join(path, "db", "setup.rb")], app.env)
    return app


@pytest.fixture
def plain_app(tmpdir_path):
    return App(tmpdir_path, os.path.join(APPS, "plain_app.rb"))


def ruby_api(redis_url, code):
    """Runs CODE with Sidekiq's API against REDIS_URL; returns its JSON output."""
    prelude = ('require "json"; require "sidekiq"; require "sidekiq/api"\n'
               'Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)\n')
    out = ruby_run([RUBY, "-e", prelude + code], {"REDIS_URL": redis_url})
    return json.loads(out)


def worker_pids(f):
    return {p for pids in f.workers().values() for p in pids}


def jids_of(enqueued):
    return {e["jid"] for e in enqueued}


def start_rails(forq, app, *extra, processes=2, env=None):
    f = forq("-P", str(processes), "--prefork", "-r", app.path, "-e", "test", *extra,
             env=dict(app.env, **(env or {})))
    f.wait_workers(processes, timeout=30)
    return f


def test_rails_app_jobs_in_preforked_workers(forq, redis_server, rails_app):
    """One Rails app, loaded once in the master, run by two workers: Active
    Record writes over per-worker connections inside the executor, middleware
    and error handlers, Sidekiq's retry rules, ActiveJob, lifecycle events."""
    app, r = rails_app, rconn(redis_server)
    f = start_rails(forq, app)
    workers = worker_pids(f)
    assert len(workers) == 2

    # Loaded once, in the master, in server mode, with RAILS_ENV from -e, and
    # with Sidekiq's Rails engine in place (its reloader wraps every job).
    boot = [b for b in app.read("boot.log") if b["server"]]
    assert [b["pid"] for b in boot] == [f.pid], boot
    assert boot[0]["rails_env"] == "test"
    assert boot[0]["reloader"] == "Sidekiq::Rails::Reloader"
    master_conn = boot[0]["conn_id"]
    assert master_conn
    # :startup fired once in every worker, after fork.
    started = app.wait("events.log", lambda e: e["event"] == "startup", count=2)
    assert sorted(e["pid"] for e in started) == sorted(workers)

    records = [{"class": "RecordWorker", "args": [f"r{i}", 0.3]} for i in range(4)]
    jobs = app.enqueue(
        redis_server, *records,
        {"class": "FailingWorker", "args": ["f"]},
        {"class": "NoRetryWorker", "args": ["n"]},
        {"class": "ExhaustedWorker", "args": ["e"]},
        {"class": "ToolboxWorker", "args": ["t"]},
        {"class": "RecordJob", "args": ["aj-ok"], "via": "perform_later"},
        {"class": "RecordJob", "args": ["aj-flaky", "flaky"], "via": "perform_later"},
        {"class": "RecordJob", "args": ["aj-discard", "discard"], "via": "perform_later"})
    by_name = dict(zip(["r0", "r1", "r2", "r3", "f", "n", "e", "t", "aj-ok", "aj-flaky",
                        "aj-discard"], jobs))

    # The failing job's first failure: a retry entry due 1 s (+ Sidekiq's
    # jitter of up to 9 s) after it failed, with the error and a backtrace.
    fail_jid = by_name["f"]["jid"]
    retry = wait_until(lambda: r.zrange("retry", 0, -1, withscores=True), 10, what="a retry entry")
    assert len(retry) == 1, retry
    payload, score = retry[0]
    entry = json.loads(payload)
    assert entry["jid"] == fail_jid and entry["class"] == "FailingWorker"
    assert entry["retry_count"] == 0 and entry["retry"] == 2
    assert entry["error_class"] == "RuntimeError"
    assert entry["error_message"] == "failing on purpose: f"
    assert 1.0 <= score - entry["failed_at"] < 11.0, (score, entry["failed_at"])
    seen = ruby_api(redis_server, 'puts JSON.generate(Sidekiq::RetrySet.new.map { |e| '
                    '{"jid" => e.jid, "bt" => e.error_backtrace} })')
    assert seen[0]["jid"] == fail_jid
    bt = seen[0]["bt"]
    assert "failing_worker.rb:" in bt[0] and "validate_card" in bt[0], bt[:5]
    assert any("in `charge'" in l for l in bt) and any("in `perform'" in l for l in bt)

    # Everything but the retried job ran to its end.
    names = ["r0", "r1", "r2", "r3", "aj-ok", "aj-flaky"]
    rows = wait_until(lambda: (lambda rs: all(n in rs for n in names) and rs)(app.records()),
                      20, what="the Active Record rows")
    recs = [rows[f"r{i}"] for i in range(4)]
    assert {x["worker_pid"] for x in recs} == workers, recs
    for x in recs:
        # A worker's connection is its own, opened after fork, not the master's
        # (object ids only grow, so a new one never has the master's id; the
        # two workers' may be equal: they count on from the same heap) ...
        assert x["conn_id"] != master_conn, (x, master_conn)
        # ... and the executor gave it back after the worker's previous job.
        assert x["note"]["held_before"] is False, x
        assert x["note"]["executor"] is True and x["note"]["server"]
        assert x["note"]["reloader"] == "Sidekiq::Rails::Reloader"
        assert x["note"]["rails_env"] == "test"
        assert x["note"]["jid"] == by_name[x["name"]]["jid"]

    # ActiveJob: performed once; the flaky one again (retry_on) under a new
    # jid but the same job id; the discarded one never, but discard_on ran.
    assert rows["aj-ok"]["note"]["executions"] == 1
    assert rows["aj-ok"]["note"]["provider_job_id"] == by_name["aj-ok"]["jid"]
    assert rows["aj-flaky"]["note"]["executions"] == 2
    assert rows["aj-flaky"]["note"]["job_id"] == by_name["aj-flaky"]["job_id"]
    assert rows["aj-flaky"]["note"]["provider_job_id"] != by_name["aj-flaky"]["jid"]
    assert "aj-discard" not in rows
    discarded = app.wait("discarded.log")
    assert [(d["job_id"], d["error_class"]) for d in discarded] == \
        [(by_name["aj-discard"]["job_id"], "RecordJob::Unwanted")]

    # system, backticks, Timeout and threads work in a forked worker.
    tool = app.wait("toolbox.log")[0]
    assert tool["pid"] in workers
    assert tool == dict(tool, system=True, system_false=False, backticks="forq",
                        backticks_status=0, timeout="Timeout::Error", timeout_ok="in time",
                        thread_value=42, killed_joined=True, killed_alive=False)

    # retry: false -- the handler saw it, no retry and no dead entry; retry: 0
    # with dead: false -- retries exhausted at once, hook ran, no dead entry.
    errors = {e["jid"]: e for e in app.read("errors.log")}
    for name, cls in (("f", "RuntimeError"), ("n", "NoRetryWorker::Refused"), ("e", "IOError")):
        e = errors[by_name[name]["jid"]]
        assert e["error_class"] == cls and e["context"] == "Job raised exception"
        assert e["jobstr"] is True
    exhausted = app.read("exhausted.log")
    assert [(x["jid"], x["ex"]) for x in exhausted] == [(by_name["e"]["jid"], "IOError")]
    assert [json.loads(p)["jid"] for p in r.zrange("retry", 0, -1)] == [fail_jid]
    assert r.zcard("dead") == 0

    # The server middleware wrapped every job, ActiveJob's through JobWrapper.
    before = {m["jid"]: m for m in app.read("middleware.log") if m["phase"] == "before"}
    assert jids_of(jobs) <= set(before), (jids_of(jobs) - set(before))
    aj = before[by_name["aj-ok"]["jid"]]
    assert aj["wrapped"] == "RecordJob"
    assert aj["worker"] == "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"

    # The retry runs again once due (the leader polls every 2.5-7.5 s), fails
    # again and is back in the retry set with retry_count 1.
    app.wait("attempts.log", lambda a: a["jid"] == fail_jid, count=2, timeout=25)
    again = [m for m in app.read("middleware.log")
             if m["jid"] == fail_jid and m["phase"] == "before"]
    assert [m["retry_count"] for m in again[:2]] == [None, 0]
    entry = wait_until(lambda: [json.loads(p) for p in r.zrange("retry", 0, -1)
                                if json.loads(p).get("retry_count") == 1], 10,
                       what="the second retry entry")[0]
    assert entry["jid"] == fail_jid and "retried_at" in entry

    # Lifecycle: :quiet in every worker on TSTP, :shutdown in every one at stop.
    f.signal(signal.SIGTSTP)
    quiet = app.wait("events.log", lambda e: e["event"] == "quiet", count=2)
    assert sorted(e["pid"] for e in quiet) == sorted(workers)
    f.signal(signal.SIGTERM)
    assert f.wait_exit(30) == 0
    down = app.read("events.log")
    assert sorted(e["pid"] for e in down if e["event"] == "shutdown") == sorted(workers)
    assert not [p for p in workers if alive(p)]
    # The workers never loaded the app again (the client did, as a client).
    assert [b["pid"] for b in app.read("boot.log") if b["server"]] == [f.pid]


def test_term_lets_long_ruby_jobs_finish_after_jobs_trapped_term(forq, redis_server, rails_app):
    """Jobs that Signal.trap("TERM") in both workers take nothing from forq:
    TERM to the master still lets the long jobs that follow finish, and
    stops every worker gracefully."""
    app = rails_app
    f = start_rails(forq, app, "-t", "10")
    workers = worker_pids(f)
    # Two quick jobs for two idle workers: one each (never more than a share).
    app.enqueue(redis_server, {"class": "TrapWorker", "args": [0.5]},
                {"class": "TrapWorker", "args": [0.5]})
    trapped = app.wait("trap.log", count=2)
    assert {t["pid"] for t in trapped} == workers
    app.enqueue(redis_server, {"class": "SlowWorker", "args": [2, "s1"]},
                {"class": "SlowWorker", "args": [2, "s2"]})
    starts = app.wait("slow.log", lambda s: s["phase"] == "start", count=2)
    assert {s["pid"] for s in starts} == workers
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    assert f.wait_exit(20) == 0
    took = time.monotonic() - t0
    finished = [s for s in app.read("slow.log") if s["phase"] == "finish"]
    assert sorted(s["tag"] for s in finished) == ["s1", "s2"], app.read("slow.log")
    assert took < 9, took            # finished, not killed at the shutdown timeout
    down = [e["pid"] for e in app.read("events.log") if e["event"] == "shutdown"]
    assert sorted(down) == sorted(workers)
    assert not rconn(redis_server).zcard("retry")


def test_sigkill_of_a_worker_mid_ruby_job_runs_it_again(forq, redis_server, rails_app):
    app, r = rails_app, rconn(redis_server)
    f = start_rails(forq, app, processes=1)
    [job] = app.enqueue(redis_server, {"class": "SlowWorker", "args": [1.5, "k"]})
    first = app.wait("slow.log", lambda s: s["phase"] == "start")[0]
    os.kill(first["pid"], signal.SIGKILL)
    again = app.wait("slow.log", lambda s: s["phase"] == "start" and s["pid"] != first["pid"],
                     timeout=15)[0]
    assert again["jid"] == job["jid"] == first["jid"]
    done = app.wait("slow.log", lambda s: s["phase"] == "finish", timeout=10)
    assert [d["pid"] for d in done] == [again["pid"]]
    assert again["pid"] in worker_pids(f)
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0 and r.llen("queue:default") == 0
    # :startup fired in the replacement too.
    assert again["pid"] in [e["pid"] for e in app.read("events.log") if e["event"] == "startup"]
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0


def test_broken_app_is_a_configuration_error_with_its_backtrace(forq, rails_app):
    broken = os.path.join(APPS, "broken_app.rb")
    f = forq("-P", "1", "--prefork", "-r", broken)
    assert f.wait_exit(30) == 78
    text = f.text()
    assert "ArgumentError" in text and "broken on purpose (config/settings.yml)" in text
    assert "broken_app.rb:15" in text and "broken_app.rb:19" in text, text
    assert not f.lines("worker started")          # it failed before any fork
    # forq -n loads the app too.
    check = forq("-n", "-r", broken)
    assert check.wait_exit(30) == 78
    assert "broken on purpose" in check.text() and "broken_app.rb:15" in check.text()
    # Without --prefork every worker fails to load it, exits 78, is not
    # respawned, and so forq exits 78.
    each = forq("-P", "2", "--no-prefork", "-r", broken)
    assert each.wait_exit(30) == 78
    assert "broken on purpose" in each.text()
    ok = forq("-n", "-r", rails_app.path, "-e", "test", env=rails_app.env)
    assert ok.wait_exit(30) == 0, ok.text()
    assert "configuration OK" in ok.text()
    assert [b["rails_env"] for b in rails_app.read("boot.log")] == ["test"]


def test_plain_app_without_prefork_runs_namespaced_jobs(forq, redis_server, plain_app):
    app, r = plain_app, rconn(redis_server)
    f = forq("-P", "2", "--no-prefork", "-r", app.path, env=app.env)
    f.wait_workers(2, timeout=30)
    workers = worker_pids(f)
    # Loaded in each worker after fork, never in the master.
    loaded = app.wait("loaded.log", count=2)
    assert sorted(x["pid"] for x in loaded) == sorted(workers)
    assert all(x["server"] for x in loaded)
    jobs = app.enqueue(redis_server,
                       {"class": "Billing::ChargeJob", "args": ["acme", 250]},
                       {"class": "Billing::ChargeJob", "args": ["acme", -1]},
                       {"class": "HelloWorker", "args": ["world"]})
    charge = app.wait("charges.log")[0]
    assert charge == dict(charge, jid=jobs[0]["jid"], **{"class": "Billing::ChargeJob"},
                          account="acme", cents=250)
    assert app.wait("hello.log")[0]["jid"] == jobs[2]["jid"]
    err = app.wait("errors.log")[0]
    assert (err["jid"], err["error_class"], err["context"]) == \
        (jobs[1]["jid"], "ArgumentError", "Job raised exception")
    entry = json.loads(wait_until(lambda: r.zrange("retry", 0, -1), 5, what="retry entry")[0])
    assert (entry["class"], entry["jid"], entry["retry_count"]) == \
        ("Billing::ChargeJob", jobs[1]["jid"], 0)
    assert entry["error_message"] == "negative charge for acme"
    seen = {m["jid"]: m for m in app.read("middleware.log")}
    assert set(seen) == jids_of(jobs)
    assert seen[jobs[0]["jid"]]["worker"] == "Billing::ChargeJob"
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
    down = [e["pid"] for e in app.read("events.log") if e["event"] == "shutdown"]
    assert sorted(down) == sorted(workers)


def test_ruby_daemon_holds_the_cluster_lease_on_one_of_two_nodes(forq, redis_server, rails_app):
    app, r = rails_app, rconn(redis_server)
    cfg = ("[forq]\nprocesses = 1\nshutdown_timeout = 2\ndaemon_ttl = 3\ndaemon_renew = 1\n"
           "daemon_acquire = 0.5\n"
           '[daemon "ticker"]\nruby = TickerDaemon\nargs = ["ticker", 0.2]\nscope = cluster\n'
           "checkin_timeout = 1\nstop_timeout = 2\n")
    nodes = [forq("--prefork", "-r", app.path, "-e", "test", config=cfg,
                  env=dict(app.env, FORQ_TEST_NODE=str(i))) for i in range(2)]
    for n in nodes:
        n.wait_workers(1, timeout=30)

    def holder():
        v = r.get("forq:daemon:ticker")
        return v and (v.rsplit("|", 1)[0], int(v.rsplit("|", 1)[1]))

    ident, token = wait_until(holder, 10, what="a holder of the ticker lease")
    start = app.wait("daemon.log", lambda d: d["phase"] == "start", timeout=10)[0]
    node = next(n for n in nodes if f":{n.pid}:" in ident)
    other = next(n for n in nodes if n is not node)
    node.seen.add(start["pid"])
    assert start["node"] == str(nodes.index(node))
    assert (start["label"], start["token"], start["token_class"]) == ("ticker", token, "Integer")
    assert start["pid"] in proc_children(node.pid)
    # Check-ins (every 0.2 s, checkin_timeout 1 s) keep the one daemon running.
    time.sleep(2.5)
    starts = [d for d in app.read("daemon.log") if d["phase"] == "start"]
    assert len(starts) == 1, starts
    ticks = [d for d in app.read("daemon.log") if d["phase"] == "tick"]
    assert len(ticks) >= 8 and {t["pid"] for t in ticks} == {start["pid"]}
    assert alive(start["pid"])

    # A graceful stop of the holder ends its daemon (ensure ran) and hands
    # the lease to the other node, with a greater token.
    node.signal(signal.SIGTERM)
    assert node.wait_exit(15) == 0
    ends = [d for d in app.read("daemon.log") if d["phase"] == "end"]
    assert [e["pid"] for e in ends] == [start["pid"]]
    new = app.wait("daemon.log", lambda d: d["phase"] == "start" and d["pid"] != start["pid"],
                   timeout=10)[0]
    other.seen.add(new["pid"])
    assert new["node"] == str(nodes.index(other)) and new["token"] > token
    assert f":{other.pid}:" in holder()[0] and holder()[1] == new["token"]
    other.signal(signal.SIGTERM)
    assert other.wait_exit(15) == 0
    assert not alive(new["pid"])


def test_bundle_exec_forq_runs_the_rails_app(forq, redis_server, rails_app):
    app = rails_app
    gemfile = os.path.join(app.path, "Gemfile")
    f = forq("-P", "1", "--prefork", "-r", app.path, "-e", "test",
             env=dict(app.env, BUNDLE_GEMFILE=gemfile), wrap=["bundle", "exec"])
    f.wait_workers(1, timeout=30)
    [job] = app.enqueue(redis_server, {"class": "RecordWorker", "args": ["bundled"]})
    row = wait_until(lambda: app.records().get("bundled"), 15, what="the record")
    assert row["note"]["jid"] == job["jid"] and row["worker_pid"] in worker_pids(f)
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
