#!/usr/bin/env bash
# The whole suite N times in a row (default 5) while `make bench-quick` loads the machine
# over and over: no test may depend on the machine being idle. Prints one line per run and
# exits 1 if any run failed. Each run's output: $OUT/run-K.log (default /tmp/loaded-runs).
#
#   bash tests/loaded_runs.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
out=${OUT:-/tmp/loaded-runs}
mkdir -p "$out"
py=.venv/bin/python

# The load: bench-quick again and again, in its own process group, stopped at the end.
setsid bash -c "while :; do $py bench/run.py --quick --no-install >>'$out/bench.log' 2>&1; done" &
load=$!
trap 'kill -- -"$load" 2>/dev/null; wait "$load" 2>/dev/null' EXIT

failed=0
for k in $(seq 1 "$runs"); do
    start=$(date +%s)
    $py -m pytest -q -p no:cacheprovider -ra >"$out/run-$k.log" 2>&1
    rc=$?
    summary=$(tail -n 1 "$out/run-$k.log")
    echo "run $k: exit $rc, $(($(date +%s) - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg): $summary"
    [ "$rc" -eq 0 ] || failed=1
done
exit $failed
