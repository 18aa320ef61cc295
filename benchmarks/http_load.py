#!/usr/bin/env python3
"""Load benchmark: examples/http_server against Go's net/http, same machine,
same run, interleaved.

Each server is pinned to CPU 0 and wrk to CPU 1 (`wrk -t1 -cN -dDs --latency`),
at 100 and 1000 connections, alternating gofer and Go for --rounds rounds; the
table shows medians of requests/s, of p50/p99 latency and of the CPU share
each side used, and gofer/Go ratios.
With --floor, a third server takes its turn: benchmarks/peers/epoll_hello, one
thread doing one read and one write per request and nothing else. Its
requests/s shows what this wrk lets a server reach on this machine, and its CPU
per request is about the kernel's share, which no server avoids.
Then each server holds 10,000 idle keep-alive connections (each made one
request first) and its resident memory growth per connection is reported.

Run through scripts/http_load, which builds both servers first. Loopback
only; every step is bounded by timeouts.
"""
import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def start(cmd):
    p = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on (\d+)", line)
    if not m:
        p.kill()
        sys.exit(f"http_load: {cmd[0]} did not start: {line!r}")
    return p, int(m.group(1))


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# wrk's time units (src/units.c).
TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * TIME_UNITS_MS[m.group(2)] if m else None


def cpu_seconds(pid):
    """CPU time (user + system) a live process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrk(port, conns, seconds):
    """(req/s, p50 ms, p99 ms, wrk's CPU use as a fraction of its CPU), or
    None (with wrk's output logged) when wrk printed no usable result."""
    cpu0 = children_cpu_seconds()
    p = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=seconds + 60)
    wrk_cpu = (children_cpu_seconds() - cpu0) / seconds
    out = p.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    figures = (float(rps.group(1)) if rps else None, to_ms(p50.group(1)) if p50 else None,
               to_ms(p99.group(1)) if p99 else None)
    if None in figures:
        log(f"  wrk gave no usable result (exit status {p.returncode}):\n{out}{p.stderr}")
        return None
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        log(f"  wrk reported: {errors.group(0)}")
    return figures + (wrk_cpu,)


def cost_of(figures):
    """Server CPU seconds per request, from a row of medians."""
    return figures[4] / figures[0]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_conns(pid, port, n):
    """Opens n keep-alive connections, one request each, and returns the
    server's RSS growth per connection in bytes."""
    before = rss_kib(pid)
    socks = []
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(request)
            got = b""
            while b"Hello, World!" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("server closed an idle connection")
                got += chunk
            socks.append(s)
        time.sleep(0.5)  # let the server's allocator settle before reading RSS
        after = rss_kib(pid)
    finally:
        for s in socks:
            s.close()
    return (after - before) * 1024 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gofer", required=True, help="the http_server example binary")
    ap.add_argument("--go", required=True, help="the Go peer binary")
    ap.add_argument("--floor", help="the epoll_hello binary (the floor server), optional")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle", type=int, default=10000)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.idle + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        log(f"http_load: the fd limit ({hard}) is below {want}: idle connections reduced")
        args.idle = max(0, hard - 1000)
        want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by servers and wrk

    servers = {"gofer": [args.gofer, "127.0.0.1:0"], "go": [args.go, "127.0.0.1:0"]}
    if args.floor:
        servers["floor"] = [args.floor, "127.0.0.1:0"]
    results = {(s, c): [] for s in servers for c in (100, 1000)}
    for r in range(args.rounds):
        for conns in (100, 1000):
            for name, cmd in servers.items():
                log(f"round {r + 1}/{args.rounds}: {name}, {conns} connections, {args.seconds}s")
                p, port = start(cmd)
                try:
                    wrk(port, conns, 1)  # warm-up
                    server_cpu = cpu_seconds(p.pid)
                    got = wrk(port, conns, args.seconds)
                    server_cpu = (cpu_seconds(p.pid) - server_cpu) / args.seconds
                    if got is not None:
                        results[(name, conns)].append(got + (server_cpu,))
                finally:
                    stop(p)

    print(f"\nHTTP hello, wrk -t1 -d{args.seconds}s, server on CPU 0, wrk on CPU 1, "
          f"medians of {args.rounds} interleaved rounds\n")
    # The CPU columns: each side's share of its one CPU during the timed run.
    # A wrk near 100 % means the load generator, not the server, set the
    # pace, and that server's req/s is a lower bound.
    # us/req is the server's CPU time per request, which a saturated wrk does
    # not cap.
    print(f"{'connections':>11} {'server':>6} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'srv CPU':>8} {'wrk CPU':>8} {'us/req':>7}")
    ok = True
    for conns in (100, 1000):
        med = {}
        for name in servers:
            runs = results[(name, conns)]
            if not runs:
                print(f"{conns:>11} {name:>6} {'no run gave a result':>28}")
                continue
            med[name] = tuple(statistics.median(x[i] for x in runs) for i in range(5))
            rps, p50, p99, wrk_cpu, server_cpu = med[name]
            print(f"{conns:>11} {name:>6} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f}"
                  f" {server_cpu:>7.0%} {wrk_cpu:>7.0%} {server_cpu / rps * 1e6:>7.1f}")
        if "gofer" not in med or "go" not in med:
            ok = False
            continue
        ratio = med["gofer"][0] / med["go"][0]
        target = 2.0 if conns == 100 else 2.5
        verdict = "PASS" if ratio >= target else "FAIL"
        ok = ok and ratio >= target
        line = f"{'':>11} gofer/go req/s {ratio:.2f}x (target >= {target}x) {verdict}"
        if conns == 100:
            p99_ok = med["gofer"][2] <= med["go"][2]
            ok = ok and p99_ok
            line += f"; p99 {med['gofer'][2]:.2f} vs {med['go'][2]:.2f} ms {'PASS' if p99_ok else 'FAIL'}"
        print(line)
        cost = cost_of(med["go"]) / cost_of(med["gofer"])
        print(f"{'':>11} server CPU per request: gofer uses {1 / cost:.2f}x Go's"
              f" (Go/gofer {cost:.2f}x)")
        if med["gofer"][3] >= 0.95:
            print(f"{'':>11} wrk used its whole CPU against gofer: gofer's req/s is a lower bound")
        if "floor" in med:
            floor_cost = cost_of(med["floor"])
            print(f"{'':>11} floor/go req/s {med['floor'][0] / med['go'][0]:.2f}x: a server doing"
                  f" nothing but one read and one write per request, against the same wrk")
            print(f"{'':>11} server CPU per request: gofer uses"
                  f" {cost_of(med['gofer']) / floor_cost:.2f}x the floor's; Go uses"
                  f" {cost_of(med['go']) / floor_cost:.2f}x it, the most any server could"
                  f" undercut Go by here")

    if args.idle > 0:
        print(f"\nIdle keep-alive connections: {args.idle}, RSS growth per connection")
        for name in ("gofer", "go"):
            cmd = servers[name]
            p, port = start(cmd)
            try:
                per = idle_conns(p.pid, port, args.idle)
            finally:
                stop(p)
            note = " (goal <= 8 KiB)" if name == "gofer" else ""
            print(f"{name:>8}: {per / 1024:.1f} KiB{note}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
