"""forq over TLS against plain TCP: drain rate and CPU per job.

Two redis-servers of the same build started in the same run: the plain one
bench.py gives (redis://, TCP on loopback) and a TLS-only one (rediss://,
client certificates required; a CA, server and client certificate made with
the openssl CLI in the run's temporary directory). forq -P 2 --prefork with
the no-op plugin drains N NoopJobs from each (bench.drain: bulk enqueue, the
clock runs until queue:default and every forq:working:* list are empty),
interleaved plain, TLS, plain, TLS, ... because a small shared machine
drifts. For each run the CPU seconds of forq (master and workers, from
RUSAGE_CHILDREN once forq has exited) and of the redis-server (from
/proc/PID/stat) are divided by N. Medians are printed with the TLS/plain
ratios.

Standalone: /usr/bin/python3 scripts/bench_tls.py --build build-bench [--jobs N]
From bench.py:  import bench_tls; bench_tls.run(build, tmp, rds, jobs=N)
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

import redis

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)
import bench  # noqa: E402

RUNS = 3


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=forq bench CA", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)


class TlsRedis:
    """A TLS-only redis-server that wants a client certificate; the same
    .url/.r/.proc/.stop() as bench.Redis."""

    def __init__(self, d):
        self.port = bench.free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--tls-cert-file", f"{d}/server.crt", "--tls-key-file", f"{d}/server.key",
             "--tls-ca-cert-file", f"{d}/ca.crt", "--tls-auth-clients", "yes",
             "--save", "", "--appendonly", "no", "--dir", d],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"rediss://127.0.0.1:{self.port}/0"
        self.r = redis.Redis(host="127.0.0.1", port=self.port, ssl=True,
                             ssl_ca_certs=f"{d}/ca.crt", ssl_certfile=f"{d}/client.crt",
                             ssl_keyfile=f"{d}/client.key")
        self.config = (f"[forq]\ntls_ca_file = {d}/ca.crt\ntls_cert_file = {d}/client.crt\n"
                       f"tls_key_file = {d}/client.key\n")
        bench.wait_for(lambda: _ping(self.r), 10, "TLS redis-server")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def _ping(r):
    try:
        return r.ping()
    except (redis.ConnectionError, OSError):
        return False


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(build, tmp, rds, jobs, config):
    noop = os.path.join(build, "plugins", "libforq_noop.so")
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    srv0 = cpu_of(rds.proc.pid)
    rate = bench.drain(build, rds, tmp, jobs, ["--prefork", "-r", noop], config=config)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    forq_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    return rate, forq_cpu / jobs * 1e6, (cpu_of(rds.proc.pid) - srv0) / jobs * 1e6


def run(build, tmp, rds, jobs=100_000):
    build = os.path.abspath(build)
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)
    make_certs(d)
    tls = TlsRedis(d)
    res = {"plain": [], "tls": []}
    try:
        for _ in range(RUNS):
            res["plain"].append(one_run(build, tmp, rds, jobs, None))
            res["tls"].append(one_run(build, tmp, tls, jobs, tls.config))
    finally:
        tls.stop()
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()}
    print(f"TLS vs plain TCP ({jobs:,} NoopJobs, --processes 2 --prefork, {RUNS} interleaved "
          f"runs, medians):")
    for k, label in (("plain", "redis:// "), ("tls", "rediss://")):
        rate, fc, sc = med[k]
        print(f"  {label} {rate:,.0f} jobs/s, forq CPU {fc:.1f} us/job, redis-server CPU "
              f"{sc:.1f} us/job (runs: {', '.join(f'{x[0]:,.0f}' for x in res[k])})")
    print(f"  TLS/plain: jobs/s x{med['tls'][0] / med['plain'][0]:.2f}, forq CPU/job "
          f"x{med['tls'][1] / med['plain'][1]:.2f}, redis-server CPU/job "
          f"x{med['tls'][2] / med['plain'][2]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--jobs", type=int, default=100_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="forq-bench-") as tmp:
        rds = bench.Redis(tmp)
        try:
            run(a.build, tmp, rds, jobs=a.jobs)
        finally:
            rds.stop()


if __name__ == "__main__":
    main()
