"""GPU check: the trainer under FSDP2 (training/accelerate/fsdp2.yaml) on N GPUs reaches the losses of a
one-process run with the same recipe, within 1e-4 after every step (float32, so the engines are compared and not
bf16 rounding). accelerate turns FSDP on only for GPU process groups, so on a machine without GPUs the script
runs the same comparison with two gloo processes (training/accelerate/cpu-2proc.yaml, data parallel) and says so.

    python benchmarks/fsdp_check.py [--gpus 2] [--steps 4] [--preset small]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, env):
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")


def _losses(out: Path):
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines() if line]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--preset", default="small")
    args = ap.parse_args()
    import torch
    import yaml

    gpus = torch.cuda.device_count()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    if gpus >= 2:
        n, config, what = min(args.gpus, gpus), "training/accelerate/fsdp2.yaml", "FSDP2"
    else:
        n, config, what = 2, "training/accelerate/cpu-2proc.yaml", "gloo data parallel (no GPUs: FSDP needs them)"
        env["CUDA_VISIBLE_DEVICES"] = ""
    recipe = dict(model=f"preset:{args.preset}", data="synthetic", synthetic_per_family=16, canvas=32,
                  max_prompt_tokens=64, steps=args.steps, batch_size=4 * n, micro_batch_size=2, warmup_steps=1,
                  lr=1e-3, loss="slack_ctc", pad_with="slack", ctc_band=1, bf16=False, gradient_checkpointing=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "r.yaml").write_text(yaml.safe_dump(recipe))
        train = ["-m", "mdlm_bench", "train", "--recipe", str(tmp / "r.yaml"), "--quiet", "--eval-per-family", "0"]
        _run([sys.executable] + train + ["--output", str(tmp / "one")], env)
        _run(["accelerate", "launch", "--config_file", config, "--num_processes", str(n), "--mixed_precision", "no",
              "--main_process_port", "29561"] + train + ["--output", str(tmp / "many")], env)
        one, many = _losses(tmp / "one"), _losses(tmp / "many")
        engine = json.loads((tmp / "many" / "train_config.json").read_text())["engine"]
    worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(one, many))
    ok = len(one) == len(many) == args.steps and worst <= 1e-4
    print(f"{what}: {n} processes (engine {engine}) vs 1, {args.steps} steps, worst relative loss difference "
          f"{worst:.2e} (target <= 1e-4): {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
