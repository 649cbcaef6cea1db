"""Average two weights files of the same architecture, tensor by tensor: ``(1 - t)·A + t·B``.

    .venv/bin/python scripts/average_weights.py A.pth B.pth --t 0.5 --out averaged.pth

Why: B fine-tuned from A (the GPU run of scripts/gpu_runs.sh from the CPU-trained default) gained on the
benchmark on average but lost on some frames that A kept; points on the straight line between two
weights of one lineage usually score at least as well as its ends ("model soups", Wortsman et al. 2022).
The output keeps B's config (the last training run) and records both sources, their own metadata and
``t`` under ``averaged`` in its metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unblur.models import Weights, load_weights, save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--t", type=float, default=0.5, help="weight of B (default: 0.5)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--note", default="", help="recorded in the metadata, e.g. how t was chosen")
    parser.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                        help="a metadata entry for the average, e.g. its own val_psnr (numbers stay numbers)")
    args = parser.parse_args()
    a, b = load_weights(args.a), load_weights(args.b)
    if (a.model, a.model_kwargs) != (b.model, b.model_kwargs) or a.state_dict.keys() != b.state_dict.keys():
        raise SystemExit(f"{args.a} and {args.b} hold different architectures; they cannot be averaged")
    state = {k: (1 - args.t) * a.state_dict[k].float() + args.t * b.state_dict[k].float() for k in a.state_dict}
    state = {k: v.to(a.state_dict[k].dtype) for k, v in state.items()}
    # B's validation scores and step describe B, not the average: they move into "averaged" with A's.
    own = {k: v for k, v in b.meta.items() if k == "config"}
    sources = {"a": str(args.a), "b": str(args.b), "t": args.t, "note": args.note,
               "a_meta": {k: v for k, v in a.meta.items() if k != "config"},
               "b_meta": {k: v for k, v in b.meta.items() if k != "config"}}
    for item in args.meta:
        key, _, value = item.partition("=")
        try:
            own[key] = float(value)
        except ValueError:
            own[key] = value
    meta = {**own, "averaged": json.dumps(sources)}
    save_weights(args.out, Weights(b.model, dict(b.model_kwargs), state, meta))
    print(f"wrote {args.out}: (1 - {args.t})·{args.a} + {args.t}·{args.b}")


if __name__ == "__main__":
    main()
