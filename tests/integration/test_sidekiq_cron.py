"""sidekiq-cron compatibility (issue 11, items 4 and 5): the leader publishes
every cron entry in sidekiq-cron 1.8's keys, read here by the real gem
(Debian's ruby-sidekiq-cron through tests/ruby/sidekiq_cron_cli.rb): its
Job.all, its Web tab (Rack::Test, CSRF tokens as a browser sends them) with
Disable/Enable/Enqueue now/Delete, and its poller beside forq's leader; and
cron_schedule loads sidekiq-cron's schedule.yml. Each test has its own
redis-server."""
import json
import os
import signal
import subprocess
import time

from conftest import FORQ, ROOT, wait_until
from test_jobs import rconn

RUBY_CLI = os.path.join(ROOT, "tests", "ruby", "sidekiq_cron_cli.rb")
BASE = "[forq]\nprocesses = 1\nleader_ttl = 10\nleader_renew = 1\nshutdown_timeout = 2\n"

SEED_YML = """print:
  cron: "*/1 * * * *"
  class: "PrintWorker"
  queue: default
"""

RICH_YML = """# sidekiq-cron's array form, every way it takes args
- name: arr
  cron: "* * * * * * Europe/Berlin"
  class: ArrJob
  queue: rich
  args: [1, "two", yes, 2.5, ~]
  description: "array args, zone in the cron string"
- name: hash
  cron: "* * * * * *"
  klass: HashJob
  queue: rich
  args:
    user_id: 42
    tags: [a, b]
- name: jsonstr
  cron: "* * * * * *"
  class: JsonJob
  queue: rich
  args: '["from", "json"]'
- name: plainstr
  cron: "* * * * * *"
  class: StrJob
  queue: rich
  args: just a string
- name: scalar
  cron: "* * * * * *"
  class: NumJob
  queue: rich
  args: 7
  date_as_argument: true
- name: aj
  cron: "* * * * * *"
  class: ReportJob
  queue: reports
  active_job: true
  queue_name_prefix: app
  args: [{"day": "mon"}]
- name: msg
  cron: "* * * * * *"
  class: Ignored
  args: [0]
  message:
    class: MsgJob
    queue: rich
    retry: 3
    args: [9]
- name: off
  cron: "* * * * * *"
  class: OffJob
  queue: rich
  status: disabled
"""


def rb(url, cmd, arg=None):
    """One sidekiq_cron_cli.rb command against url; its JSON output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    env["REDIS_URL"] = url
    argv = ["/usr/bin/ruby", RUBY_CLI, cmd] + ([json.dumps(arg)] if arg is not None else [])
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, f"ruby {cmd} failed: {p.stdout}\n{p.stderr}"
    return json.loads(p.stdout)


def jobs(r, queue):
    return [json.loads(p) for p in r.lrange(f"queue:{queue}", 0, -1)]


def recorder(tmpdir):
    """An exec handler appending "<jid> <class>" to <tmpdir>/runs."""
    path = os.path.join(tmpdir, "rec.sh")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\necho "$FORQ_JID $FORQ_CLASS" >> {tmpdir}/runs\n')
    os.chmod(path, 0o755)
    return path


def runs(tmpdir):
    try:
        with open(os.path.join(tmpdir, "runs")) as f:
            return [l.split() for l in f]
    except FileNotFoundError:
        return []


def write(tmpdir, name, text):
    with open(os.path.join(tmpdir, name), "w") as f:
        f.write(text)


def test_job_all_and_the_web_tab_show_forq_entries(forq, redis_server, tmpdir_path):
    write(tmpdir_path, "schedule.yml", SEED_YML)
    cfg = (BASE + "cron_schedule = schedule.yml\n"
           '[cron "nightly"]\nschedule = 0 3 * * *\ntimezone = Europe/Berlin\nclass = Nightly\n'
           'args = ["full"]\nqueue = low\n'
           '[cron "tick"]\nschedule = */2 * * * * *\nclass = Tick\nqueue = ticks\n')
    node = forq(config=cfg)
    r = rconn(redis_server)
    before = int(wait_until(lambda: r.hget("forq:cron:tick", "last_at"), 10, what="a tick"))
    got = {j["name"]: j for j in rb(redis_server, "all")}
    after = int(r.hget("forq:cron:tick", "last_at"))
    assert set(got) == {"print", "nightly", "tick"}, node.text()[-2000:]
    assert all(j["valid"] and j["status"] == "enabled" for j in got.values()), got
    assert got["print"]["cron"] == "*/1 * * * * UTC"
    assert (got["print"]["klass"], got["print"]["queue"]) == ("PrintWorker", "default")
    assert got["nightly"]["cron"] == "0 3 * * * Europe/Berlin"
    assert (got["nightly"]["klass"], got["nightly"]["queue"]) == ("Nightly", "low")
    assert got["nightly"]["args"] == ["full"]
    assert got["nightly"]["last_enqueue_time"] is None      # never fired yet
    # the last enqueue time is that of forq's last push of the entry
    assert before <= got["tick"]["last_enqueue_time"] <= after
    assert got["tick"]["jid_history"][0]["jid"] in {j["jid"] for j in jobs(r, "ticks")}
    res = rb(redis_server, "web", [["GET", "/cron"], ["GET", "/cron/nightly"],
                                   ["GET", "/cron/tick"]])["responses"]
    assert [x["status"] for x in res] == [200, 200, 200]
    for name in ("print", "nightly", "tick"):
        assert f"cron/{name}" in res[0]["body"]
    assert "0&nbsp;3&nbsp;*&nbsp;*&nbsp;*&nbsp;Europe/Berlin" in res[1]["body"]
    assert "Nightly" in res[1]["body"]


def test_disable_enable_enqueue_now_and_delete_from_the_tab(forq, redis_server, tmpdir_path):
    rec = recorder(tmpdir_path)
    write(tmpdir_path, "schedule.yml", SEED_YML)
    cfg = (BASE + "cron_schedule = schedule.yml\n"
           f'[job "PrintWorker"]\nexec = {rec}\n'
           '[cron "tick"]\nschedule = * * * * * *\nclass = Tick\nqueue = ticks\n')
    node = forq(config=cfg)
    r = rconn(redis_server)
    wait_until(lambda: r.llen("queue:ticks") >= 1, 10, what="ticks")
    res = rb(redis_server, "web", [["POST", "/cron/tick/disable"]])["responses"]
    assert res[0]["status"] == 302 and r.hget("cron_job:tick", "status") == "disabled"
    time.sleep(0.5)                                 # a tick in flight may still land
    n, skipped = r.llen("queue:ticks"), int(r.hget("forq:cron:tick", "skipped") or 0)
    time.sleep(2.5)
    assert r.llen("queue:ticks") == n               # disabled: no ticks pushed ...
    assert int(r.hget("forq:cron:tick", "skipped")) >= skipped + 2   # ... they are skipped
    assert node.lines("disabled in the sidekiq-cron tab")
    rb(redis_server, "web", [["POST", "/cron/tick/enable"]])
    wait_until(lambda: r.llen("queue:ticks") >= n + 2, 10, what="ticks after enable")

    # Enqueue now: the web process pushes; forq's worker runs it
    out = rb(redis_server, "web", [["POST", "/cron/print/enque"]])
    assert [p["class"] for p in out["pushed"]] == ["PrintWorker"]
    jid = out["pushed"][0]["jid"]
    wait_until(lambda: [jid, "PrintWorker"] in runs(tmpdir_path), 10, what="the enqueued job run")
    assert r.hget("cron_job:print", "last_enqueue_time")

    # Delete: the entry stops until forq publishes it again at a reload
    rb(redis_server, "web", [["POST", "/cron/tick/disable"], ["POST", "/cron/tick/delete"]])
    assert not r.exists("cron_job:tick") and "cron_job:tick" not in r.smembers("cron_jobs")
    rb(redis_server, "web", [["POST", "/cron/tick/enable"]])   # gone: the tab ignores it
    node.wait_log("deleted in the sidekiq-cron tab")
    n = r.llen("queue:ticks")
    time.sleep(1.5)
    assert r.llen("queue:ticks") == n
    node.signal(signal.SIGHUP)
    node.wait_log("configuration reloaded")
    wait_until(lambda: r.hget("cron_job:tick", "status") == "enabled", 10, what="republished")
    assert "cron_job:tick" in r.smembers("cron_jobs")
    wait_until(lambda: r.llen("queue:ticks") >= n + 2, 10, what="ticks after the reload")
    assert {j["name"] for j in rb(redis_server, "all")} == {"print", "tick"}


def test_a_sidekiq_cron_poller_beside_the_leader_never_doubles_a_tick(forq, redis_server):
    cfg = (BASE + '[cron "tick"]\nschedule = * * * * * *\nclass = Tick\nqueue = ticks\n'
           'catch_up = all\n')
    node = forq(config=cfg)
    r = rconn(redis_server)
    wait_until(lambda: r.llen("queue:ticks") >= 2, 10, what="ticks")
    # a tick forq pushed: the poller's guard (ZADD of its member) refuses it
    # (fugit's previous time is strictly before the whole second: at
    # tick + 1.5 the poller considers tick)
    done = jobs(r, "ticks")[0]["cron_tick"]
    out = rb(redis_server, "enque_at", {"name": "tick", "time": done + 1.5})
    assert out["tick"] == done and out["pushed"] == []
    # a tick the poller took first (its test_and_enque_for_time! at that
    # tick, called ahead of time): forq refuses it
    ahead = int(r.time()[0]) + 6
    out = rb(redis_server, "enque_at", {"name": "tick", "time": ahead + 1.5})
    assert out["tick"] == ahead and len(out["pushed"]) == 1
    wait_until(lambda: int(r.hget("forq:cron:tick", "watermark")) > ahead + 1, 15,
               what="forq past the taken tick")
    assert ahead not in [j["cron_tick"] for j in jobs(r, "ticks") if "cron_tick" in j]
    assert int(r.hget("forq:cron:tick", "taken")) >= 1
    node.wait_log("already enqueued by a sidekiq-cron poller")

    # The real poller polling all the time while the leader runs, pauses
    # (its ticks are the poller's) and catches up (catch_up = all)
    start = int(r.time()[0])
    taken = int(r.hget("forq:cron:tick", "taken"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    env["REDIS_URL"] = redis_server
    poller = subprocess.Popen(["/usr/bin/ruby", RUBY_CLI, "poll",
                               json.dumps({"seconds": 6, "interval": 0.2})],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in poller.stderr:                  # its first round is done
            if line.strip() == "polling":
                break
        time.sleep(1)
        node.signal(signal.SIGSTOP)
        time.sleep(3.5)
        node.signal(signal.SIGCONT)
        out, err = poller.communicate(timeout=30)
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait()
    assert poller.returncode == 0, out + err
    pushed = json.loads(out)["pushed"]
    end = int(r.time()[0])
    wait_until(lambda: int(r.hget("forq:cron:tick", "watermark")) >= end, 10, what="caught up")
    # the poller took paused ticks (every other second at most: its
    # last_enqueue_time guard), and forq refused each of them
    assert len(pushed) >= 1
    assert int(r.hget("forq:cron:tick", "taken")) - taken == len(pushed)
    all_jobs = jobs(r, "ticks")
    forq_ticks = [j["cron_tick"] for j in all_jobs if "cron_tick" in j]
    assert len(forq_ticks) == len(set(forq_ticks))
    members = r.zrange("cron_job:tick:enqueued", 0, -1, withscores=True)
    # each tick's member is added once, by whoever pushed it: one job per
    # member (the member publishing seeded before the first tick aside)
    ticks = sorted(int(s) for _, s in members)
    assert len(all_jobs) == len(ticks) - 1, (len(all_jobs), ticks)
    assert set(forq_ticks) <= set(ticks)
    window = [t for t in ticks if start <= t <= end - 1]
    assert window == list(range(start, end)), window   # and no tick is lost


def test_seed_and_rich_schedule_yml_load_and_fire(forq, redis_server, tmpdir_path):
    r = rconn(redis_server)
    write(tmpdir_path, "schedule.yml", SEED_YML)
    write(tmpdir_path, "rich.yml", RICH_YML)
    # The seed fires each minute; its last minute is due at once for an
    # entry whose watermark (of the same spec) is older.
    now = int(r.time()[0])
    minute = now - now % 60
    r.hset("forq:cron:print", mapping={"watermark": minute - 60,
                                       "spec": "*/1 * * * *|UTC|PrintWorker|[]|default|true"})
    seed = forq(config=BASE + "queues = nothing\ncron_schedule = schedule.yml\n")
    wait_until(lambda: r.llen("queue:default") >= 1, 10, what="the seed's tick")
    j = jobs(r, "default")[0]
    assert (j["class"], j["args"], j["cron"], j["cron_tick"]) == ("PrintWorker", [], "print", minute)
    seed.signal(signal.SIGTERM)
    seed.wait_exit()

    node = forq(config=BASE + "queues = nothing\ncron_schedule = rich.yml\n")
    wait_until(lambda: r.llen("queue:rich") >= 12 and r.llen("queue:app_reports") >= 2, 15,
               what=f"ticks of the rich schedule\n{node.text()[-2000:]}")
    by = {}
    for q in ("rich", "app_reports"):
        for j in jobs(r, q):
            by.setdefault(j["cron"], j)
    assert by["arr"]["args"] == [1, "two", True, 2.5, None] and by["arr"]["class"] == "ArrJob"
    assert by["hash"]["args"] == [{"user_id": 42, "tags": ["a", "b"]}]
    assert by["hash"]["class"] == "HashJob"
    assert by["jsonstr"]["args"] == ["from", "json"]
    assert by["plainstr"]["args"] == ["just a string"]
    assert by["scalar"]["args"] == [7, float(by["scalar"]["cron_tick"])]
    assert isinstance(by["scalar"]["args"][1], float)
    m = by["msg"]                        # the template's args give way to args:
    assert (m["class"], m["queue"], m["retry"], m["args"]) == ("MsgJob", "rich", 3, [0])
    aj = by["aj"]
    assert aj["class"] == "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
    assert aj["wrapped"] == "ReportJob" and aj["queue"] == "app_reports"
    (ser,) = aj["args"]
    assert ser["job_class"] == "ReportJob" and ser["queue_name"] == "app_reports"
    assert ser["arguments"] == [{"day": "mon"}] and ser["executions"] == 0
    assert set(ser) == {"job_class", "job_id", "provider_job_id", "queue_name", "priority",
                        "arguments", "executions", "exception_executions", "locale",
                        "timezone", "enqueued_at"}
    back = rb(redis_server, "activejob", ser)      # ActiveJob itself reads it back
    assert back["same_class"] and back["arguments"] == [{"day": "mon"}]
    assert back["queue_name"] == "app_reports" and back["job_id"] == ser["job_id"]
    assert "off" not in by and int(r.hget("forq:cron:off", "skipped")) >= 1
    got = {j["name"]: j for j in rb(redis_server, "all")}
    assert "print" not in got                # the seed node's entry is no longer configured
    assert got["off"]["status"] == "disabled" and got["arr"]["cron"] == "* * * * * * Europe/Berlin"
    assert got["aj"]["active_job"] and got["scalar"]["date_as_argument"]
    assert all(j["valid"] for j in got.values()), got

    # HUP: an entry removed from the file stops and leaves cron_jobs
    write(tmpdir_path, "rich.yml", RICH_YML.split("- name: hash")[0])
    node.signal(signal.SIGHUP)
    node.wait_log("configuration reloaded")
    wait_until(lambda: r.smembers("cron_jobs") == {"cron_job:arr"}, 10,
               what="cron_jobs after the reload")
    n = len([j for j in jobs(r, "rich") if j.get("cron") == "hash"])
    time.sleep(1.5)
    assert len([j for j in jobs(r, "rich") if j.get("cron") == "hash"]) == n
    assert not r.exists("cron_job:hash")
    # a bad file at a reload is reported and the running entries kept
    write(tmpdir_path, "rich.yml", "arr:\n  cron: <%= ENV['X'] %>\n  class: A\n")
    node.signal(signal.SIGHUP)
    node.wait_log("reload failed")
    assert node.lines(r"rich\.yml:2.*ERB")
    n = len([j for j in jobs(r, "rich") if j.get("cron") == "arr"])
    wait_until(lambda: len([j for j in jobs(r, "rich") if j.get("cron") == "arr"]) >= n + 2, 10,
               what="arr still firing")


def test_cron_publish_off_writes_nothing_of_sidekiq_cron(forq, redis_server):
    cfg = (BASE + "cron_publish = off\n"
           '[cron "tick"]\nschedule = * * * * * *\nclass = Tick\nqueue = ticks\n')
    forq(config=cfg)
    r = rconn(redis_server)
    wait_until(lambda: r.llen("queue:ticks") >= 2, 10, what="ticks")
    assert not [k for k in r.keys("cron_job*")] and not r.exists("cron_jobs")


def test_bad_schedule_yml_is_a_configuration_error(tmpdir_path):
    ini = os.path.join(tmpdir_path, "forq.ini")
    cases = [
        ("a:\n  cron: \"<%= ENV['CRON'] %>\"\n  class: A\n", "", 2, "ERB"),
        ("a:\n  class: A\n  cron: every 5 minutes\n", "", 3, "natural-language"),
        ("a:\n  cron: \"0 25 * * *\"\n  class: A\n", "", 2, "hour"),
        ("a:\n  cron: \"0 3 * * * Mars/Base\"\n  class: A\n", "", 2, "Mars/Base"),
        ("a:\n  cron: \"* * * * *\"\n  class: A\n  queue: [x]\n", "", 4, "queue"),
        ("a:\n  cron: \"* * * * *\"\n  class: A\n  retries: 3\n", "", 4, "unknown key 'retries'"),
        ("a:\n  cron: \"* * * * *\"\n  class: A\n  args: !ruby/object:Foo {}\n", "", 4, "tag"),
        ("- cron: \"* * * * *\"\n  class: A\n", "", 1, "needs a name"),
        ("a:\n  cron: \"* * * * *\"\n", "", 1, "needs a class"),
        ("a: [unclosed\n", "", 2, "YAML"),
        ("x:\n  cron: \"* * * * *\"\n  class: A\n",
         '[cron "x"]\nschedule = * * * * *\nclass = B\n', 1, f"[cron \"x\"] at {ini}:3"),
    ]
    for yml, extra, line, word in cases:
        path = os.path.join(tmpdir_path, "schedule.yml")
        with open(path, "w") as f:
            f.write(yml)
        with open(ini, "w") as f:
            f.write("[forq]\ncron_schedule = schedule.yml\n" + extra)
        p = subprocess.run([FORQ, "-n", "-C", ini], capture_output=True, text=True)
        assert p.returncode == 78, (yml, p.stderr)
        assert f"{path}:{line}:" in p.stderr and word in p.stderr, (yml, p.stderr)
    os.unlink(path)
    p = subprocess.run([FORQ, "-n", "-C", ini], capture_output=True, text=True)
    assert p.returncode == 78 and f"{path}:0: cannot read" in p.stderr, p.stderr
