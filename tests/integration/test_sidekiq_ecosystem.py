"""What Sidekiq 7.x/8.x readers need from forq (issue 11, items 1-3): the
process info's capsules, true Busy rows in batch mode, and the Metrics
tab's counts in the 7.x and 8.x layouts. Sidekiq 6.4.1 (Debian) is driven
for real (API, Web UI through Rack::Test); 7.x/8.x readers are evaluated
verbatim on forq's data by tests/ruby/sidekiq_ecosystem.rb. Jobs run in the
test plugin: TestJob succeeds, fails with "fail" in its args, and sleeps
FORQ_TEST_NAP_MS with "nap"."""
import json
import os
import signal
import subprocess
import time
import uuid

import redis

from conftest import ROOT, TESTPLUG, wait_until

RUBY = os.path.join(ROOT, "tests", "ruby", "sidekiq_ecosystem.rb")
WEB_PAGES = ["/", "/busy", "/queues", "/retries", "/morgue"]
WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"


def rb(url, cmd, arg=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    env["REDIS_URL"] = url
    argv = ["ruby", RUBY, cmd] + ([json.dumps(arg)] if arg is not None else [])
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, f"ruby {cmd} failed: {r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def config(processes=1, queues="default", extra=""):
    return (f"[forq]\nprocesses = {processes}\nqueues = {queues}\nshutdown_timeout = 5\n"
            f"plugins = {TESTPLUG}\n{extra}")


def payload(args, cls="TestJob", **extra):
    """A job as Sidekiq's client writes it."""
    now = time.time()
    job = {"class": cls, "args": args, "retry": False, "queue": "default",
           "jid": uuid.uuid4().hex[:24], "created_at": now, "enqueued_at": now}
    job.update(extra)
    return job


def enqueue(r, jobs):
    """All jobs in one LPUSH, oldest first out, as Sidekiq's push_bulk."""
    r.sadd("queues", "default")
    r.lpush("queue:default", *[json.dumps(j) for j in jobs])


# -- 1. process info: capsules beside the fields 6.4 and 7.x read -----------

def test_process_info_is_read_alike_by_6_4_7_x_and_8_x(forq, redis_server):
    nodes = {
        "weighted": forq(config=config(2, "critical:3, default:1")),
        "strict": forq(config=config(1, "critical, default")),
        "random": forq(config=config(1, "a:2, b:2")),
    }
    by_pid = {}

    def registered():
        by_pid.update({p["pid"]: p for p in rb(redis_server, "processes")})
        return all(f.pid in by_pid for f in nodes.values())
    wait_until(registered, 15, interval=0.3, what="three forq processes in ProcessSet")
    w, s, rnd = (by_pid[nodes[k].pid] for k in ("weighted", "strict", "random"))

    assert w["capsules"] == {"default": {"concurrency": 2, "mode": "weighted",
                                         "weights": {"critical": 3, "default": 1}}}, w
    assert w["v6_queues"] == w["v7_queues"] == w["v8_queues"] == ["critical", "default"]
    assert w["v8_weights"] == {"critical": 3, "default": 1}
    assert w["v7_column"] == "critical: 3, default: 1"
    assert w["v8_column"] == "critical, default"
    assert w["concurrency"] == 2 and w["version"].startswith("forq-")

    assert s["capsules"] == {"default": {"concurrency": 1, "mode": "strict",
                                         "weights": {"critical": 0, "default": 0}}}, s
    assert s["v7_column"] == "critical, default" == s["v8_column"]

    assert rnd["capsules"]["default"]["mode"] == "random", rnd
    assert rnd["v8_weights"] == {"a": 2, "b": 2}

    pages = rb(redis_server, "web", WEB_PAGES)
    assert {k: v["status"] for k, v in pages.items()} == {k: 200 for k in WEB_PAGES}
    for f in nodes.values():
        assert f":{f.pid}" in pages["/busy"]["body"]


# -- 3. Busy rows: the job each worker runs now, batches included -------------

def sample(r, ident, working):
    """One atomic look at the rows and the busy count, as Sidekiq reads them."""
    p = r.pipeline(transaction=True)
    p.hgetall(f"{ident}:work")
    p.hgetall(f"{ident}:workers")
    p.hget(ident, "busy")
    p.llen(working)
    work, workers, busy, held = p.execute()

    def rows(h):
        out = {}
        for tid, v in h.items():
            e = json.loads(v)
            job = json.loads(e["payload"])
            out[tid.decode()] = (job["jid"], job["args"], e["run_at"], e["queue"])
        return out
    return {"t": time.time(), "work": rows(work), "workers": rows(workers),
            "busy": int(busy or 0), "held": held}


def test_busy_rows_show_each_running_job_of_a_batch(forq, redis_server):
    r = redis.Redis.from_url(redis_server)
    f = forq(config=config(1), env={"FORQ_TEST_NAP_MS": "3000"})
    ident = wait_until(lambda: (m := r.smembers("processes")) and next(iter(m)).decode(), 10,
                       what="forq registered")
    wait_until(lambda: r.hexists(ident, "info"), 10, what="first beat")
    working = f"forq:working:{ident}:0"

    # Quick jobs set the worker's pace, so the slow ones come in a batch
    # behind a quick one: nothing records between them.
    quick = [payload(["q", i]) for i in range(200)]
    s1, s2 = payload(["nap", "first"]), payload(["nap", "second"])
    tail = [payload(["q", "tail", i]) for i in range(7)]
    t_push = time.time()
    enqueue(r, quick + [payload(["q", "lead"]), s1, s2] + tail)

    samples, seen, during_s2 = [], {}, None
    deadline = time.time() + 20
    while time.time() < deadline:
        x = sample(r, ident, working)
        samples.append(x)
        for jid, args, run_at, queue in x["work"].values():
            seen.setdefault(jid, (x["t"], args, run_at, queue))
        if during_s2 is None and any(v[0] == s2["jid"] for v in x["work"].values()):
            # 6.4.1's API and Web UI, and 7.x/8.x's WorkSet, while S2 runs.
            during_s2 = (rb(redis_server, "work"), rb(redis_server, "web", ["/busy"]))
        if s2["jid"] in seen and not x["work"] and x["held"] == 0:
            break
        time.sleep(0.1)
    assert s1["jid"] in seen and s2["jid"] in seen, f"{seen}\n{f.text()[-3000:]}"

    # Each slow job was shown with its own jid, args and start, and the
    # second one's start is its own, not its batch's fetch time.
    t1, args1, run1, q1 = seen[s1["jid"]]
    t2, args2, run2, q2 = seen[s2["jid"]]
    assert (args1, args2, q1, q2) == (["nap", "first"], ["nap", "second"], "default", "default")
    assert t_push - 1 <= run1 <= t1 + 1, (t_push, run1, t1)
    assert run2 - run1 >= 2, (run1, run2)
    # They were one batch: S2 was held in the working list while S1 ran.
    assert any(x["held"] >= 2 and any(v[0] == s1["jid"] for v in x["work"].values())
               for x in samples), samples[:5]
    # Every look: one row per running job in both hashes, busy = the rows.
    for x in samples:
        assert x["work"] == x["workers"], x
        assert x["busy"] == len(x["work"]) <= 1, x

    work, web = during_s2
    assert [(w["jid"], w["args"], w["class"]) for w in work["v6"]] == \
        [(s2["jid"], ["nap", "second"], "TestJob")], work
    assert [(w["jid"], w["args"], w["run_at"]) for w in work["v78"]] == \
        [(s2["jid"], ["nap", "second"], run2)], work
    assert work["v6_size"] == sum(work["busy"]) == 1, work
    assert web["/busy"]["status"] == 200
    assert s2["jid"] in web["/busy"]["body"] and "second" in web["/busy"]["body"]


# -- 2. Metrics: the 7.x and 8.x layouts --------------------------------------

def metric_keys(r):
    return sorted(k.decode() for k in r.keys("*") if k.startswith((b"j|", b"h|", b"TestJob-")))


def wait_processed(r, n, f):
    wait_until(lambda: int(r.get("stat:processed") or 0) >= n, 15, interval=0.2,
               what=f"{n} processed\n{f.text()[-2000:]}")


def test_metrics_written_for_7_x_and_8_x_readers(forq, redis_server):
    r = redis.Redis.from_url(redis_server)

    # Off: nothing is written.
    off = forq(config=config(1, extra="sidekiq_metrics = off\n"))
    enqueue(r, [payload(["ok", i]) for i in range(3)])
    wait_processed(r, 3, off)
    off.signal(signal.SIGTERM)
    assert off.wait_exit(15) == 0
    assert metric_keys(r) == []
    r.flushdb()

    f = forq(config=config(2), env={"FORQ_TEST_NAP_MS": "120"})
    jobs = ([payload(["ok", i]) for i in range(6)] + [payload(["fail", i]) for i in range(3)]
            + [payload(["nap", i]) for i in range(2)]
            + [payload([{"job_class": "Metrics::WrappedJob"}], cls=WRAPPER,
                       wrapped="Metrics::WrappedJob") for _ in range(2)])
    enqueue(r, jobs)

    def runs(cls):
        return sum(int(r.hget(k, f"{cls}|p") or 0) for k in r.keys("j|*"))
    # The periodic flush (every 5 s) writes the three hashes.
    wait_until(lambda: runs("TestJob") == 3 * 11 and runs("Metrics::WrappedJob") == 3 * 2, 15,
               interval=0.3, what=f"flushed metrics\n{f.text()[-2000:]}")
    # The exit flush writes what the last jobs did.
    enqueue(r, [payload(["ok", "late", i]) for i in range(2)])
    wait_processed(r, 15, f)
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
    assert not f.lines("sidekiq metrics"), f.text()[-2000:]

    m = rb(redis_server, "metrics", {"classes": ["TestJob", "Metrics::WrappedJob"],
                                     "minutes": 10})
    for layout in ("v7", "v8", "v8_rollup"):
        t = m[layout]["TestJob"]
        assert (t["p"], t["f"]) == (13, 3), (layout, m[layout])
        assert 240 <= t["ms"] < 10 * 1000, (layout, t)
        wrapped = m[layout]["Metrics::WrappedJob"]
        assert wrapped == {"p": 2, "f": 2}, (layout, wrapped)  # no time for failures
        assert set(m[layout]) == {"TestJob", "Metrics::WrappedJob"}, m[layout]
    assert m["v7"]["TestJob"]["ms"] == m["v8"]["TestJob"]["ms"]
    for h in ("v7_hist", "v8_hist"):
        hist = m[h]["TestJob"]
        assert sum(hist) == 10, (h, hist)          # the successes
        assert sum(hist[5:]) >= 2, (h, hist)       # the naps: 120 ms and more
        assert sum(m[h]["Metrics::WrappedJob"]) == 0
    assert m["v7_hist"] == m["v8_hist"]

    # TTLs as Sidekiq's: 8 h for minutes and histograms, 72 h for the rollup.
    keys = metric_keys(r)
    assert keys, keys
    for k in keys:
        ttl = r.ttl(k)
        if k.startswith("j|") and len(k.split("|")[1]) == 6 and len(k.split(":")[1]) == 1:
            assert 72 * 3600 - 120 < ttl <= 72 * 3600, (k, ttl)
        else:
            assert 8 * 3600 - 120 < ttl <= 8 * 3600, (k, ttl)
    assert any(k.startswith("h|TestJob-") for k in keys)
    assert any(k.startswith("TestJob-") for k in keys)
