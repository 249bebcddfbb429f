#!/usr/bin/env python3
"""drain3 peer run for the log template miner: speed and grouping accuracy, same input, same
scorer, same run.

One command, from the workspace root:

    python3 benches/drain3_peer.py --data ../shared/datasets/loghub

Requirements: `pip install drain3` (measured with drain3 0.9.11) and a Rust toolchain; the
script builds the `loghub` harness itself (`cargo build --release -p sightline-benches --bin
loghub`).

What it does:

1. Runs our harness (`loghub --data DIR --out WORK/ours --contents-out WORK/contents`): it
   splits every `<System>_2k.log` by its log format, mines the contents with our miner,
   scores them and measures our single-threaded lines/s.
2. Runs drain3 with default settings (`TemplateMiner()` with no config file: sim_th 0.4,
   depth 4, max_children 100, no masking) over exactly those contents (`WORK/contents`), a
   fresh miner per system, timing only `add_log_message`; repeated `--passes` times, median
   pass reported, the same protocol as ours. Its final cluster of every line is written as
   `WORK/drain3/<System>.csv` (`LineId,PatternId,Template`).
3. Scores drain3's output with OUR scorer (`loghub --score-only WORK/drain3`), so both sides
   are scored by the same code against the corrected labels.
4. Prints per-system GA for both, the average GA/PA/FGA/FTA, lines/s for both and the ratio.
"""

import argparse
import csv
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_harness(binary, args):
    """Runs the loghub harness; returns (stdout lines, parsed JSON of its last line)."""
    proc = subprocess.run([binary] + args, check=True, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


def drain3_pass(systems, contents):
    """Mines every system with a fresh default drain3 miner; returns (seconds, outputs)."""
    from drain3 import TemplateMiner

    elapsed = 0.0
    outputs = {}
    for system in systems:
        miner = TemplateMiner()
        lines = contents[system]
        add = miner.add_log_message
        start = time.perf_counter()
        ids = [add(line)["cluster_id"] for line in lines]
        elapsed += time.perf_counter() - start
        clusters = {c.cluster_id: c for c in miner.drain.clusters}
        outputs[system] = [(cid, clusters[cid].get_template()) for cid in ids]
    return elapsed, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="Loghub folder with <System>/ folders")
    parser.add_argument("--work", help="folder for outputs (default: a new temp folder)")
    parser.add_argument("--passes", type=int, default=5, help="timed drain3 passes")
    args = parser.parse_args()
    # drain3 warns that it found no drain3.ini (it then runs with its defaults, which is the
    # point); keep the report readable.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("drain3").setLevel(logging.ERROR)

    work = args.work or tempfile.mkdtemp(prefix="drain3_peer_")
    data = os.path.abspath(args.data)
    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "-p", "sightline-benches", "--bin", "loghub"],
        check=True,
        cwd=ROOT,
    )
    binary = os.path.join(ROOT, "target", "release", "loghub")

    ours_dir = os.path.join(work, "ours")
    contents_dir = os.path.join(work, "contents")
    drain3_dir = os.path.join(work, "drain3")
    os.makedirs(drain3_dir, exist_ok=True)

    ours_out, ours = run_harness(
        binary, ["--data", data, "--out", ours_dir, "--contents-out", contents_dir]
    )
    ours_rate = next(
        float(line.split(":", 1)[1]) for line in ours_out if line.startswith("throughput_lines_per_sec:")
    )

    systems = sorted(name[:-4] for name in os.listdir(contents_dir) if name.endswith(".txt"))
    contents = {}
    for system in systems:
        with open(os.path.join(contents_dir, system + ".txt"), encoding="utf-8") as f:
            text = f.read()
        contents[system] = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    total_lines = sum(len(lines) for lines in contents.values())

    # drain3 runs in an empty folder so no drain3.ini changes its defaults.
    cwd = os.getcwd()
    os.chdir(tempfile.mkdtemp(prefix="drain3_cwd_"))
    try:
        rates = []
        first_outputs = None
        for _ in range(max(1, args.passes)):
            seconds, outputs = drain3_pass(systems, contents)
            rates.append(total_lines / seconds)
            first_outputs = first_outputs or outputs
    finally:
        os.chdir(cwd)
    drain3_rate = statistics.median(rates)

    for system, rows in first_outputs.items():
        with open(os.path.join(drain3_dir, system + ".csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["LineId", "PatternId", "Template"])
            for line_id, (cid, template) in enumerate(rows, start=1):
                writer.writerow([line_id, cid, template])

    _, theirs = run_harness(binary, ["--data", data, "--score-only", drain3_dir])

    print(f"work folder: {work}")
    print(f"{'system':<12} {'GA ours':>8} {'GA drain3':>10}")
    for system in sorted(ours["systems"]):
        ga_ours = ours["systems"][system]["GA"]
        ga_theirs = theirs["systems"].get(system, {}).get("GA", float("nan"))
        print(f"{system:<12} {ga_ours:>8.4f} {ga_theirs:>10.4f}")
    for name, result in (("ours", ours), ("drain3", theirs)):
        avg = result["average"]
        print(
            f"average {name:<7} GA {avg['GA']:.4f}  PA {avg['PA']:.4f}  "
            f"FGA {avg['FGA']:.4f}  FTA {avg['FTA']:.4f}  (corrected labels)"
        )
    print(f"lines/s ours   {ours_rate:>12.0f}  (single thread, median pass, {total_lines} lines)")
    print(f"lines/s drain3 {drain3_rate:>12.0f}  (single thread, median of {len(rates)} passes)")
    print(f"ratio ours/drain3: {ours_rate / drain3_rate:.1f}x")
    print(
        json.dumps(
            {
                "ours": {"lines_per_sec": ours_rate, "average": ours["average"]},
                "drain3": {"lines_per_sec": drain3_rate, "average": theirs["average"]},
                "ratio": ours_rate / drain3_rate,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
