#!/usr/bin/env bash
# The whole text matrix of issue 4: kNN and every learned router on the four text tasks,
# three seeds, MiniLM embeddings, in three processes (the 2-core machine it was measured
# on runs two at full speed; the first mostly encodes), merged into one table set.
# Writes benchmarks/results/text_matrix.json and prints the tables (text_matrix.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/text-matrix}
mkdir -p "$out" benchmarks/results
tasks=(-t routerbench -t alpacaeval -t llmrouter -t routerdc)
routeharness eval -r knn -r linear "${tasks[@]}" --seeds 3 -o "$out/knn_linear.json" &
routeharness eval -r graphrouter -r mlp-select "${tasks[@]}" --seeds 3 --no-references \
    -o "$out/p1.json" &
routeharness eval -r mlp -r routerdc -r bandit "${tasks[@]}" --seeds 3 --no-references \
    -o "$out/p2.json" &
wait
COLUMNS=200 routeharness results show "$out/knn_linear.json" "$out/p1.json" "$out/p2.json" \
    -o benchmarks/results/text_matrix.json --plot benchmarks/results/text_matrix.png
