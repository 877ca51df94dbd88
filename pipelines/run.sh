#!/usr/bin/env bash
# The run's bookkeeping, for the Makefile:
#   run.sh locked RUNDIR CMD...  run CMD holding RUNDIR/.lock; a second
#                                holder exits at once, naming the first
#                                (nested calls under the same lock run CMD)
#   run.sh done RUNDIR           completed iterations, from RUNDIR/state.json
#   run.sh commit RUNDIR N       record N completed iterations, atomically
#   run.sh config RUNDIR [1] < resolved
#                                the run's configuration (make config's
#                                NAME=value lines) is RUNDIR/config.txt: the
#                                first call writes it, a later one refuses a
#                                different one unless given 1 (then it is
#                                replaced, the old kept as config-<time>.txt).
#                                ITERS, KEEP and EVAL_* may change freely, and
#                                a variable only one side has is no change.
#   run.sh prune RUNDIR KEEP EVAL_EVERY
#                                with KEEP=k (not empty), delete the policies
#                                but of the last k iterations and every
#                                EVAL_EVERY-th, and the critics and optimizer
#                                state but of the latest; print disk use
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
    rm -f "$dir"/.state.json.tmp-* "$dir"/.config.txt.tmp-*
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
  config)
    mkdir -p "$dir"
    new=$(cat)
    free='^(ITERS|KEEP|EVAL_EVERY|EVAL_SETS|EVAL_MAX_NEW_TOKENS|EVAL_FLAGS)='
    if [ ! -f "$dir/config.txt" ]; then
      printf '%s\n' "$new" >"$dir/.config.txt.tmp-$$"
      mv -f "$dir/.config.txt.tmp-$$" "$dir/config.txt"
      exit 0
    fi
    # A variable in both with another value (one only a newer or older
    # version of the tool knows is not a change of this run's settings).
    changed=$(awk -F= -v free="$free" '
      $0 ~ free { next }
      { name = $1; value = substr($0, length(name) + 2) }
      FNR == NR { old[name] = value; next }
      (name in old) && old[name] != value { printf "%swas %s=%s; now %s=%s", sep, name, old[name], name, value; sep = "; " }
    ' "$dir/config.txt" <(printf '%s\n' "$new"))
    if [ -z "$changed" ]; then
      exit 0
    fi
    if [ "${1:-}" != 1 ]; then
      echo "$dir was run with another configuration ($changed): continue it with ALLOW_CONFIG_CHANGE=1, or start a new run with RUN=<name>" >&2
      exit 1
    fi
    cp "$dir/config.txt" "$dir/config-$(date -u +%Y%m%dT%H%M%SZ).txt"
    printf '%s\n' "$new" >"$dir/.config.txt.tmp-$$"
    mv -f "$dir/.config.txt.tmp-$$" "$dir/config.txt"
    echo "$dir: configuration changed ($changed); the old one is kept beside config.txt" >&2
    ;;
  prune)
    keep=${1:-} every=${2:-0}
    n=$("$0" done "$dir")
    kept=()
    for d in "$dir"/iter-*; do
      [ -d "$d" ] || continue
      i=$((10#${d##*/iter-}))
      # Leftovers of a deletion that was interrupted.
      rm -rf "$d"/.policy.deleting "$d"/.critic.deleting
      [ -n "$keep" ] && [ "$i" -lt $((n - 1)) ] || { [ -d "$d/policy" ] && kept+=("${d##*/}"); continue; }
      for part in critic policy; do
        keep_it=0
        if [ "$part" = policy ]; then
          [ "$i" -ge $((n - keep)) ] && keep_it=1
          [ "$every" -gt 0 ] && [ $(((i + 1) % every)) -eq 0 ] && keep_it=1
        fi
        if [ -d "$d/$part" ] && [ $keep_it = 0 ]; then
          mv "$d/$part" "$d/.$part.deleting" && rm -rf "$d/.$part.deleting"
        fi
      done
      rm -f "$d/policy/optimizer.safetensors"
      [ -d "$d/policy" ] && kept+=("${d##*/}")
    done
    latest=$(printf '%s/iter-%04d' "$dir" $((n - 1)))
    size() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}' | numfmt --to=iec --suffix=B; }
    echo "disk: $dir uses $(size "$dir") after $n iterations (the latest, ${latest##*/}: $(size "$latest"); policies kept: ${kept[*]:-none})"
    ;;
  *)
    echo "run.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
