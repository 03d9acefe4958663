#!/usr/bin/env bash
# The text matrix (7 routers x 4 text tasks x 3 seeds) in one command on an executor:
#   benchmarks/executors.sh ray|local [TASK ...]   (default: the four text tasks)
# Run it from a snapshot of a commit (git worktree add): a long eval imports plugins lazily.
# Output: $OUT/EXECUTOR.json (default OUT=/tmp/executors), /usr/bin/time -v in EXECUTOR.err.
set -uo pipefail
ex=$1; shift
tasks=("${@:-alpacaeval routerbench llmrouter routerdc}")
out=${OUT:-/tmp/executors}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export ROUTEHARNESS_DATA=${ROUTEHARNESS_DATA:-../shared/data}   # routerdc is read from there
targs=(); for t in ${tasks[*]}; do targs+=(-t "$t"); done
start=$(date +%s)
/usr/bin/time -v routeharness eval -r knn -r linear -r mlp -r mlp-select -r routerdc \
  -r graphrouter -r bandit "${targs[@]}" --seeds 0,1,2 --executor "$ex" -q \
  -o "$out/$ex.json" > "$out/$ex.out" 2> "$out/$ex.err"
echo "rc=$? wall=$(( $(date +%s) - start ))s" >> "$out/$ex.err"
