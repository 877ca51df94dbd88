#!/usr/bin/env bash
# The run's bookkeeping, for the Makefile:
#   run.sh locked RUNDIR CMD...  run CMD holding RUNDIR/.lock; a second
#                                holder exits at once, naming the first
#                                (nested calls under the same lock run CMD)
#   run.sh done RUNDIR           completed iterations, from RUNDIR/state.json
#   run.sh commit RUNDIR N       record N completed iterations, atomically
# Progress is the state file, written after each iteration, not a count of
# checkpoints: deleting old iterations' checkpoints is safe.
set -euo pipefail
cmd=$1 dir=$2
shift 2
state=$dir/state.json
case $cmd in
  locked)
    if [ "${SIMPLERL_RUN_LOCK:-}" = "$dir" ]; then exec "$@"; fi
    mkdir -p "$dir"
    exec 9>>"$dir/.lock"
    if ! flock -n 9; then
      holder=$(cat "$dir/.lock" 2>/dev/null)
      echo "$dir is in use by ${holder:-another process}; wait for it to finish or stop it" >&2
      exit 1
    fi
    printf 'pid %s on %s since %s (%s)\n' "$$" "$(hostname)" "$(date -u +%FT%TZ)" "$*" >"$dir/.lock"
    # Temporaries of killed bookkeeping writes (we hold the lock).
    rm -f "$dir"/.state.json.tmp-*
    export SIMPLERL_RUN_LOCK=$dir
    exec "$@"
    ;;
  done)
    if [ -f "$state" ]; then
      n=$(sed -n 's/.*"iterations_done": *\([0-9][0-9]*\).*/\1/p' "$state")
      [ -n "$n" ] || { echo "$state: no iterations_done" >&2; exit 1; }
      echo "$n"
    else
      # A run from before state.json: its checkpoints are all there.
      ls "$dir"/iter-*/policy/model.safetensors 2>/dev/null | wc -l
    fi
    ;;
  commit)
    n=$1
    tmp=$dir/.state.json.tmp-$$
    printf '{"iterations_done": %d, "latest_policy": "%s/iter-%04d/policy", "updated": "%s"}\n' \
      "$n" "$dir" "$((n - 1))" "$(date -u +%FT%TZ)" >"$tmp"
    sync "$tmp"
    mv -f "$tmp" "$state"
    sync "$dir"
    ;;
  *)
    echo "run.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
