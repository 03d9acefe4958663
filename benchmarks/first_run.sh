#!/bin/bash
# The README's first command, `routeharness eval --router knn --task routerbench`, on an
# empty embedding cache (ROUTEHARNESS_CACHE a new folder), timed by /usr/bin/time: this
# checkout (the shipped embeddings), then BEFORE (a checkout without them, e.g. the
# commit before them in a worktree), then this checkout again; the load average beside
# each. Usage: benchmarks/first_run.sh BEFORE_CHECKOUT [PYTHON]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
before=${1:?usage: benchmarks/first_run.sh BEFORE_CHECKOUT [PYTHON]}
python=${2:-$here/.venv/bin/python}
out=$(mktemp -d)
for which in after before after-again; do
  case $which in before) code=$before;; *) code=$here;; esac
  mkdir -p "$out/$which/work"
  echo "== $which ($code) $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd "$out/$which/work" && env -u ROUTEHARNESS_DATA PYTHONPATH="$code:$code/plugins" \
    ROUTEHARNESS_CACHE="$out/$which/cache" \
    /usr/bin/time -f "$which: wall %e s, user %U s, sys %S s, max RSS %M kB" \
    "$python" -m routeharness eval --router knn --task routerbench \
    > "$out/$which/out.txt" 2> "$out/$which/err.txt") || { cat "$out/$which/err.txt"; exit 1; }
  tail -1 "$out/$which/err.txt"
  echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "outputs in $out"
