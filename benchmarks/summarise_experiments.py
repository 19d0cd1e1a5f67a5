"""Table of ``results/experiments_cpu.jsonl``: ARI per variant, data set and seed.

The lines are runs of one ``tl.embed`` + ``tl.cluster`` (package defaults otherwise, morphology
at weight 1.5 on DLPFC, 1 thread on the 2-core CPU) made while choosing the defaults of this
version; each line's ``description`` says what the variant changes. Variants marked
"patch, not kept" ran with code that is not in the package.

    python benchmarks/summarise_experiments.py > benchmarks/results/experiments_cpu.txt
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    rows = [json.loads(line) for line in (HERE / "results" / "experiments_cpu.jsonl").read_text().splitlines()]
    table: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    desc = {}
    for r in rows:
        table[r["variant"]][r["data"]][r["seed"]] = r["ari"]
        desc[r["variant"]] = r["description"]
    print("# python benchmarks/summarise_experiments.py  (ARI, refined, on the annotated spots; per seed)")
    for v, by_data in table.items():
        print(f"\n{v}: {desc[v]}")
        for data, seeds in sorted(by_data.items()):
            print(f"  {data:<24}" + "  ".join(f"seed {s}: {a:.3f}" for s, a in sorted(seeds.items())))
