"""sidekiq.yml (issue 11, item 6): `forq -C config/sidekiq.yml -e production`
reads Sidekiq's own file: concurrency, weighted queues, timeout, tag and the
production section merged over the top level show in the process info that
Sidekiq's Busy page reads; -P and an INI's own keys win over the yml; an
unknown key is a warning naming file:line and forq still runs; ERB and
malformed YAML are configuration errors (exit 78) naming the line."""
import json
import os
import subprocess

import redis

from conftest import FORQ, wait_until

SEED = """---
# as a Rails app's config/sidekiq.yml
:concurrency: 2
:timeout: 7
:tag: seedapp
:max_retries: 5
:queues:
  - [critical, 3]
  - default
  - [low, 1]

production:
  :concurrency: 3
  :queues:
    - [critical, 2]
    - default
staging:
  :concurrency: 9
"""


def write(tmpdir, name, text):
    os.makedirs(os.path.dirname(os.path.join(tmpdir, name)), exist_ok=True)
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def check(*args, env=None):
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("FORQ_") and k not in ("RAILS_ENV", "RACK_ENV", "APP_ENV")}
    full.update(env or {})
    return subprocess.run([FORQ, *args, "-n"], capture_output=True, text=True, env=full,
                          timeout=30)


def process_info(url):
    r = redis.Redis.from_url(url)

    def info():
        ids = r.smembers("processes")
        return ids and json.loads(r.hget(next(iter(ids)), "info") or "null")
    return wait_until(info, 10, what="process info")


def test_seed_sidekiq_yml_with_production_section(forq, redis_server, tmpdir_path):
    yml = write(tmpdir_path, "config/sidekiq.yml", SEED)
    out = os.path.join(tmpdir_path, "ran")
    h = write(tmpdir_path, "h.sh", f"#!/bin/sh\necho \"$FORQ_QUEUE\" >> {out}\n")
    os.chmod(h, 0o755)
    ok = check("-C", yml, "-e", "production")
    assert ok.returncode == 0 and "configuration OK" in ok.stdout, ok.stdout + ok.stderr
    assert f"{yml}:6" in ok.stdout and ":max_retries:" in ok.stdout, ok.stdout

    # An INI beside it for the [job]: sidekiq_config under it, -e production.
    ini = write(tmpdir_path, "forq.ini", f"[forq]\nsidekiq_config = {yml}\n"
                f'[job "Seed"]\nexec = {h}\n')
    f = forq("-e", "production", "-C", ini)
    f.wait_workers(3)
    info = process_info(redis_server)
    assert info["concurrency"] == 3 and info["tag"] == "seedapp"
    assert info["queues"] == ["critical", "default"]
    assert info["weights"] == [{"critical": 2, "default": 1}]
    assert "sidekiq.yml setting ignored" in f.text() and f"{yml}:6" in f.text()
    r = redis.Redis.from_url(redis_server)
    r.lpush("queue:critical", json.dumps({"class": "Seed", "args": [], "jid": "a" * 24,
                                          "queue": "critical"}))
    wait_until(lambda: os.path.exists(out) and open(out).read() == "critical\n", 10,
               what="job from the yml's queue")
    f.signal(15)
    assert f.wait_exit(15) == 0
    r.flushall()


def test_command_line_and_ini_win_over_the_yml(forq, redis_server, tmpdir_path):
    yml = write(tmpdir_path, "sidekiq.yml", SEED)
    # -C the yml itself, RAILS_ENV choosing the section as Sidekiq's does; -P wins.
    f = forq("-C", yml, "-P", "1", env={"RAILS_ENV": "staging"})
    f.wait_workers(1)
    info = process_info(redis_server)
    assert info["concurrency"] == 1 and info["tag"] == "seedapp"
    assert info["queues"] == ["critical", "default", "low"]  # top level: staging has none
    f.signal(15)
    assert f.wait_exit(15) == 0
    redis.Redis.from_url(redis_server).flushall()
    # The INI's own keys win over the yml it names.
    ini = write(tmpdir_path, "forq.ini", f"[forq]\nsidekiq_config = {yml}\nprocesses = 1\n"
                "tag = fromini\n")
    f = forq("-C", ini, env={"RAILS_ENV": "production"})
    f.wait_workers(1)
    info = process_info(redis_server)
    assert info["concurrency"] == 1 and info["tag"] == "fromini"
    assert info["weights"] == [{"critical": 2, "default": 1}]
    f.signal(15)
    assert f.wait_exit(15) == 0
    redis.Redis.from_url(redis_server).flushall()


def test_erb_and_bad_yaml_exit_78_naming_the_line(tmpdir_path):
    erb = write(tmpdir_path, "erb.yml", ":concurrency: 2\n:queues:\n  - default\n"
                ":timeout: <%= ENV.fetch('T', 8) %>\n")
    r = check("-C", erb)
    assert r.returncode == 78 and f"{erb}:4" in r.stderr and "ERB" in r.stderr, r.stderr
    bad = write(tmpdir_path, "bad.yml", ":concurrency: 2\n:queues: [a, b\n:tag: x\n")
    r = check("-C", bad)
    assert r.returncode == 78 and f"{bad}:3" in r.stderr and "YAML" in r.stderr, r.stderr
    dup = write(tmpdir_path, "dup.yml", ":queues:\n  - a\n  - a\n")
    ini = write(tmpdir_path, "dup.ini", f"[forq]\nsidekiq_config = {dup}\n")
    r = check("-C", ini)
    assert r.returncode == 78 and f"{dup}:3" in r.stderr and "twice" in r.stderr, r.stderr
    r = check("-C", os.path.join(tmpdir_path, "missing.yml"))
    assert r.returncode == 78 and "missing.yml" in r.stderr, r.stderr
