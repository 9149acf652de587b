"""Writes bench/results/REPORT.md and the PNG plots from the raw benchmark outputs.

Plots come from lines "RESULT <plot> <series> <x> <y>" (see bench_util.hpp); gnuplot draws them.
"""
import collections
import datetime
import glob
import os
import platform
import subprocess
import sys

out = sys.argv[1]
raw = sorted(glob.glob(os.path.join(out, "raw", "*.txt")))
series = collections.defaultdict(lambda: collections.defaultdict(list))
for path in raw:
    for line in open(path, encoding="utf-8", errors="replace"):
        p = line.split()
        if len(p) == 5 and p[0] == "RESULT":
            try:
                series[p[1]][p[2]].append((float(p[3]), float(p[4])))
            except ValueError:
                pass


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def gnuplot(script):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report: gnuplot failed: {e}", file=sys.stderr)
        return False


plots = []


def label(series_name):
    return series_name.replace("_", " ")


def line_plot(name, title, xlabel, ylabel, logx=False, logy=False):
    data = series.get(name)
    if not data:
        return
    files = []
    for s, pts in sorted(data.items()):
        f = os.path.join(out, "raw", f"{name}_{s.replace('/', '_')}.dat")
        with open(f, "w") as fh:
            for x, y in sorted(pts):
                fh.write(f"{x} {y}\n")
        files.append((s, f))
    png = os.path.join(out, f"{name}.png")
    cmds = [f'set terminal pngcairo size 900,560 font "sans,11" noenhanced', f'set output "{png}"',
            f'set title "{title}"', f'set xlabel "{xlabel}"', f'set ylabel "{ylabel}"',
            "set key left top", "set grid"]
    if logx:
        cmds.append("set logscale x 2")
    if logy:
        cmds.append("set logscale y 10")
    cmds.append("plot " + ", ".join(f'"{f}" using 1:2 with linespoints lw 2 pt 7 title "{label(s)}"' for s, f in files))
    if gnuplot("\n".join(cmds) + "\n"):
        plots.append((title, os.path.basename(png)))


def bar_plot(name, title, ylabel):
    data = series.get(name)
    if not data:
        return
    f = os.path.join(out, "raw", f"{name}.dat")
    items = sorted(((s, pts[-1][1]) for s, pts in data.items()), key=lambda t: t[1])
    with open(f, "w") as fh:
        for s, y in items:
            fh.write(f'"{label(s)}" {y}\n')
    png = os.path.join(out, f"{name}.png")
    script = "\n".join([
        'set terminal pngcairo size 900,560 font "sans,11" noenhanced', f'set output "{png}"',
        f'set title "{title}"', "set bmargin 8",
        f'set ylabel "{ylabel}"', "set style data histograms", "set style fill solid 0.8", "set boxwidth 0.7",
        "set logscale y 10", "set grid ytics", "set xtics rotate by -30", "unset key",
        f'plot "{f}" using 2:xtic(1) lc rgb "#3a7bd5"']) + "\n"
    if gnuplot(script):
        plots.append((title, os.path.basename(png)))


line_plot("speedup", "Pool: speedup over sequential vs worker processes (1 ms CPU-bound tasks)",
          "worker processes", "speedup (higher is better)")
line_plot("throughput", "Queue: throughput vs item size, 1 producer -> 1 consumer process",
          "item size (bytes)", "MB/s (higher is better)", logx=True, logy=True)
bar_plot("latency", "Round-trip latency between two processes", "microseconds (lower is better)")

with open(os.path.join(out, "REPORT.md"), "w", encoding="utf-8") as r:
    r.write("# mpp benchmark report\n\n")
    r.write(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}\n")
    r.write(f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}\n")
    r.write("- how: `bench/report` (Release build); every benchmark runs mpp and its peers in the same\n"
            "  process run, repeats each measurement and prints medians and ratios.\n\n")
    for title, png in plots:
        r.write(f"## {title}\n\n![{title}]({png})\n\n")
    for path in raw:
        if path.endswith(".dat"):
            continue
        name = os.path.splitext(os.path.basename(path))[0]
        text = "".join(l for l in open(path, encoding="utf-8", errors="replace") if not l.startswith("RESULT "))
        r.write(f"## {name}\n\n```\n{text.rstrip()}\n```\n\n")
