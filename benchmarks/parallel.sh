#!/usr/bin/env bash
# bench_quality.py and the GPU peers (GraphST, STAGATE) as many single-threaded processes at
# once, for a machine with many cores and a GPU. Each (data set, seed) of bench_quality and
# each (data set, method, seed) of the peers is one process; their records land in OUT and
# are merged afterwards:
#   python benchmarks/bench_quality.py --load OUT/quality/*.json
#   python benchmarks/bench_peers.py --results OUT/peers --methods graphst stagate   (scores the peer runs)
#
#   bash benchmarks/parallel.sh OUT [DATA_DIR]
# Environment: QUALITY_JOBS (default 11), PEER_JOBS (4), SEEDS ("0 1 2 3 4"), PEER_SEEDS ("0 1 2"),
# PEERS ("graphst stagate"), PYTHON (python3), PEER_PYTHON (python3: one with the peers installed), DEVICE (cuda),
# TRAINER ('{"accelerator": "gpu"}').
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
data="$(cd "${2:-$here/../../shared/data}" && pwd)"
mkdir -p "$out/quality" "$out/peers" "$out/logs"
export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
seeds="${SEEDS:-0 1 2 3 4}"
peer_seeds="${PEER_SEEDS:-0 1 2}"
peers="${PEERS:-graphst stagate}"
trainer='{"accelerator": "gpu"}'
[ -n "${TRAINER:-}" ] && trainer="$TRAINER"
sets=$(cd "$data" && ls dlpfc_*.h5ad; cd "$data" && ls *.h5ad | grep -v '^dlpfc_')

quality_jobs() {
  for f in $sets; do for s in $seeds; do
    d="${f%.h5ad}"
    echo "${PYTHON:-python3} $here/bench_quality.py --only $d --seeds $s --data-dir $data --trainer '$trainer' --save $out/quality/q_${d}_$s.json > $out/logs/q_${d}_$s.log 2>&1"
  done; done
}
peer_jobs() {
  for f in $sets; do for s in $peer_seeds; do for m in $peers; do
    d="${f%.h5ad}"
    stem="$out/peers/${d}_${m}_seed$s"
    echo "${PEER_PYTHON:-python3} $here/peers/run_peer.py $m $data/$f --seed $s --out $stem.json --emb $stem.npy --threads 1 --device ${DEVICE:-cuda} > $stem.log 2>&1"
  done; done; done
}
quality_jobs | xargs -d '\n' -P "${QUALITY_JOBS:-11}" -I CMD bash -c CMD &
peer_jobs | xargs -d '\n' -P "${PEER_JOBS:-4}" -I CMD bash -c CMD &
wait
echo "done: $(ls "$out"/quality/*.json 2>/dev/null | wc -l) quality records, $(ls "$out"/peers/*.json 2>/dev/null | wc -l) peer runs"
