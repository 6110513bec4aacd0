"""Training step time: slack-CTC vs CE on the same model and batch (target ratio <= 1.3).

    python benchmarks/train_step.py [--preset small] [--model DIR] [--canvas 128 512] [--batch 4] [--repeats 5]

A step is forward + loss + backward + AdamW step. Both losses see the same batch (prompt + canvas with
slack inserted at slack_insert_rate, the same mask draw), measured side by side in one run, interleaved.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", help="random-init preset when --model is not given")
    ap.add_argument("--model", default=None, help="checkpoint directory or bundled name")
    ap.add_argument("--canvas", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--prompt", type=int, default=32, help="prompt tokens per row")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--slack-rate", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from mdlm_bench.models import init_model, load_model
    from mdlm_bench.train.data import Encoded, build_canvas, collate
    from mdlm_bench.train.data import mask_batch
    from mdlm_bench.train.losses import LOSSES

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else \
        ("cpu" if args.device == "auto" else args.device)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or init_model(Path(tmp) / "m", preset=args.preset, seed=0)
        m = load_model(path, dtype="float32", device=device)
    m.add_slack_token()
    if m.max_positions and m.max_positions < args.prompt + max(args.canvas):
        m.model.config.max_position_embeddings = args.prompt + max(args.canvas)
    opt = torch.optim.AdamW(m.model.parameters(), lr=1e-4)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast(
        "cpu", enabled=False)
    rng = random.Random(0)
    vocab = [i for i in range(min(m.vocab_size, 5000)) if i not in (m.mask_id, m.slack_id, *m.eos_ids)]
    console = Console()
    table = Table(title=f"train step, {args.model or 'preset ' + args.preset}, batch {args.batch}, {device}")
    for col in ("canvas", "CE ms", "slack-CTC ms", "ratio CTC/CE", "CE tok/s", "CTC tok/s"):
        table.add_column(col, justify="right")
    for n in args.canvas:
        rows = [Encoded(str(i), [rng.choice(vocab) for _ in range(args.prompt)],
                        [rng.choice(vocab) for _ in range(rng.randint(n // 3, (2 * n) // 3))])
                for i in range(args.batch)]
        canv = torch.tensor([build_canvas(r.response_ids, n, m.eos_ids[0], m.slack_id, args.slack_rate, "eos",
                                          random.Random(i)) for i, r in enumerate(rows)])
        cmask, p_mask = mask_batch(torch.ones(args.batch, n, dtype=torch.bool), torch.Generator().manual_seed(0))
        batch = {k: v.to(device) for k, v in collate(rows, canv, cmask, p_mask, m.pad_id, m.mask_id).items()}
        tail = {k: (v[:, -n:] if v.dim() == 2 else v) for k, v in batch.items()}
        tokens = int(batch["attention_mask"].sum())

        def step(name):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with amp:
                logits = m.logits(batch["input_ids"], batch["attention_mask"], keep_last=n)
            loss = LOSSES.get(name)(logits, tail, m.slack_id)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - t0

        step("ce"), step("slack_ctc")  # warm-up
        times = {"ce": [], "slack_ctc": []}
        for _ in range(args.repeats):
            for name in times:
                times[name].append(step(name))
        ce, ctc = statistics.median(times["ce"]), statistics.median(times["slack_ctc"])
        table.add_row(str(n), f"{ce * 1e3:.1f}", f"{ctc * 1e3:.1f}", f"{ctc / ce:.2f}", f"{tokens / ce:,.0f}",
                      f"{tokens / ctc:,.0f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
