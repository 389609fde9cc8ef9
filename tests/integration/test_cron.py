"""Cron (DESIGN.md §6.2): each tick enqueued exactly once in the cluster,
also while leaders die; catch-up policies for missed ticks; no backfill for a
new or changed entry; overlap = forbid; status; bad entries are config
errors. Time-zone and DST arithmetic is unit-tested (tests/unit/test_cronexpr.c)."""
import json
import os
import signal
import subprocess
import time

from conftest import FORQ, wait_until
from test_jobs import rconn

BASE = "[forq]\nprocesses = 1\nleader_ttl = 3\nleader_renew = 1\nshutdown_timeout = 2\n"


def holder(r):
    v = r.get("forq:leader")
    return v and v.rsplit("|", 1)


def node_of(nodes, identity):
    return next((n for n in nodes if f":{n.pid}:" in identity), None)


def jobs(r, queue):
    return [json.loads(p) for p in r.lrange(f"queue:{queue}", 0, -1)]


def test_every_second_exactly_once_while_leaders_are_killed(forq, redis_server):
    cfg = BASE + ('[cron "tick"]\nschedule = * * * * * *\nclass = Tick\nqueue = ticks\n'
                  'catch_up = all\n')
    r = rconn(redis_server)
    nodes = [forq(config=cfg) for _ in range(3)]
    t_start = int(r.time()[0])
    kills = []
    for round_ in range(2):
        time.sleep(12)
        ident, _ = wait_until(lambda: holder(r), 10, what="a leader")
        leader = node_of(nodes, ident)
        os.kill(leader.pid, signal.SIGKILL)
        kills.append(int(r.time()[0]))
        nodes.remove(leader)
        nodes.append(forq(config=cfg))          # keep three nodes
    time.sleep(40 - 24)
    wait_until(lambda: holder(r), 10, what="a leader")
    time.sleep(4)                                # the gap of the last kill is caught up
    t_end = int(r.time()[0]) - 2
    got = [j for j in jobs(r, "ticks")]
    jids = [j["jid"] for j in got]
    assert len(jids) == len(set(jids)), "a tick was enqueued twice"
    ticks = sorted(j["cron_tick"] for j in got)
    assert ticks[0] >= t_start                   # no backfill before the start
    # catch_up = all: every second from the first tick on, exactly once,
    # including the seconds no leader ran (two leaderless gaps of ~3 s)
    window = [t for t in ticks if t <= t_end]
    assert window == list(range(ticks[0], t_end + 1)), (ticks, kills)
    assert len(window) >= 35
    for j in got:                                # jid derived from entry and tick
        assert j["jid"].endswith("%08x" % j["cron_tick"])
        assert j["cron"] == "tick" and j["class"] == "Tick" and j["queue"] == "ticks"
        assert j["enqueued_at"] >= j["cron_tick"]


def set_watermark(r, name, spec, wm):
    r.hset(f"forq:cron:{name}", mapping={"watermark": wm, "spec": spec})


def test_catch_up_policies_after_a_long_gap(forq, redis_server):
    r = rconn(redis_server)
    now = int(r.time()[0])
    hour = now - now % 3600
    # Each entry last ran 5 hours ago; nobody led since.
    cfg = BASE
    for name, policy in (("latest", "latest"), ("all", "all"), ("none", "none")):
        cfg += (f'[cron "{name}"]\nschedule = 0 * * * *\nclass = C\nqueue = q_{name}\n'
                f'catch_up = {policy}\n')
        set_watermark(r, name, f"0 * * * *|UTC|C|[]|q_{name}|true", hour - 5 * 3600)
    node = forq(config=cfg)
    try:
        wait_until(lambda: all(int(r.hget(f"forq:cron:{n}", "watermark")) == hour
                               for n in ("latest", "all", "none")), 10, what="watermarks")
    except AssertionError:
        raise AssertionError(node.text()[-3000:])
    late = int(r.time()[0]) - hour
    assert [j["cron_tick"] for j in jobs(r, "q_latest")] == [hour]
    assert sorted(j["cron_tick"] for j in jobs(r, "q_all")) == [
        hour - k * 3600 for k in range(4, -1, -1)]
    if late > 60:                                # "none": a late tick is dropped
        assert jobs(r, "q_none") == []
        assert r.hget("forq:cron:none", "skipped") == "5"
    assert r.hget("forq:cron:latest", "skipped") == "4"
    assert node.lines("cron ticks skipped")


def test_new_or_changed_entry_never_backfills(forq, redis_server):
    r = rconn(redis_server)
    now = int(r.time()[0])
    # a changed schedule: the old watermark is a day old, but of another spec
    set_watermark(r, "changed", "30 * * * *|UTC|C|[]|q|true", now - 86400)
    cfg = BASE + ('[cron "fresh"]\nschedule = * * * * *\nclass = C\nqueue = q\ncatch_up = all\n'
                  '[cron "changed"]\nschedule = * * * * *\nclass = C\nqueue = q\n'
                  'catch_up = all\n')
    node = forq(config=cfg)
    node.wait_log("cron entry starts now", count=2)
    for name in ("fresh", "changed"):
        wm = int(r.hget(f"forq:cron:{name}", "watermark"))
        assert abs(wm - now) <= 5
    time.sleep(1)
    # nothing from before the start: at most the minute that began since
    assert all(j["cron_tick"] > now for j in jobs(r, "q"))


def test_status_shows_leader_cron_ticks_and_daemon_holders(forq, redis_server):
    # daemon_ttl 3: on a Redis up for less than daemon_ttl no node takes a
    # cluster daemon before then (forq(1), DAEMONS).
    cfg = (BASE + 'daemon_ttl = 3\ndaemon_renew = 1\n'
           '[cron "every2"]\nschedule = */2 * * * * *\nclass = C\nqueue = q\n'
           '[daemon "sleeper"]\nexec = /bin/sleep 1000\n')
    node = forq(config=cfg)
    r = rconn(redis_server)
    wait_until(lambda: r.hget("forq:cron:every2", "last_jid"), 10, what="a tick")
    lease = wait_until(lambda: r.get("forq:daemon:sleeper"), 10, what="the daemon's lease")
    out = subprocess.run([FORQ, "status"], env=dict(os.environ, REDIS_URL=redis_server),
                         capture_output=True, text=True, check=True).stdout
    assert "leader: " in out and "(epoch " in out
    line = next(l for l in out.splitlines() if l.strip().startswith("every2"))
    assert "*/2 * * * * * UTC" in line
    assert "last 20" in line and "next 20" in line and "(jid " in line
    ident, token = lease.rsplit("|", 1)
    assert "daemons: 1" in out
    assert f"sleeper              held by {ident} (token {token})" in out
    node.signal(signal.SIGTERM)
    assert node.wait_exit() == 0


def test_bad_entries_are_configuration_errors(tmpdir_path):
    cases = [
        ('[cron "x"]\nschedule = 61 * * * *\nclass = C\n', 3, "minute"),
        ('[cron "x"]\nschedule = @sometimes\nclass = C\n', 3, "macro"),
        ('[cron "x"]\nschedule = * * * * *\nclass = C\ntimezone = Mars/Base\n', 5, "Mars/Base"),
        ('[cron "x"]\nschedule = * * * * *\nclass = C\ntimezone = ../../etc/passwd\n', 5,
         "timezone"),
        ('[cron "x"]\nschedule = * * * * *\n', 2, "needs a class"),
    ]
    for text, line, word in cases:
        path = os.path.join(tmpdir_path, "bad.ini")
        with open(path, "w") as f:
            f.write("[forq]\n" + text)
        p = subprocess.run([FORQ, "-n", "-C", path], capture_output=True, text=True)
        assert p.returncode == 78, (text, p.stderr)
        assert f"{path}:{line}:" in p.stderr and word in p.stderr, (text, p.stderr)


def test_overlap_forbid_skips_ticks_while_the_last_run_is_busy(forq, redis_server, tmpdir_path):
    log = os.path.join(tmpdir_path, "runs.log")
    script = os.path.join(tmpdir_path, "slow.sh")
    with open(script, "w") as f:
        f.write(f'#!/bin/sh\necho "start $(date +%s.%N) $FORQ_JID" >> {log}\nsleep 2.5\n'
                f'echo "end $(date +%s.%N) $FORQ_JID" >> {log}\n')
    os.chmod(script, 0o755)
    cfg = (BASE.replace("processes = 1", "processes = 3") +
           f'[job "Slow"]\nexec = {script}\n'
           '[cron "slow"]\nschedule = * * * * * *\nclass = Slow\noverlap = forbid\n')
    node = forq(config=cfg)
    r = rconn(redis_server)
    time.sleep(9)
    node.signal(signal.SIGTERM)
    node.wait_exit()
    runs = {}
    with open(log) as f:
        for line in f:
            kind, ts, jid = line.split()
            runs.setdefault(jid, {})[kind] = float(ts)
    spans = sorted((v["start"], v.get("end", 1e18)) for v in runs.values())
    assert len(spans) >= 2, spans
    for (s1, e1), (s2, _) in zip(spans, spans[1:]):
        assert s2 >= e1, f"runs overlap: {spans}"
    assert int(r.hget("forq:cron:slow", "skipped")) >= 3


def test_reload_changes_entries(forq, redis_server):
    cfg = BASE + '[cron "a"]\nschedule = * * * * * *\nclass = C\nqueue = qa\n'
    node = forq(config=cfg)
    r = rconn(redis_server)
    wait_until(lambda: r.llen("queue:qa") >= 2, 10, what="ticks of a")
    with open(node.config_path, "w") as f:
        f.write(BASE + '[cron "b"]\nschedule = * * * * * *\nclass = C\nqueue = qb\n')
    node.signal(signal.SIGHUP)
    node.wait_log("configuration reloaded")
    wait_until(lambda: r.llen("queue:qb") >= 2, 10, what="ticks of b")
    n = r.llen("queue:qa")
    time.sleep(2)
    assert r.llen("queue:qa") == n              # a is gone with the reload
    assert r.smembers("forq:crons") == {"b"}     # and from status; its state expires
    assert 600000 < r.ttl("forq:cron:a") <= 604800
    with open(node.config_path, "w") as f:
        f.write(BASE + '[cron "b"]\nschedule = 61 * * * *\nclass = C\n')
    node.signal(signal.SIGHUP)
    node.wait_log("reload failed")                # the bad file changes nothing
    m = r.llen("queue:qb")
    time.sleep(2)
    assert r.llen("queue:qb") > m
