#!/usr/bin/env python3
"""Runs gofer's benchmarks and the same workloads on its peers (std threads,
Boost.Fiber, Go) in one session, and prints how gofer compares.

By default it runs the main comparison: what channels and mutexes cost in
gofer, in Go's runtime, with std::mutex and std::condition_variable between
threads, and in Boost.Fiber, including one program written both ways (a
shared counter, a producer/consumer stream). It takes about two minutes;
--quick takes about thirty seconds. --all runs every workload (spawning,
sleeping, idle CPU, memory per parked fiber, pool, context...) and checks the
acceptance targets; --filter picks cases out of every workload.

Every case ("spawn_join/procs:2", "parked_fibers/n:1000000", ...) is run once
per implementation per repetition, round-robin: repetition 1 runs every case on
every implementation, then repetition 2 does the same, and so on. Interleaving
means a burst of background load, thermal throttling or a frequency change hits
all implementations alike instead of whichever happened to run then. Each run
is a process of its own, so no run inherits another's heap, stacks or threads.

The table shows only ratios of medians (gofer / peer) taken in this session:
absolute figures depend on the machine and its load, ratios much less so. The
acceptance targets are absolute by nature and are printed as "figure vs target",
followed by floors measured in the same run (an atomic read-modify-write, a bare
switch, a fresh page) and the least some targets' cases can cost on this
machine for gofer's and Go's designs. Absolute medians and every sample go to
a JSON file for the record.

--baseline DIR is an A/B run of two trees: DIR holds gofer_benchmarks built
from the older one (scripts/bench's configure line, run on a checkout of it),
and it runs interleaved with this build's in place of the peers, so that the
ratios read new/old.

The Go twins are compiled once ("go test -c") and the test binary is run with
the same flags "go test -run ^$ -bench ... -benchtime ... -count 1" would pass
it, so no run pays for a compile or a link.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CPP_BINARIES = [
    ("gofer", "gofer_benchmarks"),
    ("std", "std_benchmarks"),
    ("boost", "boost_fiber_benchmarks"),
]
PEERS = ["go", "std", "boost"]

GO_BENCHMARKS = {
    "yield_pingpong": "BenchmarkYieldPingpong",
    "spawn_join": "BenchmarkSpawnJoin",
    "spawn_batch_1000": "BenchmarkSpawnBatch1000",
    "sleep_1ms": "BenchmarkSleep1ms",
    "parked_fibers": "BenchmarkParkedFibers",
    "idle_cpu": "BenchmarkIdleCPU",
    "chan_pingpong": "BenchmarkChanPingpong",
    "chan_buffered_1p1c": "BenchmarkChanBuffered1p1c",
    "chan_buffered_4p4c": "BenchmarkChanBuffered4p4c",
    "stream_4p4c": "BenchmarkStream4p4c",
    "select2_unbuffered": "BenchmarkSelect2Unbuffered",
    "select_default_empty": "BenchmarkSelectDefaultEmpty",
    "select_after0": "BenchmarkSelectAfter0",
    "select_timeout_unused": "BenchmarkSelectTimeoutUnused",
    "mutex_uncontended": "BenchmarkMutexUncontended",
    "mutex_contended_8": "BenchmarkMutexContended8",
    "rw_mutex_read90_8": "BenchmarkRWMutexRead90x8",
    "wait_group_uncontended": "BenchmarkWaitGroupUncontended",
    "once_done": "BenchmarkOnceDone",
    "counter_mutex_8": "BenchmarkCounterMutex8",
    "counter_chan_8": "BenchmarkCounterChan8",
    "queue_cond_4p4c": "BenchmarkQueueCond4p4c",
    "pool_get_put": "BenchmarkPoolGetPut",
    "semaphore_uncontended": "BenchmarkSemaphoreUncontended",
    "context_cancel_1000": "BenchmarkContextCancel1000",
}

# The figures each workload is judged by; every one is lower-is-better.
METRICS = {
    "switch_bare": ["ns_per_switch"],
    "yield_pingpong": ["ns_per_switch"],
    "spawn_join": ["ns_per_fiber"],
    "spawn_batch_1000": ["ns_per_fiber"],
    "sleep_1ms": ["mean_us", "p50_us", "p99_us"],
    "parked_fibers": ["spawn_s", "KiB_per_fiber", "exit_s"],
    "idle_cpu": ["cpu_pct"],
    "chan_pingpong": ["ns_per_roundtrip"],
    "chan_buffered_1p1c": ["ns_per_msg"],
    "chan_buffered_4p4c": ["ns_per_msg"],
    "stream_4p4c": ["ns_per_msg"],
    "select2_unbuffered": ["ns_per_select"],
    "select_default_empty": ["ns_per_select"],
    "select_after0": ["ns_per_select"],
    "select_timeout_unused": ["ns_per_select"],
    "lock_floor": ["ns_per_lock"],
    "rmw_floor": ["ns_per_rmw"],
    "fresh_page": ["us_per_page"],
    "mutex_uncontended": ["ns_per_lock"],
    "mutex_contended_8": ["ns_per_lock"],
    "rw_mutex_read90_8": ["ns_per_op"],
    "wait_group_uncontended": ["ns_per_op"],
    "once_done": ["ns_per_call"],
    "counter_mutex_8": ["ns_per_increment"],
    "counter_chan_8": ["ns_per_increment"],
    "queue_cond_4p4c": ["ns_per_msg"],
    "pool_get_put": ["ns_per_op"],
    "semaphore_uncontended": ["ns_per_op"],
    "context_cancel_1000": ["ns_per_watcher"],
}

# The main comparison: channel and mutex costs. procs:1 where Boost.Fiber
# (one thread, no work sharing) has the twin, procs:2 where parallelism is the
# point. The last six are one program written two ways (a counter under a
# mutex or fed over a channel; a stream through a channel or a mutex and
# condition variable), listed in pairs so the table shows each pair together.
MAIN_CASES = [
    "chan_pingpong/procs:1",
    "chan_pingpong/procs:2",
    "chan_buffered_1p1c/procs:1",
    "chan_buffered_4p4c/procs:2",
    "select2_unbuffered/procs:1",
    "mutex_uncontended/procs:1",
    "mutex_contended_8/procs:1",
    "mutex_contended_8/procs:2",
    "rw_mutex_read90_8/procs:2",
    "counter_mutex_8/procs:2",
    "counter_chan_8/procs:2",
    "stream_4p4c/procs:1",
    "queue_cond_4p4c/procs:1",
    "stream_4p4c/procs:2",
    "queue_cond_4p4c/procs:2",
]
NOT_FIGURES = {"samples"}
# Fields of Google Benchmark's JSON that are not user counters.
CPP_FIELDS = {"family_index", "per_family_instance_index", "repetitions",
              "repetition_index", "threads", "iterations", "real_time", "cpu_time"}

# Name components Google Benchmark adds for run options; they are not part of
# what a case is.
RUN_OPTION = re.compile(r"^(real_time|manual_time|process_time|iterations:\d+|"
                        r"min_time:.*|repeats:\d+|threads:\d+)$")

RUN_TIMEOUT_S = 900
# Seconds each run measures for (Google Benchmark's min_time, Go's
# -benchtime); --quick runs one repetition at the shorter one.
MIN_TIME = 0.5
QUICK_MIN_TIME = 0.25


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def case_key(name):
    return "/".join(p for p in name.split("/") if not RUN_OPTION.match(p))


def workload_of(key):
    return key.split("/", 1)[0]


def params_of(key):
    out = {}
    for part in key.split("/")[1:]:
        k, _, v = part.partition(":")
        out[k] = v
    return out


def default_procs():
    env = os.environ.get("GOFER_PROCS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0))


class Impl:
    """One implementation: how to list its cases and how to run one."""

    def __init__(self, name):
        self.name = name
        self.cases = {}  # key -> what run() needs

    def run(self, key, quick):
        raise NotImplementedError


class CppImpl(Impl):
    def __init__(self, name, binary):
        super().__init__(name)
        self.binary = binary
        out = subprocess.run([str(binary), "--benchmark_list_tests"], capture_output=True,
                             text=True, check=True).stdout
        for full in out.split():
            self.cases[case_key(full)] = full

    def single_shot(self, key):
        return "/iterations:1" in self.cases.get(key, "")

    def run(self, key, quick):
        full = self.cases[key]
        cmd = [str(self.binary), f"--benchmark_filter=^{re.escape(full)}$",
               "--benchmark_format=json",
               f"--benchmark_min_time={QUICK_MIN_TIME if quick else MIN_TIME}"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        if p.returncode != 0:
            return None, f"exit status {p.returncode}: {tail(p.stderr or p.stdout)}"
        try:
            doc = json.loads(p.stdout)
        except json.JSONDecodeError:
            return None, f"unreadable output: {tail(p.stdout)}"
        for b in doc.get("benchmarks", []):
            if case_key(b.get("run_name", b.get("name", ""))) != key:
                continue
            if b.get("error_occurred"):
                return None, "skipped: " + b.get("error_message", "error")
            figures = {k: float(v) for k, v in b.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)
                       and k not in CPP_FIELDS and k not in NOT_FIGURES}
            return figures, None
        return None, "no result in output"



class GoImpl(Impl):
    LINE = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")

    def __init__(self, binary, keys, single_shot):
        super().__init__("go")
        self.binary = binary
        self.single_shot = single_shot
        for key in keys:
            fn = GO_BENCHMARKS.get(workload_of(key))
            if fn is None:
                continue
            params = params_of(key)
            procs = int(params.pop("procs", default_procs()))
            pattern = "^" + fn + "$" + "".join(
                f"/^{re.escape(k)}:{re.escape(v)}$" for k, v in params.items())
            self.cases[key] = (pattern, procs)

    def run(self, key, quick):
        pattern, procs = self.cases[key]
        benchtime = "1x" if self.single_shot(key) else f"{QUICK_MIN_TIME if quick else MIN_TIME}s"
        env = dict(os.environ, GOMAXPROCS=str(procs))
        cmd = [str(self.binary), "-test.run", "^$", "-test.bench", pattern,
               "-test.benchtime", benchtime, "-test.count", "1", "-test.cpu", str(procs)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                           env=env, cwd=self.binary.parent)
        lines = p.stdout.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("--- SKIP"):
                why = lines[i + 1].strip() if i + 1 < len(lines) else ""
                return None, "skipped: " + why.split(": ", 1)[-1]
        if p.returncode != 0:
            return None, f"exit status {p.returncode}: {tail(p.stdout + p.stderr)}"
        for line in lines:
            m = self.LINE.match(line)
            if not m:
                continue
            words = m.group(3).split()
            figures = {}
            for value, unit in zip(words[::2], words[1::2]):
                try:
                    figures[unit] = float(value)
                except ValueError:
                    pass
            figures.pop("ns/op", None)
            for k in NOT_FIGURES:
                figures.pop(k, None)
            return figures, None
        return None, f"no result in output: {tail(p.stdout)}"


def tail(text, n=400):
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


def build_go(build_dir):
    go = shutil.which("go")
    if go is None:
        log("compare: no Go toolchain (Debian: golang-go); Go twins skipped")
        return None
    out = build_dir / "go" / "goferpeers.test"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOCACHE=str(build_dir / "go" / "cache"), GOFLAGS="-mod=mod",
               GOPROXY="off")
    log("compare: building the Go twins")
    p = subprocess.run([go, "test", "-c", "-o", str(out), "."], cwd=HERE / "peers" / "go",
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        log(f"compare: Go twins did not build, skipped:\n{p.stderr}")
        return None
    return out


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_ratio(x):
    if x is None:
        return "-"
    return f"{x:.3g}" if x < 10 else f"{x:.0f}"


def fmt_value(x):
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 10 else (f"{x:.1f}" if x < 100 else f"{x:.0f}")


def print_table(keys, impls, medians, samples, reps, load):
    """Medians per implementation, then gofer/peer ratios of those medians."""
    peers = [p for p in PEERS if p in impls]
    rows = []
    for key in keys:
        g = medians.get(key, {}).get("gofer")
        if not g:
            continue
        for metric in METRICS.get(workload_of(key), sorted(g)):
            if metric not in g:
                continue
            per = medians.get(key, {})
            row = [key, metric]
            row += [fmt_value(per.get(n, {}).get(metric)) for n in ["gofer"] + peers]
            for peer in peers:
                p = per.get(peer, {}).get(metric)
                row.append(fmt_ratio(g[metric] / p) if p else "-")
            xs = samples[key]["gofer"][metric]
            spread = max(xs) / min(xs) if len(xs) > 1 and min(xs) > 0 else None
            row.append(fmt_ratio(spread))
            rows.append(row)
    if not rows:
        return
    header = (["workload", "metric", "gofer"] + peers + [f"gofer/{p}" for p in peers]
              + ["spread"])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths)))

    print(f"Medians over {reps} repetition(s), then gofer/peer ratios of those medians. "
          f"Every metric is lower-is-better,")
    print("so a ratio below 1 means gofer is ahead. 'spread' is max/min of gofer's own "
          "repetitions: how much to trust a row.")
    print(f"Load average {load[0]:.2f} at start, {load[1]:.2f} at end, on "
          f"{len(os.sched_getaffinity(0))} CPUs: other work on the machine skews absolute "
          f"figures, ratios much less.")
    print()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


CHART_LABELS = {"gofer": "gofer", "go": "Go", "std": "std threads", "boost": "Boost.Fiber",
                "base": "baseline"}


def write_chart(keys, impls, medians, reps, out):
    """A PNG of the ns-per-operation medians, one cluster of bars per case, drawn
    by gnuplot. Returns the path, or None with a message when it cannot."""
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        log("compare: no gnuplot (Debian: gnuplot-nox); chart skipped")
        return None
    names = ["gofer"] + [p for p in PEERS if p in impls]
    rows = []
    for key in keys:
        metric = METRICS.get(workload_of(key), [""])[0]
        per = medians.get(key, {})
        if not metric.startswith("ns_per") or metric not in per.get("gofer", {}):
            continue
        rows.append([key] + [per.get(n, {}).get(metric) for n in names])
    if not rows:
        return None
    data = out.with_suffix(".dat")
    with data.open("w") as f:
        f.write("case " + " ".join(f'"{CHART_LABELS[n]}"' for n in names) + "\n")
        for r in rows:
            f.write(f'"{r[0]}" ' + " ".join("-" if v is None else f"{v:.4g}" for v in r[1:])
                    + "\n")
    colours = {"gofer": "#1b9e77", "go": "#00add8", "std": "#7570b3", "boost": "#d95f02"}
    plots = ", ".join(
        f"'{data}' using {i + 2}:xtic(1) title columnheader({i + 2}) lc rgb '{colours[n]}'"
        for i, n in enumerate(names))
    width = max(900, 70 * len(rows) + 200)
    script = f"""
set terminal pngcairo noenhanced size {width},600 font ",10"
set output '{out}'
set title "ns per operation, median of {reps} run(s) each, {time.strftime('%Y-%m-%d')}, \
{len(os.sched_getaffinity(0))} CPUs (lower is better; log scale)"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 noborder
set boxwidth 0.9
set logscale y
set grid ytics mytics
set ylabel "ns per operation"
set xtics rotate by 30 right nomirror font ",9"
set key top left
set bmargin 9
set lmargin 14
plot {plots}
"""
    p = subprocess.run([gnuplot], input=script, capture_output=True, text=True)
    if p.returncode != 0:
        log(f"compare: gnuplot failed, chart skipped: {tail(p.stderr)}")
        return None
    return out


def checks(medians, keys, errors):
    """The acceptance targets: (label, figure, target, passed), or, when there is
    no figure, (label, why not, target, None)."""
    def m(key, impl, metric):
        return medians.get(key, {}).get(impl, {}).get(metric)

    def why(*runs):
        for key, impl in runs:
            if f"{key} {impl}" in errors:
                return errors[f"{key} {impl}"]
        return "not run"

    out = []

    def add(label, fig, target, ok, *runs):
        out.append((label, fig, target, ok) if fig is not None else
                   (label, why(*runs), target, None))

    y = m("yield_pingpong/procs:1", "gofer", "ns_per_switch")
    s = m("switch_bare", "gofer", "ns_per_switch")
    add("yield_pingpong/procs:1 vs switch_bare (same binary)",
        f"{y / s:.2f}x" if y and s else None, "<= 1.50x", bool(y and s and y / s <= 1.5),
        ("yield_pingpong/procs:1", "gofer"), ("switch_bare", "gofer"))
    gy = m("yield_pingpong/procs:1", "go", "ns_per_switch")
    add("yield_pingpong/procs:1, gofer faster than Go by",
        f"{gy / y:.2f}x" if y and gy else None, ">= 3.00x", bool(y and gy and gy / y >= 3),
        ("yield_pingpong/procs:1", "gofer"), ("yield_pingpong/procs:1", "go"))

    def at_most(key, metric, unit, limit, fmt):
        v = m(key, "gofer", metric)
        add(f"{key} {metric}", None if v is None else f"{fmt.format(v)} {unit}",
            f"<= {fmt.format(limit)} {unit}", v is not None and v <= limit, (key, "gofer"))

    def each(workload, metric, unit, limit, fmt="{:.1f}"):
        for key in [k for k in keys if workload_of(k) == workload] or [workload]:
            at_most(key, metric, unit, limit, fmt)

    each("spawn_join", "ns_per_fiber", "ns", 60)
    each("spawn_batch_1000", "ns_per_fiber", "ns", 40)
    at_most("parked_fibers/n:1000000", "KiB_per_fiber", "KiB", 4.5, "{:.2f}")
    at_most("parked_fibers/n:1000000", "spawn_s", "s", 1.0, "{:.3f}")
    each("sleep_1ms", "p99_us", "us", 1100)
    c = m("idle_cpu/procs:2", "gofer", "cpu_pct")
    add("idle_cpu/procs:2 cpu_pct", None if c is None else f"{c:.2f} %", "< 1.00 %",
        c is not None and c < 1.0, ("idle_cpu/procs:2", "gofer"))
    at_most("chan_pingpong/procs:1", "ns_per_roundtrip", "ns", 40, "{:.1f}")
    at_most("chan_buffered_1p1c/procs:1", "ns_per_msg", "ns", 10, "{:.1f}")
    at_most("chan_buffered_4p4c/procs:2", "ns_per_msg", "ns", 15, "{:.1f}")
    at_most("select2_unbuffered/procs:1", "ns_per_select", "ns", 50, "{:.1f}")
    at_most("select_default_empty/procs:1", "ns_per_select", "ns", 3, "{:.2f}")
    at_most("select_after0/procs:1", "ns_per_select", "ns", 150, "{:.1f}")

    # Sync. The uncontended targets are per-operation costs, so they are
    # judged at procs:1, where one worker runs (at procs:2 RunParallel's two
    # workers run side by side and halve the wall time per operation).
    at_most("mutex_uncontended/procs:1", "ns_per_lock", "ns", 3, "{:.2f}")
    at_most("mutex_contended_8/procs:2", "ns_per_lock", "ns", 8, "{:.1f}")
    at_most("rw_mutex_read90_8/procs:2", "ns_per_op", "ns", 4, "{:.2f}")
    at_most("wait_group_uncontended/procs:1", "ns_per_op", "ns", 4, "{:.2f}")
    at_most("once_done/procs:1", "ns_per_call", "ns", 0.5, "{:.2f}")
    at_most("pool_get_put/procs:1", "ns_per_op", "ns", 5, "{:.2f}")
    each("context_cancel_1000", "ns_per_watcher", "ns", 100)
    # Not a card target: what the mutex adds to the two locked instructions
    # its fast path is made of, measured in the same binary. The absolute
    # targets assume a machine where those cost about a nanosecond each.
    mu = m("mutex_uncontended/procs:1", "gofer", "ns_per_lock")
    fl = m("lock_floor/procs:1", "gofer", "ns_per_lock")
    add("mutex_uncontended/procs:1 vs lock_floor (same binary)",
        f"{mu / fl:.2f}x" if mu and fl else None, "<= 1.25x", bool(mu and fl and mu / fl <= 1.25),
        ("mutex_uncontended/procs:1", "gofer"), ("lock_floor/procs:1", "gofer"))
    for workload, metric in [("mutex_uncontended", "ns_per_lock"),
                             ("mutex_contended_8", "ns_per_lock"),
                             ("rw_mutex_read90_8", "ns_per_op"),
                             ("wait_group_uncontended", "ns_per_op"),
                             ("once_done", "ns_per_call"),
                             ("pool_get_put", "ns_per_op"),
                             ("context_cancel_1000", "ns_per_watcher")]:
        for key in [k for k in keys if workload_of(k) == workload]:
            g, go = m(key, "gofer", metric), m(key, "go", metric)
            add(f"{key} no slower than Go", f"{g / go:.2f}x Go" if g and go else None,
                "<= 1.00x Go", bool(g and go and g / go <= 1.0), (key, "gofer"), (key, "go"))
    return out


def gofer_least(samples, key, metric):
    """The least of gofer's samples: a floor is what the machine allows at
    best, and other work on it only ever adds."""
    xs = samples.get(key, {}).get("gofer", {}).get(metric)
    return min(xs) if xs else None


def floors(samples):
    """The least some absolute targets' cases can cost on this machine for a
    given design, from floors measured in the same run: an atomic
    read-modify-write on a line no other CPU touches (rmw_floor), gofer's bare
    context switch (switch_bare), a fresh page written the cheapest way known
    (fresh_page). The designs are gofer's and Go's: every operation that
    synchronises threads (a channel operation, a lock's acquire, a shared
    count) pays at least one read-modify-write, a hand-off between fibers is
    a switch, and every fiber has a stack of its own. Designs that avoid the
    read-modify-write on the owner's fast path (biased locks, per-CPU
    counters through restartable sequences) are not bounded by these rows.
    Work on two CPUs overlaps at best. Rows: (case and metric, what the bound
    is made of, bound, unit, target)."""
    rmw = gofer_least(samples, "rmw_floor", "ns_per_rmw")
    sw = gofer_least(samples, "switch_bare", "ns_per_switch")
    page_us = gofer_least(samples, "fresh_page", "us_per_page")
    cpus = len(os.sched_getaffinity(0))
    rows = []
    if sw and rmw:
        rows.append(("chan_pingpong/procs:1 ns_per_roundtrip",
                     "2 switches + 4 RMWs: a send and a receive each way", 2 * sw + 4 * rmw, "ns", 40))
    if rmw:
        rows += [
            ("chan_buffered_1p1c/procs:1 ns_per_msg", "2 RMWs: a send, a receive", 2 * rmw, "ns", 10),
            ("mutex_uncontended/procs:1 ns_per_lock", "1 RMW: the acquire", rmw, "ns", 3),
            ("wait_group_uncontended/procs:1 ns_per_op", "2 RMWs: add, done", 2 * rmw, "ns", 4),
            ("rw_mutex_read90_8/procs:2 ns_per_op",
             "1.9 RMWs over 2 CPUs: 90% read lock + unlock, 10% write lock", 1.9 * rmw / 2, "ns", 4),
        ]
    if page_us:
        fibers = 1_000_000
        rows.append(("parked_fibers/n:1000000 spawn_s",
                     f"a fresh stack page per fiber, over {cpus} CPUs",
                     fibers * page_us * 1e-6 / cpus, "s", 1.0))
    return rows


def print_floors(samples, rows):
    print()
    have = [f"{label} {v:.1f} {unit} ({key})" for label, key, metric, unit in [
        ("an atomic read-modify-write (RMW)", "rmw_floor", "ns_per_rmw", "ns"),
        ("a bare switch", "switch_bare", "ns_per_switch", "ns"),
        ("a fresh page", "fresh_page", "us_per_page", "us"),
    ] if (v := gofer_least(samples, key, metric)) is not None]
    print("Floors, the least of each one's samples in this run: " + ", ".join(have) + ".")
    print("The least these cases can cost here for gofer's and Go's designs (see floors() "
          "in compare.py):")
    w = max(len(r[0]) for r in rows)
    for label, parts, bound, unit, target in rows:
        verdict = "target out of reach here" if bound > target else "target within reach"
        print(f"  {label.ljust(w)}  >= {bound:.2f} {unit} vs <= {target} {unit}: {verdict} ({parts})")


def print_checks(results):
    print()
    print("Acceptance targets (gofer, medians):")
    w = max(len(r[0]) for r in results)
    for label, fig, target, ok in results:
        verdict = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        detail = f"{fig} vs {target}" if ok is not None else f"no figure: {fig}"
        print(f"  {verdict}  {label.ljust(w)}  {detail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build" / "bench",
                    help="where the benchmark executables were built (default: build/bench)")
    ap.add_argument("--repetitions", "-r", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="one repetition, shorter minimum times")
    ap.add_argument("--all", action="store_true",
                    help="every workload, not only channel and mutex costs, and the "
                         "acceptance targets")
    ap.add_argument("--filter", default="",
                    help="regex: only the cases, out of every workload, whose name matches")
    ap.add_argument("--chart", type=Path, default=None,
                    help="where to write the PNG chart (default: <build-dir>/compare.png)")
    ap.add_argument("--json", type=Path, default=None,
                    help="where to write every sample and the absolute medians "
                         "(default: <build-dir>/compare.json)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="an A/B run: another build directory (of an older tree, say), whose "
                         "gofer_benchmarks runs interleaved with this one's in place of the "
                         "peers; the ratios are then gofer/base")
    args = ap.parse_args()
    started = time.time()
    reps = 1 if args.quick else max(1, args.repetitions)
    build_dir = args.build_dir.resolve()

    impls = {}
    binaries = CPP_BINARIES
    if args.baseline is not None:
        # Same binary name, two trees: the peers give way to the baseline.
        binaries = [("gofer", "gofer_benchmarks")]
        base = next((p for p in [args.baseline.resolve() / "benchmarks" / "gofer_benchmarks",
                                 args.baseline.resolve() / "gofer_benchmarks"] if p.exists()),
                    None)
        if base is None:
            log(f"compare: gofer_benchmarks not found under {args.baseline}")
            return 2
        impls["base"] = CppImpl("base", base)
        PEERS[:] = ["base"]
    for name, exe in binaries:
        path = next((p for p in [build_dir / "benchmarks" / exe, build_dir / exe] if p.exists()),
                    None)
        if path is None:
            log(f"compare: {exe} not built, {name} skipped")
            continue
        impls[name] = CppImpl(name, path)
    if "gofer" not in impls:
        log(f"compare: gofer_benchmarks not found under {build_dir}; build first (scripts/bench)")
        return 2

    keys = list(impls["gofer"].cases)
    if args.filter:
        keys = [k for k in keys if re.search(args.filter, k)]
    elif not args.all:
        keys = [k for k in MAIN_CASES if k in impls["gofer"].cases]
    go_bin = None
    if args.baseline is None:
        go_bin = build_dir / "go" / "goferpeers.test" if args.list else build_go(build_dir)
    if go_bin is not None:
        impls["go"] = GoImpl(go_bin, keys, impls["gofer"].single_shot)

    plan_impls = {k: [n for n in ["gofer"] + PEERS if n in impls and k in impls[n].cases]
                  for k in keys}
    if args.list:
        for k in keys:
            print(f"{k}: {', '.join(plan_impls[k])}")
        return 0

    samples = {k: {n: {} for n in plan_impls[k]} for k in keys}
    errors = {}
    crashed = []
    total = sum(len(v) for v in plan_impls.values()) * reps
    done = 0
    load_at_start = os.getloadavg()[0]
    log(f"compare: {len(keys)} cases, {total} runs, load average "
        f"{os.getloadavg()[0]:.2f} on {len(os.sched_getaffinity(0))} CPUs")
    for rep in range(reps):
        for key in keys:
            order = plan_impls[key]
            # Rotate who goes first, so no implementation always runs right
            # after the same neighbour.
            order = order[rep % len(order):] + order[:rep % len(order)]
            for name in order:
                done += 1
                t0 = time.time()
                try:
                    figures, err = impls[name].run(key, args.quick)
                except subprocess.TimeoutExpired:
                    figures, err = None, f"timed out after {RUN_TIMEOUT_S} s"
                status = "ok" if figures is not None else err
                log(f"[{done}/{total}] rep {rep + 1}/{reps}  {key:<30} {name:<6} "
                    f"{status} ({time.time() - t0:.1f} s)")
                if figures is None:
                    errors.setdefault(f"{key} {name}", err)
                    if not err.startswith("skipped"):
                        crashed.append(f"{key} {name}: {err}")
                    continue
                for metric, v in figures.items():
                    samples[key][name].setdefault(metric, []).append(v)

    medians = {k: {n: {m: median(xs) for m, xs in per.items()}
                   for n, per in v.items() if per} for k, v in samples.items()}
    print_table(keys, impls, medians, samples, reps, (load_at_start, os.getloadavg()[0]))
    wants_checks = (args.all or args.filter) and args.baseline is None
    results = checks(medians, keys, errors) if wants_checks else []
    if args.filter:
        # A check whose cases were all filtered out says nothing.
        results = [r for r in results
                   if any(k in r[0] for k in keys) or r[1] != "not run"]
    if results:
        print_checks(results)
    floor_rows = floors(samples) if wants_checks else []
    if floor_rows:
        print_floors(samples, floor_rows)
    if crashed:
        print()
        print("Runs that failed:")
        for c in crashed:
            print(f"  {c}")

    record = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 1),
        "repetitions": reps,
        "quick": args.quick,
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "samples": samples,
        "medians": medians,
        "errors": errors,
        "checks": [{"check": l, "figure": f, "target": t,
                    "result": None if ok is None else ("PASS" if ok else "FAIL")}
                   for l, f, t, ok in results],
        "floors": [{"case": l, "made_of": parts, "bound": b, "unit": u, "target": t}
                   for l, parts, b, u, t in floor_rows],
    }
    out = args.json or build_dir / "compare.json"
    out.write_text(json.dumps(record, indent=2))
    chart = write_chart(keys, impls, medians, reps, args.chart or build_dir / "compare.png")
    print()
    if chart is not None:
        print(f"Chart: {chart}")
    print(f"Every sample and the absolute medians: {out}")
    print(f"{time.time() - started:.0f} s in all.")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
