#!/usr/bin/env bash
# The whole text matrix (issue 4): kNN and every learned router on the four text tasks,
# seeds 0,1,2, MiniLM embeddings (cached in ROUTEHARNESS_CACHE). Three lanes run at once,
# one eval per task each so every finished task is saved (and --resume picks up an
# interrupted one); then `results show` merges the twelve files into one table set.
# Output: benchmarks/results/text_matrix.{json,png}; tables on stdout (text_matrix.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export ROUTEHARNESS_DATA=${ROUTEHARNESS_DATA:-../shared/data}  # routerdc is read from there
out=${OUT:-/tmp/text-matrix}
mkdir -p "$out" benchmarks/results
lane() {  # lane NAME EXTRA_FLAGS ROUTER...
  local name=$1 extra=$2; shift 2
  local routers=(); for r in "$@"; do routers+=(-r "$r"); done
  for task in alpacaeval routerbench llmrouter routerdc; do
    routeharness eval "${routers[@]}" -t "$task" --seeds 0,1,2 $extra -q --resume \
        -o "$out/$name-$task.json"
  done
}
lane p0 "" knn linear &                                    # with the reference rows
lane p1 --no-references graphrouter mlp-select &
lane p2 --no-references mlp routerdc bandit &
wait
COLUMNS=200 routeharness results show "$out"/p[012]-*.json \
    -o benchmarks/results/text_matrix.json --plot benchmarks/results/text_matrix.png
python benchmarks/train_time.py --from-results benchmarks/results/text_matrix.json
