"""Score the data-term variants on one fold's held-out photographs:
python tools/experiments/stop34_confidence/eval.py FOLD TAG  (TAG: the confidence network's, runs/conf/conf_fold{FOLD}_{TAG}.pt)

Writes runs/conf/eval_fold{FOLD}_{TAG}.json: {frame: {variant: [SAD, Grad]}}. Variants: the shipped
data term (base); the data term raised by lam * g(p) where g is p > t (t 0.5, 0.7, 0.9), p or p^2;
the oracle (the label itself, lam 3e-2), for reference only."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FOLDS, FRAMES, LAM, WORK, ConfNet, full_alpha, scorer, solve  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
GATES = {"h50": lambda p: (p > 0.5).float(), "h70": lambda p: (p > 0.7).float(), "h90": lambda p: (p > 0.9).float(),
         "p1": lambda p: p, "p2": lambda p: p * p}
LAMBDAS = (1e-3, 3e-3, 1e-2)


def main() -> None:
    k, tag = int(sys.argv[1]), sys.argv[2]
    out_path = WORK / f"eval_fold{k}_{tag}.json"
    done = json.loads(out_path.read_text()) if out_path.exists() else {}
    net = ConfNet()
    net.load_state_dict(torch.load(WORK / f"conf_fold{k}_{tag}.pt"))
    net.eval()
    for name in FOLDS[k]:
        for v in ("Trimap1", "Trimap2"):
            frame = f"{name}/{v}"
            if frame in done:
                continue
            s = torch.load(FRAMES / f"photo_{name}_{v}.pt", weights_only=False)
            score = scorer(s)
            with torch.no_grad():
                p_img = torch.sigmoid(net(s["features"].float()[None]))[0, 0].reshape(-1)
            where = torch.from_numpy(s["where"])
            p = p_img[where]
            if "cons" in tag:  # its answer only counts where trusting the prior changes the result
                p = p * ((s["a1"] - s["prior"]).abs() > 0.05).float()
            base = LAM * s["conf"]
            row = {"base": score(full_alpha(s, s["a1"]))}
            for gname, g in GATES.items():
                for lam in LAMBDAS:
                    row[f"{gname}_{lam:g}"] = score(full_alpha(s, solve(s, base + lam * g(p))))
            lab = s["label"].reshape(-1)[where].float()
            row["oracle_0.03"] = score(full_alpha(s, solve(s, 3e-2 * lab)))
            done[frame] = row
            out_path.write_text(json.dumps(done, indent=1))
            print(frame, {key: round(val[0], 3) for key, val in row.items() if key in ("base", "h50_0.01", "p1_0.003", "oracle_0.03")}, flush=True)


if __name__ == "__main__":
    main()
