#!/usr/bin/env bash
# Model-checks apply's intent-journal protocol (src/apply/journal.pml, issue 9) with spin:
# the protocol must verify with no error, and each deliberately flawed variant must fail, which
# shows the properties can fail at all. Installs spin (and gcc, which compiles spin's verifier)
# with apt-get when missing. Everything spin and gcc write goes to a temporary directory; the
# repository is only read. One line per check; exits non-zero if any expectation fails.
#
#   bash scripts/model-check.sh
#
# Search: exhaustive (no -DBITSTATE: the bounded state space, ~1.4 M states, fits in ~170 MB, so
# the result is a proof within the model's bounds, not a sample); -DSAFETY (the properties are
# assertions and one safety LTL formula: no cycle search); -m10000 (the deepest path is ~300
# steps; a search cut short by the depth limit counts as a failure); -w22 (a hash table sized
# for a few million states); gcc -O0 (pan.c compiles in under a second at -O0 and runs ~30 %
# slower than at -O2, which takes longer to compile than the search takes: -O0 wins overall).
# The default VECTORSZ (1024 bytes) holds the model's ~110-byte state. The protocol is checked
# twice: assertions and invalid end states without the never claim (-DNOCLAIM: a claim turns the
# end-state check off), then the LTL claim. Each flawed variant stops at its first error.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C # pan's output and $EPOCHREALTIME, parsed below, in one format

if ! command -v spin >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq spin gcc >/dev/null; } || {
    echo "model-check: spin and gcc are needed (Debian: apt-get install spin gcc)" >&2
    exit 1
  }
fi

model_dir=src/apply
work=$(mktemp -d "${TMPDIR:-/tmp}/ovhform-model-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$model_dir"/journal.pml "$model_dir"/journal_broken.pml "$work"/

failures=0

# check NAME EXPECT(pass|fail) MODEL PAN_CFLAGS -- SPIN_DEFINES...
check() {
  local name=$1 expect=$2 model=$3 cflags=$4
  shift 5
  local dir="$work/$name"
  mkdir "$dir"
  cp "$work"/*.pml "$dir"/
  local start end out errors stored depth verdict
  start=$EPOCHREALTIME
  (cd "$dir" && spin -a "$@" "$model" >spin.log 2>&1) || {
    echo "model-check: $name: spin -a failed:" >&2
    cat "$dir/spin.log" >&2
    failures=$((failures + 1))
    return
  }
  # shellcheck disable=SC2086 # cflags is a list of flags
  (cd "$dir" && gcc $cflags -o pan pan.c 2>gcc.log) || {
    echo "model-check: $name: compiling pan failed:" >&2
    cat "$dir/gcc.log" >&2
    failures=$((failures + 1))
    return
  }
  out=$(cd "$dir" && ./pan -m10000 -w22 -n 2>&1) || true
  end=$EPOCHREALTIME
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | tail -n 1)
  stored=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out" | tail -n 1)
  depth=$(sed -n 's/.*depth reached \([0-9]*\),.*/\1/p' <<<"$out" | tail -n 1)
  verdict=ok
  if [[ -z "$errors" ]]; then
    verdict="FAILED (no result from pan)"
  elif [[ "$expect" == pass && "$errors" != 0 ]]; then
    verdict="FAILED (expected 0 errors)"
  elif [[ "$expect" == pass ]] && grep -qE 'Search not completed|max search depth too small' <<<"$out"; then
    verdict="FAILED (search incomplete)"
  elif [[ "$expect" == fail && "$errors" == 0 ]]; then
    verdict="FAILED (expected a violation: the property no longer catches this flaw)"
  fi
  printf 'model-check: %-19s expect=%-4s errors=%s states=%s depth=%s time=%ss %s\n' \
    "$name" "$expect" "${errors:-?}" "${stored:-?}" "${depth:-?}" \
    "$(awk "BEGIN { printf \"%.1f\", $end - $start }")" "$verdict"
  if [[ "$verdict" != ok ]]; then
    failures=$((failures + 1))
    echo "$out" | grep -E 'violated|error|Search not completed|depth too small' >&2 || true
    if [[ -f "$dir/$model.trail" ]]; then
      echo "model-check: $name: counterexample (its last 50 steps; replay it with" \
        "spin -t -p -k $model.trail $* $model next to a copy of the models):" >&2
      (cd "$dir" && spin -t -p -k "$model.trail" "$@" "$model" 2>&1 |
        grep -E '^ *[0-9]+:[[:space:]]+proc|assertion violated|text of failed' | tail -n 50) >&2 || true
    fi
  fi
}

quick="-O0 -DSAFETY -DNOCLAIM"
check protocol pass journal.pml "$quick" --
check protocol-ltl pass journal.pml "-O0 -DSAFETY" --
check broken fail journal_broken.pml "$quick" --
check lag-unbounded fail journal.pml "$quick" -- -DLAG_UNBOUNDED
check stale-plan fail journal.pml "$quick" -- -DSTALE_PLAN
check purged-means-ended fail journal.pml "$quick" -- -DPURGED_MEANS_ENDED
check clock-after-answer fail journal.pml "$quick" -- -DCLOCK_AFTER_ANSWER
check created-estimate fail journal.pml "$quick" -- -DCREATED_ESTIMATE

if [[ $failures -ne 0 ]]; then
  echo "model-check: $failures check(s) did not meet their expectation" >&2
  exit 1
fi
