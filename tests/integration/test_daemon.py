"""Daemons (DESIGN.md §6.4): a cluster daemon runs on exactly one node at a
time across crashes, graceful stops and pauses of its master, with a token
that only grows; hung daemons are restarted; a crash-looping one is handed to
another node; node daemons run everywhere; plugin daemons check in through
the host. The daemon used is tests/bin/daemon_rec.py, which records its runs
(start, heartbeats every 0.1 s, end) in files."""
import glob
import os
import signal
import subprocess
import time

from conftest import FORQ, TESTPLUG, alive, wait_until
from test_jobs import rconn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REC = os.path.join(ROOT, "tests", "bin", "daemon_rec.py")
TTL, ACQUIRE = 3.0, 0.5
BASE = ("[forq]\nprocesses = 1\nshutdown_timeout = 2\n"
        f"daemon_ttl = {TTL:g}\ndaemon_renew = 1\ndaemon_acquire = {ACQUIRE:g}\n")


def config(name="rec", scope="cluster", extra=""):
    return (BASE + f'[daemon "{name}"]\nexec = {REC}\nscope = {scope}\nstop_timeout = 2\n'
            + extra)


def rundir(tmpdir):
    d = os.path.join(tmpdir, "runs")
    os.makedirs(d, exist_ok=True)
    return d


def runs(d):
    """Every recorded run, oldest start first."""
    out = []
    for path in glob.glob(os.path.join(d, "run-*")):
        with open(path) as f:
            lines = [l.split() for l in f.read().splitlines() if l.strip()]
        if not lines or lines[0][0] != "start":
            continue
        _, start, token, pid, node = lines[0]
        stamps = [float(l[1]) for l in lines[1:] if l[0] in ("hb", "end") and len(l) == 2]
        out.append({"start": float(start), "token": int(token), "pid": int(pid), "node": node,
                    "end": max(stamps, default=float(start)),
                    "hbs": [float(l[1]) for l in lines[1:] if l[0] == "hb" and len(l) == 2],
                    "refused": [float(l[1]) for l in lines[1:]
                                if l[0] == "refused" and len(l) == 2],
                    "ended": any(l[0] == "end" for l in lines[1:])})
    return sorted(out, key=lambda r: r["start"])


def holder(r, name="rec"):
    v = r.get(f"forq:daemon:{name}")
    if not v:
        return None
    ident, token = v.rsplit("|", 1)
    return ident, int(token)


def node_of(nodes, identity):
    return next(n for n in nodes if f":{n.pid}:" in identity)


def start_node(forq, d, i, cfg=None, env=None):
    e = {"DREC_DIR": d, "DREC_NODE": str(i)}
    e.update(env or {})
    return forq(config=cfg or config(), env=e)


def track(nodes, d):
    """Lets each node's cleanup know its daemon children (by the node label)."""
    for run in runs(d):
        for n in nodes:
            if getattr(n, "label", None) == run["node"]:
                n.seen.add(run["pid"])


def run_with_token(d, token):
    return next((x for x in runs(d) if x["token"] == token), None)


def assert_no_overlap(rs):
    for a, b in zip(rs, rs[1:]):
        assert b["start"] >= a["end"], f"runs overlap: {a} and {b}"
        assert b["token"] > a["token"], f"tokens not increasing: {a} then {b}"


def test_cluster_daemon_never_overlaps_across_holder_crashes(forq, redis_server, tmpdir_path):
    d = rundir(tmpdir_path)
    r = rconn(redis_server)
    nodes = []
    label = 0
    for _ in range(3):
        n = start_node(forq, d, label)
        n.label = str(label)
        nodes.append(n)
        label += 1
    takeovers = []
    for _ in range(4):
        ident, token = wait_until(lambda: holder(r), 10, what="a holder")
        wait_until(lambda: run_with_token(d, token), 5, what="the holder's daemon")
        time.sleep(0.5)
        track(nodes, d)
        victim = node_of(nodes, ident)
        old = run_with_token(d, token)
        killed_at = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        victim.proc.wait(5)
        # PDEATHSIG: the daemon dies with its master, not when the lease lapses.
        wait_until(lambda: not alive(old["pid"]), 2, what="the daemon to die with its master")
        new = wait_until(lambda: next((x for x in runs(d) if x["token"] > token), None),
                         TTL + ACQUIRE + 5, what="a takeover")
        takeovers.append(new["start"] - killed_at)
        assert new["start"] - killed_at < TTL + ACQUIRE * 1.2 + 2.0
        nodes.remove(victim)
        n = start_node(forq, d, label)
        n.label = str(label)
        nodes.append(n)
        label += 1
    track(nodes, d)
    rs = runs(d)
    assert len(rs) == 5
    assert_no_overlap(rs)
    print("crash takeovers (s):", ["%.2f" % t for t in takeovers])


def test_graceful_stop_hands_over_in_about_one_acquire_interval(forq, redis_server, tmpdir_path):
    d = rundir(tmpdir_path)
    r = rconn(redis_server)
    nodes = []
    for i in range(3):
        n = start_node(forq, d, i)
        n.label = str(i)
        nodes.append(n)
    times = []
    for _ in range(2):
        ident, token = wait_until(lambda: holder(r), 10, what="a holder")
        wait_until(lambda: run_with_token(d, token), 5, what="the holder's daemon")
        track(nodes, d)
        leaving = node_of(nodes, ident)
        t0 = time.time()
        leaving.signal(signal.SIGTERM)
        new = wait_until(lambda: next((x for x in runs(d) if x["token"] > token), None), 5,
                         what="a hand-over")
        times.append(new["start"] - t0)
        assert new["start"] - t0 < ACQUIRE + 2.0
        assert leaving.wait_exit(10) == 0
        assert leaving.lines("daemon lease released")
        assert run_with_token(d, token)["ended"]    # it got TERM and stopped cleanly
        nodes.remove(leaving)
    track(nodes, d)
    assert_no_overlap(runs(d))
    print("graceful hand-overs (s):", ["%.2f" % t for t in times])


def test_hung_daemon_is_killed_and_restarted(forq, redis_server, tmpdir_path):
    d = rundir(tmpdir_path)
    f = start_node(forq, d, 0, cfg=config(extra="checkin_timeout = 1\n"),
                   env={"DREC_CHECKINS": "3"})
    first = wait_until(lambda: runs(d), 5, what="the daemon")[0]
    f.seen.add(first["pid"])
    f.wait_log(r'daemon hung: no check-in in time" daemon=rec', timeout=5)
    second = wait_until(lambda: len(runs(d)) >= 2 and runs(d)[1], 6, what="a restart")
    f.seen.add(second["pid"])
    assert second["pid"] != first["pid"]
    assert not alive(first["pid"]) and runs(d)[0]["ended"]
    # It hung only after its check-ins stopped (3 of them, 0.2 s apart).
    hung_after = second["start"] - first["start"]
    assert hung_after > 1.2, hung_after
    assert f.lines(r'daemon restart delayed" daemon=rec')


def test_paused_holder_kills_its_daemon_on_resume_and_is_fenced(forq, redis_server,
                                                                tmpdir_path):
    """SIGSTOP freezes the master, not its daemon: the old daemon runs on until
    the master resumes (the documented gap that FORQ_DAEMON_TOKEN covers). The
    daemon fences its writes by token, so the old one's writes are refused
    once the new holder wrote; the resumed master kills its child at once."""
    d = rundir(tmpdir_path)
    r = rconn(redis_server)
    port = redis_server.rsplit(":", 1)[1].split("/")[0]
    nodes = []
    for i in range(3):
        n = start_node(forq, d, i, env={"DREC_REDIS_PORT": port})
        n.label = str(i)
        nodes.append(n)
    ident, token = wait_until(lambda: holder(r), 10, what="a holder")
    old = wait_until(lambda: run_with_token(d, token), 5, what="the holder's daemon")
    track(nodes, d)
    paused = node_of(nodes, ident)
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        new = wait_until(lambda: next((x for x in runs(d) if x["token"] > token), None),
                         TTL + ACQUIRE + 5, what="a takeover while paused")
        time.sleep(0.8)                         # both run now; the old one is refused
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    resumed = time.monotonic()
    wait_until(lambda: not alive(old["pid"]), 5, what="the old daemon to be killed")
    assert time.monotonic() - resumed < 1.0
    paused.wait_log(r"daemon lease (not renewed in time|lost)", timeout=3)
    track(nodes, d)
    assert holder(r)[1] == new["token"] > token
    old = run_with_token(d, token)
    late = [t for t in old["hbs"] if t > new["start"] + 0.3]
    refused = [t for t in old["refused"] if t > new["start"] + 0.3]
    assert late and len(refused) == len(late), (late, refused)
    assert not run_with_token(d, new["token"])["refused"]
    time.sleep(1.5)                             # the resumed node does not take it back
    assert holder(r)[1] == new["token"]
    assert len(paused.lines("daemon lease acquired")) == 1


def test_crash_looping_daemon_is_handed_to_another_node(forq, redis_server, tmpdir_path):
    d = rundir(tmpdir_path)
    r = rconn(redis_server)
    a = start_node(forq, d, "a", env={"DREC_FAIL": "1"})
    a.wait_log(r'daemon lease acquired" daemon=rec', timeout=5)
    b = start_node(forq, d, "b")
    b.label = "b"
    a.wait_log(r"daemon crash loop; handing it to another node", timeout=30)
    assert len(a.lines(r'daemon exited" daemon=rec .*status=\"exit 1\"')) == 5
    run = wait_until(lambda: runs(d), 5, what="the daemon on another node")[0]
    track([b], d)
    assert run["node"] == "b"
    a_keys = r.keys("forq:daemon:rec:cooldown:*")
    assert len(a_keys) == 1 and f":{a.pid}:" in a_keys[0]
    assert 290 <= r.ttl(a_keys[0]) <= 300
    ident, _ = holder(r)
    assert f":{b.pid}:" in ident
    # A does not contend while its cooldown lasts, even with the lease free.
    b.signal(signal.SIGTERM)
    assert b.wait_exit(10) == 0
    time.sleep(4 * ACQUIRE)
    assert holder(r) is None
    assert a.lines("daemon in cooldown on this node; not contending")


def test_node_daemons_run_on_every_node_and_restart(forq, redis_server, tmpdir_path):
    d = rundir(tmpdir_path)
    r = rconn(redis_server)
    nodes = []
    for i in range(2):
        n = start_node(forq, d, i, cfg=config(scope="node"))
        n.label = str(i)
        nodes.append(n)
    wait_until(lambda: {x["node"] for x in runs(d)} == {"0", "1"}, 5, what="one daemon per node")
    track(nodes, d)
    assert all(x["token"] == 0 for x in runs(d))
    assert not r.exists("forq:daemon:rec")
    victim = next(x for x in runs(d) if x["node"] == "0")
    os.kill(victim["pid"], signal.SIGKILL)
    again = wait_until(lambda: [x for x in runs(d) if x["node"] == "0" and x["pid"] !=
                                victim["pid"]], 4, what="a restart")[0]
    track(nodes, d)
    assert again["start"] - time.time() < 4
    nodes[0].signal(signal.SIGTTIN)
    nodes[0].wait_log(r'msg="daemon" daemon=rec scope=node state=running child=%d' % again["pid"])
    # Quiet keeps node daemons; a stop ends them.
    nodes[0].signal(signal.SIGTSTP)
    time.sleep(0.5)
    assert alive(again["pid"])
    nodes[0].signal(signal.SIGTERM)
    assert nodes[0].wait_exit(10) == 0
    assert not alive(again["pid"]) and run_with_token(d, 0) is not None
    other = next(x for x in runs(d) if x["node"] == "1")
    assert alive(other["pid"])


def test_reload_keeps_unchanged_restarts_changed_stops_removed(forq, redis_server, tmpdir_path):
    d = rundir(tmpdir_path)
    two = config(name="keep", scope="node") + config(name="change", scope="node")[len(BASE):]
    f = start_node(forq, d, 0, cfg=two)
    wait_until(lambda: len(runs(d)) == 2, 5, what="two daemons")
    keep = f.lines(r'daemon started" daemon=keep')[0]
    pids = {x["pid"] for x in runs(d)}
    f.seen.update(pids)
    new = (BASE + f'[daemon "keep"]\nexec = {REC}\nscope = node\nstop_timeout = 2\n'
           f'[daemon "change"]\nexec = {REC} changed\nscope = node\nstop_timeout = 2\n'
           f'[daemon "added"]\nexec = {REC}\nscope = node\n')
    with open(f.config_path, "w") as fh:
        fh.write(new)
    f.signal(signal.SIGHUP)
    wait_until(lambda: len(runs(d)) == 4, 5, what="changed and added daemons started")
    f.seen.update(x["pid"] for x in runs(d))
    assert f.lines(r'daemon started" daemon=keep') == [keep]
    assert len(f.lines(r'daemon started" daemon=change')) == 2
    with open(f.config_path, "w") as fh:
        fh.write(BASE + f'[daemon "keep"]\nexec = {REC}\nscope = node\nstop_timeout = 2\n')
    f.signal(signal.SIGHUP)
    f.wait_log(r'daemon exited" daemon=added', timeout=5)
    f.wait_log(r'daemon exited" daemon=change .*status=\"exit 0\"', count=2, timeout=5)
    live = [x for x in runs(d) if alive(x["pid"])]
    assert len(live) == 1 and f.lines(r'daemon started" daemon=keep .*child=%d' % live[0]["pid"])


def test_plugin_daemon_checks_in_through_the_host(forq, redis_server, tmpdir_path):
    r = rconn(redis_server)
    out = os.path.join(tmpdir_path, "plugin-daemon")
    cfg = BASE + '[daemon "pd"]\nplugin = testdaemon\ncheckin_timeout = 1\nstop_timeout = 1\n'
    def starts():
        if not os.path.exists(out):
            return []
        with open(out) as fh:
            return [l.split() for l in fh.read().splitlines() if l.startswith("start")]

    for prefork in ("--prefork", "--no-prefork"):
        seen = len(starts())
        f = forq(prefork, "-r", TESTPLUG, config=cfg, env={"FORQ_TEST_DAEMON_FILE": out})
        f.wait_log(r'daemon started" daemon=pd', timeout=5)
        # the daemon writes its line a moment after the master logs its start
        wait_until(lambda: len(starts()) > seen, 5, what="the plugin daemon")
        _, name, scope, token, pid = starts()[-1]
        f.seen.add(int(pid))
        assert (name, scope) == ("pd", "cluster")
        assert int(token) == holder(r, "pd")[1]
        time.sleep(2.5)                          # > checkin_timeout: check-ins keep it
        assert not f.lines("hung")
        with open(out) as fh:
            assert len([l for l in fh if l == f"checkin {pid}\n"]) >= 8
        assert alive(int(pid))
        f.signal(signal.SIGTERM)
        assert f.wait_exit(10) == 0
        assert not alive(int(pid)) and holder(r, "pd") is None


def test_unknown_plugin_daemon_entry_is_a_clear_error(forq, tmpdir_path, redis_server):
    cfg = BASE + '\n[daemon "x"]\nplugin = nosuch\n'
    f = forq("--prefork", "-r", TESTPLUG, config=cfg)
    assert f.wait_exit(10) == 78
    assert f.lines(r"no plugin registered the daemon entry 'nosuch'")
    assert f.lines(r"\.ini:8: \[daemon")
    # Without prefork the master cannot know: the child says so, and backs off.
    g = forq("--no-prefork", "-r", TESTPLUG, config=cfg)
    g.wait_log(r'no plugin registered this daemon entry" daemon=x entry=nosuch', timeout=5)
    g.wait_log(r'daemon restart delayed" daemon=x', timeout=5)
    g.signal(signal.SIGTERM)
    assert g.wait_exit(10) == 0


def test_daemon_back_in_the_configuration_before_its_removal_ended(forq, redis_server,
                                                                  tmpdir_path):
    # A daemon that ignores TERM takes stop_timeout to go; a reload that
    # brings it back meanwhile must restart it, not leave it off.
    mark = os.path.join(tmpdir_path, "trapped")
    stubborn = (BASE + '[daemon "slow"]\n'
                f'exec = /bin/sh -c "trap \'\' TERM; touch {mark}; while :; do sleep 0.2; done"\n'
                'stop_timeout = 2\n')
    f = forq(config=stubborn)
    r = rconn(redis_server)
    f.wait_log(r'daemon started" daemon=slow', timeout=5)
    wait_until(lambda: os.path.exists(mark), 5, what="the daemon ignoring TERM")
    first = holder(r, "slow")
    with open(f.config_path, "w") as fh:
        fh.write(BASE)
    f.signal(signal.SIGHUP)
    f.wait_log(r'stopping daemon" daemon=slow', timeout=5)
    with open(f.config_path, "w") as fh:
        fh.write(stubborn)
    f.signal(signal.SIGHUP)
    f.wait_log("daemon back in the configuration", timeout=5)
    f.wait_log(r'daemon started" daemon=slow', count=2, timeout=8)
    assert holder(r, "slow") and holder(r, "slow")[0] == first[0]
