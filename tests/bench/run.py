#!/usr/bin/python3
"""The standard benchmark suite of issue 4: what `make bench` runs.

    /usr/bin/python3 tests/bench/run.py [--quick] [--only SCENARIO[,...]]
                                        [--reps N] [--output FILE]
    /usr/bin/python3 tests/bench/run.py --report-from results.json

Builds nothing (the Makefile does); finds in $BUILD (default build):
    examples/echo  cmd/wschatd  cmd/wschat-bench  bench/ref_tcp  bench/ref_lws

For every scenario and every server it applies to, each repetition starts
a fresh server pinned to CPU 0 (taskset -c 0), runs the generator pinned
to CPU 1 with --server-pid, parses the generator's summary line and stops
the server. Repetitions are interleaved across a scenario's servers,
each round starting with a different one. It then writes the medians and spreads (min-max), the ratios
ours / reference, and the machine into BENCHMARKS.md (overwritten), and
the raw runs into $BUILD/bench/results.json. Exits 1 when a run of our
own server failed or broke correctness (a reference's failure is only
reported).

Servers:
    ours     build/examples/echo (echo, connect, idle) or build/cmd/wschatd
             with --rate 0 and the JSON dialect (broadcast, idle, slow)
    ref_tcp  plain TCP on libuv, no WebSocket framing: the ceiling
    ref_lws  libwebsockets (Debian's libwebsockets-dev), same work

Standard library only; progress goes to stderr.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, os.environ.get("BUILD", "build"))

BIN = {
    "echo": os.path.join(BUILD, "examples", "echo"),
    "wschatd": os.path.join(BUILD, "cmd", "wschatd"),
    "bench": os.path.join(BUILD, "cmd", "wschat-bench"),
    "ref_tcp": os.path.join(BUILD, "bench", "ref_tcp"),
    "ref_lws": os.path.join(BUILD, "bench", "ref_lws"),
}

SERVER_CPU = "0"
GENERATOR_CPU = "1"
LISTEN_RE = re.compile(r"(?:listening on|serving)\s+(?:\w+://)?\S*?:(\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Servers and scenarios


def server_cmd(kind, mode):
    """The command line of a server, listening on 127.0.0.1 port 0."""
    if kind == "echo":
        return [BIN["echo"], "--max-message", "1048576",
                "--max-connections", "25000", "0"]
    if kind == "wschatd":
        return [BIN["wschatd"], "--port", "0", "--rate", "0",
                "--max-connections", "25000", "--log-level", "warn"]
    if kind == "ref_tcp":
        return [BIN["ref_tcp"], "--mode", mode, "--port", "0"]
    if kind == "ref_lws":
        return [BIN["ref_lws"], "--mode", mode, "--port", "0"]
    raise ValueError(kind)


# The generator's options that make each server's clients speak its
# protocol.
CLIENT_ARGS = {
    "echo": [],
    "wschatd": ["--path", "/chat", "--dialect", "json"],
    "ref_tcp": ["--proto", "raw"],
    "ref_lws": [],
}

# (label, server kind, ref_* mode); the first entry of a scenario is "ours"
# unless its label says otherwise.
OURS_ECHO = ("ours (echo)", "echo", "echo")
OURS_CHATD = ("ours (wschatd)", "wschatd", None)
REF_TCP_ECHO = ("ref_tcp", "ref_tcp", "echo")
REF_TCP_BCAST = ("ref_tcp", "ref_tcp", "broadcast")
REF_LWS_ECHO = ("ref_lws", "ref_lws", "echo")
REF_LWS_BCAST = ("ref_lws", "ref_lws", "broadcast")


def scenarios():
    out = []
    for depth in (1, 16):
        for size in (32, 4096):
            out.append({
                "id": "echo-d%d-s%d" % (depth, size),
                "title": "Echo, 100 connections, depth %d, %d B" % (depth,
                                                                  size),
                "mode": "echo",
                "args": ["--connections", "100", "--depth", str(depth),
                         "--size", str(size)],
                "servers": [OURS_ECHO, REF_TCP_ECHO, REF_LWS_ECHO],
            })
    for conns, rate in ((1000, 0), (10000, 0), (1000, 100), (10000, 10)):
        sid = "broadcast-%d-%s" % (conns, "max" if rate == 0 else
                                   "rate%d" % rate)
        how = ("as fast as absorbed (1 sender, 8 in flight)" if rate == 0
               else "1 sender at %d msgs/s" % rate)
        args = ["--connections", str(conns), "--senders", "1", "--rate",
                str(rate), "--size", "64"]
        if conns > 5000:
            args += ["--sources", "4"]
        out.append({
            "id": sid,
            "title": "Broadcast to %s receivers, %s, 64 B" % (
                format(conns, ","), how),
            "mode": "broadcast",
            "args": args,
            "servers": [OURS_CHATD, REF_TCP_BCAST, REF_LWS_BCAST],
        })
    out.append({
        "id": "connect",
        "title": "Connect: handshake, close, repeat (50 at a time)",
        "mode": "connect",
        "args": ["--connections", "50"],
        "servers": [OURS_ECHO, REF_LWS_ECHO],
    })
    for conns in (10000, 19000):
        out.append({
            "id": "idle-%d" % conns,
            "title": "Idle: %s open connections, server RSS" % format(
                conns, ","),
            "mode": "idle",
            "args": ["--connections", str(conns), "--sources", "4"],
            "servers": [OURS_CHATD, OURS_ECHO, REF_LWS_ECHO],
        })
    # slow: 10 receivers stop reading under a full-speed broadcast of
    # 4000-byte messages (big enough to fill the kernel's buffers and the
    # server's 1 MiB output limit within the run); the same broadcast
    # without them is the latency baseline.
    slow_args = ["--connections", "1000", "--senders", "1", "--rate", "0",
                 "--size", "4000"]
    out.append({
        "id": "slow",
        "title": "Slow consumers: 1,000 receivers + 10 that stop reading, "
                 "full speed, 4000 B",
        "mode": "slow",
        "args": slow_args + ["--slow", "10"],
        "servers": [OURS_CHATD],
        "baseline": {"mode": "broadcast", "args": slow_args,
                     "label": "ours (wschatd), no slow receivers"},
    })
    return out


# Targets of issue 4: ours / ref_lws per server CPU-second, at least.
TARGETS = {
    "echo-d16-s32": ("msgs_per_cpu_s", 12.0),
    "echo-d16-s4096": ("msgs_per_cpu_s", 4.0),
    "broadcast-1000-max": ("deliveries_per_cpu_s", 14.0),
    "broadcast-10000-max": ("deliveries_per_cpu_s", 5.7),
    "connect": ("handshakes_per_cpu_s", 1.5),
}

# The figures of each mode: (key, heading, kind); kind says how to print
# it and whether more is better.
FIGURES = {
    "echo": [("msgs_per_s", "msgs/s", "rate"),
             ("msgs_per_cpu_s", "msgs/CPU-s", "rate"),
             ("mb_per_s", "MB/s", "plain"),
             ("p50_us", "p50", "lat"), ("p99_us", "p99", "lat"),
             ("p999_us", "p99.9", "lat"),
             ("server_cpu_s", "server CPU s", "plain")],
    "broadcast": [("deliveries_per_s", "deliveries/s", "rate"),
                  ("deliveries_per_cpu_s", "deliveries/CPU-s", "rate"),
                  ("p50_us", "p50", "lat"), ("p99_us", "p99", "lat"),
                  ("server_cpu_s", "server CPU s", "plain")],
    "connect": [("handshakes_per_s", "handshakes/s", "rate"),
                ("handshakes_per_cpu_s", "handshakes/CPU-s", "rate"),
                ("server_cpu_s", "server CPU s", "plain")],
    "idle": [("bytes_per_conn", "RSS bytes/conn", "plain"),
             ("rss_before_kb", "RSS before kB", "plain"),
             ("rss_after_kb", "RSS after kB", "plain"),
             ("opened", "opened", "plain")],
    "slow": [("p50_us", "p50", "lat"), ("p99_us", "p99", "lat"),
             ("slow_closed", "slow closed", "plain"),
             ("rss_max_kb", "max RSS kB", "plain"),
             ("deliveries", "deliveries", "rate")],
}
# The figures ratios are given for (ours / reference).
RATIO_KEYS = {
    "echo": ["msgs_per_s", "msgs_per_cpu_s"],
    "broadcast": ["deliveries_per_s", "deliveries_per_cpu_s"],
    "connect": ["handshakes_per_s", "handshakes_per_cpu_s"],
    "idle": ["bytes_per_conn"],
    "slow": [],
}
CORRECTNESS_KEYS = ("errors", "lost", "out_of_order", "dup", "failed")


# ---------------------------------------------------------------------------
# Running


def cpu_seconds(pid):
    """utime + stime of a process, from /proc; None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


class Sampler(threading.Thread):
    """Samples a process's CPU time every 0.1 s, so that the generator's
    load during the measured window can be told afterwards."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            c = cpu_seconds(self.pid)
            if c is None:
                break
            self.samples.append((time.monotonic(), c))
            self.stop.wait(0.1)

    def load_over(self, t0, t1):
        """CPU seconds per second between t0 and t1, or None."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 0.3:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def start_server(cmd, logpath):
    """Start a server pinned to SERVER_CPU; returns (process, port)."""
    errlog = open(logpath, "w")
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + cmd,
                            stdout=subprocess.PIPE, stderr=errlog,
                            stdin=subprocess.DEVNULL, text=True)
    errlog.close()
    port = None
    deadline = time.monotonic() + 10
    lines = []
    # The ready line comes first; a timer guards against a server that
    # never prints it.
    timer = threading.Timer(10, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            m = LISTEN_RE.search(line)
            if m:
                port = int(m.group(1))
                break
            if time.monotonic() > deadline:
                break
    finally:
        timer.cancel()
    if port is None:
        stop_server(proc)
        raise RuntimeError("server did not start: %s %s" % (
            " ".join(cmd), "".join(lines).strip()))
    # Keep draining stdout so that a chatty server never blocks on it.
    threading.Thread(target=lambda: [None for _ in proc.stdout],
                     daemon=True).start()
    return proc, port


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log("server %d ignored SIGTERM; killing it" % proc.pid)
            proc.kill()
            proc.wait()
    return proc.returncode


def parse_summary(stdout, mode):
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("wschat-bench %s:" % mode):
            out = {"line": line}
            for key, value in re.findall(r"(\w+)=(\S+)", line):
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
            return out
    return None


def run_once(scen, server, mode, args, timing, rep, logdir):
    label, kind, ref_mode = server
    cmd = server_cmd(kind, ref_mode)
    logpath = os.path.join(logdir, "%s.%s.%d.log" % (
        scen["id"], re.sub(r"\W+", "_", label).strip("_"), rep))
    proc, port = start_server(cmd, logpath)
    gen = ["taskset", "-c", GENERATOR_CPU, BIN["bench"], mode,
           "--port", str(port), "--server-pid", str(proc.pid)]
    gen += CLIENT_ARGS[kind]
    if mode != "idle":
        gen += ["--duration", str(timing["duration"]),
                "--warmup", str(timing["warmup"])]
    gen += args
    t0 = time.monotonic()
    g = subprocess.Popen(gen, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    sampler = Sampler(g.pid)
    sampler.start()
    try:
        out, err = g.communicate(timeout=timing["timeout"])
    except subprocess.TimeoutExpired:
        g.kill()
        out, err = g.communicate()
        err += "\nrun.py: generator killed after %d s" % timing["timeout"]
    t_exit = time.monotonic()
    sampler.stop.set()
    sampler.join()
    server_alive = proc.poll() is None
    stop_server(proc)
    result = parse_summary(out, mode) or {}
    result["rc"] = g.returncode
    result["wall_s"] = round(t_exit - t0, 2)
    result["cmd"] = " ".join(gen[3:])
    result["server_cmd"] = " ".join(cmd)
    if not server_alive:
        result["server_died"] = True
    # The measured window ends when the drain starts; the drain is short
    # (everything in flight arrives) except in slow mode (3 s).
    if mode in ("echo", "broadcast", "connect"):
        load = sampler.load_over(t_exit - 0.3 - timing["duration"],
                                 t_exit - 0.3)
        if load is not None:
            result["generator_cpu"] = round(load, 2)
    if g.returncode != 0 or "line" not in result:
        result["stderr"] = err.strip()[-600:]
    try:
        with open(logpath) as f:
            m = re.search(r"ref_lws: dropped (\d+) messages", f.read())
        if m:
            result["server_dropped"] = int(m.group(1))
    except OSError:
        pass
    with open(logpath, "a") as f:
        f.write("\n# generator: %s\n# rc=%s\n%s\n%s\n" % (
            " ".join(gen), g.returncode, err, out))
    return result


# ---------------------------------------------------------------------------
# Statistics and formatting


def figure_stats(runs, key):
    vals = [r[key] for r in runs if isinstance(r.get(key), float)]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_num(v, kind):
    if v is None:
        return "-"
    if kind == "lat":  # microseconds in, milliseconds out
        ms = v / 1000.0
        if ms >= 100:
            return "%.0f ms" % ms
        if ms >= 10:
            return "%.1f ms" % ms
        return "%.2f ms" % ms
    if kind == "rate":
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                x = v / div
                return ("%.3g" % x) + suffix
        return "%.3g" % v
    if v == int(v) and abs(v) >= 100:
        return format(int(v), ",")
    return "%.3g" % v if abs(v) < 1000 else format(int(round(v)), ",")


def fmt_stats(st, kind, reps):
    if st is None:
        return "-"
    med, lo, hi = st
    if reps < 2 or lo == hi:
        return fmt_num(med, kind)
    return "%s (%s–%s)" % (fmt_num(med, kind), fmt_num(lo, kind),
                           fmt_num(hi, kind))


def ratio(a, b):
    if a is None or b is None or b[0] == 0:
        return None
    return a[0] / b[0]


def fmt_ratio(r):
    return "-" if r is None else "%.2fx" % r


def machine():
    def sh(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=10, cwd=REPO).stdout.strip()
        except OSError:
            return ""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.1f GiB" % (kb / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "os": sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "libuv": sh("pkg-config", "--modversion", "libuv"),
        "libuv_deb": sh("dpkg-query", "-W", "-f", "${Version}", "libuv1-dev"),
        "libwebsockets": sh("dpkg-query", "-W", "-f", "${Version}",
                            "libwebsockets-dev"),
        "libwschat": sh(BIN["wschatd"], "--version"),
        "commit": sh("git", "describe", "--always", "--dirty"),
        "python": platform.python_version(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"),
    }


def ours_label(scen):
    return scen["servers"][0][0]


def bound_note(scen, rows):
    """What the numbers alone say about saturation, per server."""
    notes = []
    for label, runs in rows:
        cpu = figure_stats(runs, "server_cpu_s")
        secs = figure_stats(runs, "secs")
        gen = figure_stats(runs, "generator_cpu")
        if scen["mode"] == "idle":
            continue
        parts = []
        if cpu and secs and secs[0] > 0:
            busy = cpu[0] / secs[0]
            parts.append("server CPU %.0f%% of its core%s" % (
                100 * busy, " (saturated)" if busy >= 0.9 else ""))
        if gen:
            parts.append("generator ≈%.0f%%%s" % (
                100 * gen[0], " (saturated)" if gen[0] >= 0.9 else ""))
        if parts:
            notes.append("%s: %s" % (label, ", ".join(parts)))
    return notes


def read_bounds():
    """tests/bench/bounds.md: one paragraph per scenario id, from profiles
    (a "## ID" line, then the text; HTML comments are skipped)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "bounds.md")
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return {}
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    out = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        key, _, body = block.partition("\n")
        out[key.strip()] = " ".join(body.split())
    return out


def write_report(path, results, mach, timing, partial, started, finished):
    L = []
    add = L.append
    add("# Benchmarks")
    add("")
    add("Generated by `make bench` (`tests/bench/run.py`) on %s; do not "
        "edit by hand: the \"What bounds each figure\" paragraphs come "
        "from `tests/bench/bounds.md`."
        % mach["date"])
    if partial:
        add("")
        add("**Partial run** (%s): not the standard suite." % partial)
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    add("| CPU | %s, %s cores |" % (mach["cpu"], mach["cores"]))
    add("| memory | %s |" % mach["memory"])
    add("| kernel | %s (%s) |" % (mach["kernel"], mach["os"]))
    add("| libuv | %s (libuv1-dev %s) |" % (mach["libuv"], mach["libuv_deb"]))
    add("| libwebsockets | libwebsockets-dev %s |" % mach["libwebsockets"])
    add("| libwschat | %s, tree %s |" % (mach["libwschat"], mach["commit"]))
    add("| RLIMIT_NOFILE | %s |" % mach["nofile"])
    add("| run | %d repetition(s) of %g s after %g s warmup; %s to %s |" % (
        timing["reps"], timing["duration"], timing["warmup"], started,
        finished))
    add("")
    add("Each run starts a fresh server pinned to CPU %s (`taskset`) and "
        "`wschat-bench` pinned to CPU %s on loopback. The repetitions of "
        "a scenario are interleaved across its servers, each round starting "
        "with a different one. Cells give the median "
        "and, in parentheses, the spread (min–max) over the repetitions. "
        "\"per CPU-s\" divides by the server's own user + system time over "
        "the measured window (`/proc/PID/stat`), the robust figure on a "
        "2-core box where a fast server makes the generator the "
        "bottleneck. Ratios are ours / reference (medians); under each "
        "scenario's table the same ratio is given round by round, which "
        "shows how far the host's own speed moved between rounds. For RSS "
        "per connection lower is better, for everything else higher is. "
        "Latencies are the generator's round-trip (echo) or send-to-"
        "delivery (broadcast) times." % (SERVER_CPU, GENERATOR_CPU))
    add("")
    add("References, built from `tests/bench/`: **ref_tcp**, a plain TCP "
        "echo/fan-out server on libuv with no WebSocket framing "
        "(4-byte length + payload; per-turn batched writes, shared "
        "buffers): the ceiling of what libuv gives. **ref_lws**, a "
        "libwebsockets echo/broadcast server written the way lws teaches "
        "(one `lws_write()` per WRITEABLE callback, a per-connection FIFO "
        "for echo, a shared `lws_ring` for broadcast, default poll() "
        "loop, UTF-8 validation on).")

    by_id = {r["scenario"]["id"]: r for r in results}

    # Summary against the targets.
    add("")
    add("## Summary")
    add("")
    add("| scenario | figure | ours | ref_lws | ours/ref_lws | target | "
        "ref_tcp | ours/ref_tcp |")
    add("|---|---|---|---|---|---|---|---|")
    for res in results:
        scen = res["scenario"]
        mode = scen["mode"]
        rows = dict(res["rows"])
        ours = rows.get(ours_label(scen))
        keys = RATIO_KEYS.get(mode) or []
        if mode == "slow":
            continue
        key = TARGETS.get(scen["id"], (keys[-1] if keys else None,))[0]
        if key is None or ours is None:
            continue
        kind = dict((k, kd) for k, _, kd in FIGURES[mode])[key]
        head = dict((k, h) for k, h, _ in FIGURES[mode])[key]
        o = figure_stats(ours, key)
        lws = figure_stats(rows.get("ref_lws", []), key)
        tcp = figure_stats(rows.get("ref_tcp", []), key)
        target = "-"
        if scen["id"] in TARGETS:
            target = "≥ %gx" % TARGETS[scen["id"]][1]
        elif scen["id"] == "idle-19000":
            target = "≤ 512 B"
        add("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            scen["id"], head, fmt_num(o and o[0], kind),
            fmt_num(lws and lws[0], kind), fmt_ratio(ratio(o, lws)), target,
            fmt_num(tcp and tcp[0], kind), fmt_ratio(ratio(o, tcp))))
        if mode == "idle":
            for label, runs in res["rows"][1:]:
                if label.startswith("ours"):
                    st = figure_stats(runs, key)
                    add("| %s | %s, %s | %s | %s | %s | %s | - | - |" % (
                        scen["id"], head, label, fmt_num(st and st[0], kind),
                        fmt_num(lws and lws[0], kind),
                        fmt_ratio(ratio(st, lws)), target))
    r100 = by_id.get("broadcast-1000-rate100")
    if r100:
        st = figure_stats(dict(r100["rows"]).get(ours_label(
            r100["scenario"]), []), "p99_us")
        add("| broadcast-1000-rate100 | p99 latency | %s | - | - | < 10 ms "
            "| - | - |" % fmt_num(st and st[0], "lat"))
    slow = by_id.get("slow")
    if slow:
        rows = dict(slow["rows"])
        s = figure_stats(rows.get(ours_label(slow["scenario"]), []), "p99_us")
        b = figure_stats(rows.get(slow["scenario"]["baseline"]["label"], []),
                         "p99_us")
        add("| slow | p99 latency vs no slow receivers | %s vs %s | - | %s "
            "| ≤ 2x | - | - |" % (fmt_num(s and s[0], "lat"),
                                 fmt_num(b and b[0], "lat"),
                                 fmt_ratio(ratio(s, b))))

    add("")
    add("## Scenarios")
    for res in results:
        scen = res["scenario"]
        mode = scen["mode"]
        figs = FIGURES[mode]
        reps = timing["reps"]
        add("")
        add("### %s (`%s`)" % (scen["title"], scen["id"]))
        add("")
        add("`wschat-bench %s %s`" % (mode, " ".join(scen["args"])))
        add("")
        heads = ["server"] + [h for _, h, _ in figs]
        ours = dict(res["rows"]).get(ours_label(scen))
        rkeys = RATIO_KEYS[mode]
        heads += ["ours/this " + dict((k, h) for k, h, _ in figs)[k]
                  for k in rkeys]
        heads += ["correct"]
        add("| " + " | ".join(heads) + " |")
        add("|" + "---|" * len(heads))
        for label, runs in res["rows"]:
            cells = [label]
            for key, _, kind in figs:
                cells.append(fmt_stats(figure_stats(runs, key), kind, reps))
            for key in rkeys:
                if label == ours_label(scen) or label.startswith("ours"):
                    cells.append("")
                else:
                    cells.append(fmt_ratio(ratio(figure_stats(ours or [], key),
                                                 figure_stats(runs, key))))
            cells.append(correctness(runs))
            add("| " + " | ".join(cells) + " |")
        rounds = round_ratios(scen, res["rows"], rkeys[-1] if rkeys else
                              None)
        if rounds:
            add("")
            add(rounds)
        notes = [n for label, runs in res["rows"] for n in problems(label,
                                                                    runs)]
        for n in notes:
            add("")
            add("> %s" % n)

    add("")
    add("## What bounds each figure")
    bounds = read_bounds()
    if "intro" in bounds:
        add("")
        add(bounds["intro"])
    for res in results:
        scen = res["scenario"]
        add("")
        why = bounds.get(scen["id"], "*(no profile written for this "
                         "scenario in tests/bench/bounds.md)*")
        add("**%s.** %s Load in this run: %s." % (
            scen["id"], why,
            "; ".join(bound_note(scen, res["rows"]) or
                      ["no CPU figures (idle: memory only)"])))

    add("")
    add("## Raw runs")
    add("")
    add("<details><summary>every summary line</summary>")
    add("")
    add("```")
    for res in results:
        for label, runs in res["rows"]:
            for i, r in enumerate(runs):
                add("[%s | %s | rep %d | rc=%s wall=%ss gen=%s] %s" % (
                    res["scenario"]["id"], label, i + 1, r.get("rc"),
                    r.get("wall_s"), r.get("generator_cpu", "-"),
                    r.get("line", "(no summary line)")))
    add("```")
    add("")
    add("</details>")
    add("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def round_ratios(scen, rows, key):
    """A sentence with ours / each reference round by round, or None.
    Round i holds repetition i of every server, run back to back, so a
    slow spell of the host weighs on both figures of a round alike; the
    spread of these ratios shows how far the host moved the medians'."""
    if key is None:
        return None
    rows = dict(rows)
    ours = rows.get(ours_label(scen))
    if not ours:
        return None
    head = dict((k, h) for k, h, _ in FIGURES[scen["mode"]])[key]
    parts = []
    for label in ("ref_lws", "ref_tcp"):
        ref = rows.get(label)
        if not ref or len(ref) != len(ours) or len(ours) < 2:
            continue
        rs = []
        for o, r in zip(ours, ref):
            a, b = o.get(key), r.get(key)
            rs.append(fmt_ratio(a / b) if isinstance(a, float) and
                      isinstance(b, float) and b != 0 else "-")
        parts.append("ours / %s %s" % (label, ", ".join(rs)))
    if not parts:
        return None
    return ("Round by round (%s; a round runs every server once, back to "
            "back): %s." % (head, "; ".join(parts)))


def correctness(runs):
    bad = []
    for r in runs:
        if r.get("rc") != 0 or "line" not in r:
            bad.append("rc=%s" % r.get("rc"))
        for k in CORRECTNESS_KEYS:
            if isinstance(r.get(k), float) and r[k] != 0:
                bad.append("%s=%d" % (k, r[k]))
    if not runs:
        return "not run"
    return "yes" if not bad else "**no**: " + ", ".join(sorted(set(bad)))


def problems(label, runs):
    out = []
    for i, r in enumerate(runs):
        if r.get("rc") != 0 or "line" not in r:
            out.append("%s, rep %d: generator exit %s: %s" % (
                label, i + 1, r.get("rc"),
                (r.get("stderr") or "").replace("\n", " / ")[-300:]))
        if isinstance(r.get("lost"), float) and r["lost"] > 0 and \
                r.get("server_dropped") == 0:
            out.append("%s, rep %d: the server dropped no message; the %d "
                       "counted lost were still queued in it when the "
                       "generator stopped waiting (1 s after the window)"
                       % (label, i + 1, r["lost"]))
        if r.get("server_died"):
            out.append("%s, rep %d: the server exited during the run" % (
                label, i + 1))
    return out


# ---------------------------------------------------------------------------


def report_again(results_path, output, all_scen):
    """Write the report from a saved results.json; 0, or 2 on bad input."""
    try:
        with open(results_path) as f:
            saved = json.load(f)
        by_id = {s["id"]: s for s in all_scen}
        results = [{"scenario": by_id[r["id"]],
                    "rows": [(label, runs) for label, runs in r["rows"]]}
                   for r in saved["results"]]
        mach, timing = saved["machine"], saved["timing"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        log("--report-from %s: not a results file of this runner (%s: %s)"
            % (results_path, type(e).__name__, e))
        return 2
    write_report(output, results, mach, timing, saved.get("partial", ""),
                 saved.get("started", "?"), saved.get("finished", "?"))
    log("wrote %s from %s" % (output, results_path))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 repetition, short runs: for trying it out")
    ap.add_argument("--only", metavar="SCENARIO[,...]",
                    help="run only these scenarios (an id, or a prefix "
                         "such as 'echo' or 'broadcast-10000')")
    ap.add_argument("--reps", type=int, help="repetitions (default 3; 1 "
                    "with --quick)")
    ap.add_argument("--output", default=os.path.join(REPO, "BENCHMARKS.md"),
                    help="report to write (default BENCHMARKS.md)")
    ap.add_argument("--list", action="store_true",
                    help="list the scenarios and exit")
    ap.add_argument("--report-from", metavar="RESULTS_JSON",
                    help="run nothing: write the report again from the raw "
                         "runs a previous run saved (build/bench/"
                         "results.json), e.g. after editing bounds.md")
    opts = ap.parse_args()

    all_scen = scenarios()
    if opts.list:
        for s in all_scen:
            print("%-24s %s" % (s["id"], s["title"]))
        return 0
    if opts.report_from:
        return report_again(opts.report_from, opts.output, all_scen)
    chosen = all_scen
    if opts.only:
        wanted = [w.strip() for w in opts.only.split(",") if w.strip()]
        chosen = [s for s in all_scen
                  if any(s["id"] == w or s["id"].startswith(w + "-") or
                         s["id"].startswith(w) for w in wanted)]
        if not chosen:
            ap.error("--only: no scenario matches %r (see --list)" %
                     opts.only)

    missing = [p for p in BIN.values() if not os.access(p, os.X_OK)]
    if missing:
        log("missing binaries (run `make bench`):", " ".join(missing))
        return 2

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    timing = {"reps": opts.reps or (1 if opts.quick else 3),
              "duration": 1.5 if opts.quick else 4,
              "warmup": 0.5 if opts.quick else 1,
              "timeout": 240}
    logdir = os.path.join(BUILD, "bench", "logs")
    os.makedirs(logdir, exist_ok=True)

    mach = machine()
    started = time.strftime("%H:%M:%S")
    t_start = time.monotonic()
    log("%d scenario(s), %d repetition(s); logs in %s" % (
        len(chosen), timing["reps"], logdir))
    results = []
    failures = 0
    for scen in chosen:
        jobs = [(s, scen["mode"], scen["args"]) for s in scen["servers"]]
        if "baseline" in scen:
            b = scen["baseline"]
            jobs.append(((b["label"],) + scen["servers"][0][1:], b["mode"],
                         b["args"]))
        # Repetitions are interleaved, and each one starts with a different
        # server: drift on a noisy machine, and what one server's run
        # leaves behind (connect leaves ~130k sockets in TIME_WAIT), then
        # fall on every server alike.
        runs_of = [[] for _ in jobs]
        for rep in range(timing["reps"]):
            for j in range(len(jobs)):
                k = (j + rep) % len(jobs)
                server, mode, args = jobs[k]
                log("%s | %s | rep %d/%d ..." % (scen["id"], server[0],
                                                 rep + 1, timing["reps"]))
                try:
                    r = run_once(scen, server, mode, args, timing, rep,
                                 logdir)
                except (RuntimeError, OSError) as e:
                    r = {"rc": None, "stderr": str(e)}
                if r.get("rc") != 0 or "line" not in r:
                    # A reference that cannot keep up is a finding for the
                    # report; only our own server failing fails the run.
                    if server[0].startswith("ours"):
                        failures += 1
                    log("  FAILED (rc=%s): %s" % (r.get("rc"),
                                                 r.get("stderr", "")[-300:]))
                else:
                    log("  " + r["line"].split(": ", 1)[1] +
                        "  [gen≈%s wall=%ss]" % (r.get("generator_cpu", "-"),
                                                  r.get("wall_s")))
                runs_of[k].append(r)
        rows = [(jobs[k][0][0], runs_of[k]) for k in range(len(jobs))]
        results.append({"scenario": scen, "rows": rows})

    finished = time.strftime("%H:%M:%S")
    partial = []
    if opts.quick:
        partial.append("--quick")
    if opts.only:
        partial.append("--only " + opts.only)
    if opts.reps:
        partial.append("--reps %d" % opts.reps)
    write_report(opts.output, results, mach, timing, ", ".join(partial),
                 started, finished)
    with open(os.path.join(BUILD, "bench", "results.json"), "w") as f:
        json.dump({"machine": mach, "timing": timing,
                   "partial": ", ".join(partial), "started": started,
                   "finished": finished,
                   "results": [{"id": r["scenario"]["id"],
                                "rows": r["rows"]} for r in results]},
                  f, indent=1)
    log("wrote %s in %.0f s; %d failed run(s) of ours" % (
        opts.output, time.monotonic() - t_start, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
