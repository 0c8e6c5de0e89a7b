"""Training throughput (examples/s) of 1 process vs ``torchrun`` with 2 processes (gloo on CPU, NCCL on GPUs),
same global batch, for ``train controlnet`` (tiny configuration, 32-voxel cubes of a demo crop) and
``train hrldm`` (tiny configuration, LIDC nodules when ../shared/data is present).

Each setting runs for ``--short`` and ``--long`` steps (the fastest of ``--repeats`` runs each, the settings
interleaved); the throughput is ``(long - short) x batch / (time_long - time_short)``, so start-up and encoding
cancel out (a setting too busy to tell them apart is reported, not divided by, and the others go on). Each
process uses ``--threads`` threads (default 1). The ratio 2 processes / 1 process is printed with the 1-minute
load average before and after (on a shared machine the other load is part of the result: 2 processes need 2
free cores).

    python Testing/benchmarks/bench_train_ddp.py [--batch-size 4] [--short 2] [--long 8] [--repeats 2] [--device cpu] [--json out.json]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing"))


def _data(folder: Path) -> dict[str, list[str]]:
    from nodsynth.phantom import make_demo_patient
    from nodsynth.train.controlnet import nodule_patch
    from nodsynth.io.volume_files import write_volume
    from test_nodmaisi_engine import tiny_weights_folder

    frozen = tiny_weights_folder(folder / "frozen", with_controlnet=False)
    patient = make_demo_patient()
    ct, labels = nodule_patch(patient.ct, patient.labelmap, 64, 32)
    write_volume(ct, folder / "ct.nii.gz")
    write_volume(labels, folder / "labels.nii.gz")
    data = {"controlnet": ["--pair", str(folder / "ct.nii.gz"), str(folder / "labels.nii.gz"), "--patch", "32",
                           "--config", "maisi_tiny", "--weights", str(frozen)]}
    vois = ROOT.parent / "shared" / "data" / "lidc_vois"
    if (vois / "nodules.csv").is_file():
        rows = list(csv.DictReader(open(vois / "nodules.csv")))[:4]
        with open(folder / "hrldm.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "mask", "subtype"])
            for row in rows:
                writer.writerow([vois / "image" / row["file"], vois / "nodule_mask" / row["file"], "solid"])
        data["hrldm"] = ["--manifest", str(folder / "hrldm.csv"), "--config", "hrldm_tiny", "--random-autoencoder"]
    return data


def _seconds(processes: int, trainer: str, options: list[str], steps: int, args, out: Path) -> float:
    launcher = [sys.executable, "-m", "nodsynth"] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), "-m", "nodsynth"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    command = [*launcher, "train", trainer, *options, "--steps", str(steps), "--batch-size", str(args.batch_size),
               "--device", args.device, "--out", str(out)]
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--short", type=int, default=2)
    parser.add_argument("--long", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for trainer, options in _data(folder).items():
            rates, loads, timed = {}, {}, {}
            load_before = os.getloadavg()[0]
            for r in range(args.repeats):  # interleaved, so a change of the machine's load hits both settings
                for processes in (1, 2):
                    for steps in (args.short, args.long):
                        seconds = _seconds(processes, trainer, options, steps, args, folder / f"{trainer}{processes}_{steps}_{r}")
                        timed[processes, steps] = min(timed.get((processes, steps), seconds), seconds)
            for processes in (1, 2):
                times = [timed[processes, args.short], timed[processes, args.long]]
                loads[processes] = [load_before, os.getloadavg()[0]]
                if times[1] <= times[0]:
                    print(f"train {trainer}, {processes} process(es): the {args.long}-step run took no longer than the "
                          f"{args.short}-step one ({times[1]:.1f} s vs {times[0]:.1f} s; load average {load_before:.2f} -> "
                          f"{loads[processes][1]:.2f} on {os.cpu_count()} cores): too busy to measure; use more "
                          "--repeats or a larger --long")
                    continue
                rates[processes] = (args.long - args.short) * args.batch_size / (times[1] - times[0])
                print(f"train {trainer}, {processes} process(es) x {args.threads} thread(s), global batch "
                      f"{args.batch_size}: {rates[processes]:.2f} examples/s (runs of {args.short} and {args.long} "
                      f"steps: {times[0]:.1f} s, {times[1]:.1f} s; load average {load_before:.2f} -> "
                      f"{loads[processes][1]:.2f} on {os.cpu_count()} cores)")
            ratio = rates[2] / rates[1] if len(rates) == 2 else None
            print(f"train {trainer}: 2 processes / 1 process = " + (f"{ratio:.2f}x" if ratio else "not measured"))
            results[trainer] = {"examples_per_s": rates, "ratio_2_over_1": ratio, "load_average": loads,
                                "threads_per_process": args.threads, "cores": os.cpu_count()}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
