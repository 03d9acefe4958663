#!/usr/bin/env bash
# Submit the learned routers to both boards (issue 19, item 8): linear, mlp, bandit,
# graphrouter and routerdc on routerbench-v1 and text-v1, each run with the board's full
# protocol (`leaderboard run`: every record keeps its per-prompt test choices, so the
# board gives it an interval and a tier), copied into the board, validated, re-run with
# `leaderboard verify --record` (the record that makes the row verified), and both
# boards shown with their tiers at the end.
#
# Run it from a snapshot of the commit whose numbers you mean to publish, never from a
# checkout you are editing (a run takes hours; the files name the commit they ran on):
#
#   git worktree add --detach ../rh-submit <commit>
#   cd ../rh-submit && benchmarks/boards_submit.sh          # then commit the new files
#   BOARDS=routerbench-v1 ROUTERS="linear mlp" benchmarks/boards_submit.sh   # a part
#
# Interrupted? Run it again: `leaderboard run --resume` continues each submission from
# its OUT/BOARD-ROUTER.json.partial (written after every task x seed), and a router whose
# verification record already matches its file is skipped.
#
# Time on the 2-core machine, one run after another (estimates: `leaderboard run` from
# the text matrix's tune+fit+route seconds, benchmarks/results/text_matrix.json, measured
# with three lanes sharing those cores; `verify --record` re-runs the same protocol, so
# each row costs twice its run; the first text-v1 run also embeds AlpacaEval, LLMRouter
# and RouterDC's 24,490 prompts with MiniLM, about 13 minutes, once, in the cache):
#
#   router        routerbench-v1 run   text-v1 run   both boards, runs + verifies
#   linear        17 s (measured; its verify 10 s)  ~1 min   ~3 min
#   mlp           ~2 min               ~11 min       ~26 min
#   bandit        ~2 min               ~13 min       ~30 min
#   graphrouter   ~3 min               ~21 min       ~48 min
#   routerdc      ~4 min               ~18 min       ~44 min
#   all five, plus the embeddings once: about 2.5 to 3 hours
#
# The committed knn, knn-vote and random rows predate per-prompt choices (no interval,
# no tier): re-running them the same way (ROUTERS="knn knn-vote random", after removing
# or replacing their files) takes seconds each on routerbench-v1 (measured: 3-6 s per
# run, 4-6 s per verify) and reproduces their numbers.
#
# Environment: ROUTEHARNESS_PYTHON (default: python; a Python with routeharness's
# dependencies: the snapshot's own code and plugins are put first on PYTHONPATH, so an
# installed copy elsewhere is not what runs), ROUTEHARNESS_DATA (default ../shared/data:
# RouterDC's files, not shipped), ROUTEHARNESS_CACHE (the embedding cache), OUT (default
# /tmp/boards-submit: submission files as written, checkpoints), BOARDS and ROUTERS
# (default: both boards, all five).
set -euo pipefail
cd "$(dirname "$0")/.."
export ROUTEHARNESS_DATA=${ROUTEHARNESS_DATA:-../shared/data}
export PYTHONPATH="$PWD:$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}"
python=${ROUTEHARNESS_PYTHON:-python}
rh() { "$python" -m routeharness "$@"; }
out=${OUT:-/tmp/boards-submit}
boards=${BOARDS:-routerbench-v1 text-v1}
routers=${ROUTERS:-linear mlp bandit graphrouter routerdc}  # cheapest first
mkdir -p "$out"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  echo "boards_submit: the checkout has changes; run it from a snapshot (git worktree add)" >&2
  exit 2
fi

for board in $boards; do
  for router in $routers; do
    file="leaderboards/$board/submissions/$router.json"
    made="$out/$board-$router.json"
    if [[ -e "$file" ]] && rh leaderboard show "$board" --format json 2>/dev/null |
        "$python" -c "import json,sys; rows=json.load(sys.stdin)['ranking']; sys.exit(0 if any(r['router']=='$router' and r.get('verified') for r in rows) else 1)"; then
      echo "== $board $router: already verified, skipped"
      continue
    fi
    echo "== $board $router: run ($(date -u +%H:%M:%S))"
    rh leaderboard run "$board" -r "$router" -o "$made" --resume -q --format json >"$made.tables.json"
    cp "$made" "$file"
    rh leaderboard validate "$file"
    echo "== $board $router: verify --record ($(date -u +%H:%M:%S))"
    rh leaderboard verify "$file" --record -q --format json >"$out/$board-$router.verify.json"
  done
done
for board in $boards; do
  rh leaderboard show "$board"
done
echo "boards_submit: done; commit leaderboards/*/submissions/ and leaderboards/*/verifications/"
