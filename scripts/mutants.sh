#!/usr/bin/env bash
# Mutation testing of the planner, limited to what a change touches: cargo-mutants over the
# lines of src/plan/ that differ from a base (default origin/main, else main; committed and
# uncommitted changes), each mutant tested with the planner's tests only. By hand, before asking for
# review of a planner change (CI does not run it); docs/benchmarks.md, "Mutation testing of
# the planner (issue 8)".
#
#   scripts/mutants.sh                 # against origin/main, else main
#   scripts/mutants.sh main            # against another base (branch, tag, commit)
#   scripts/mutants.sh main -- --list  # extra cargo-mutants arguments after `--`
#
# Exit status is cargo-mutants': 0 when every mutant was caught (or unviable), 2 when some
# survived (listed in target/mutants/mutants.out/missed.txt), 3 on timeouts, 4 when the
# tests fail without any mutation. Environment: MUTANTS_JOBS (default 1; more only with no
# CARGO_TARGET_DIR, each job then builds every dependency: jobs sharing one target directory
# can test each other's mutant),
# MUTANTS_TIMEOUT (seconds per test run, default 60), CARGO_TARGET_DIR (default ./target:
# the mutants reuse its dependencies' build cache). Too slow for CI (about 15 s a mutant on
# two cores): run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

# A clone has origin/main; a local repository (or a worktree of one) only main.
base="main"
git rev-parse --verify -q origin/main >/dev/null && base="origin/main"
if [[ $# -gt 0 && "$1" != "--" ]]; then
  base="$1"
  shift
fi
[[ "${1:-}" == "--" ]] && shift

if ! command -v cargo-mutants >/dev/null 2>&1; then
  echo "scripts/mutants.sh: cargo-mutants is not installed (cargo install --locked cargo-mutants)" >&2
  exit 1
fi

fork=$(git merge-base "$base" HEAD)
out="${CARGO_TARGET_DIR:-$PWD/target}/mutants"
mkdir -p "$out"
diff="$out/plan.diff"
# The test kit is test support, not the planner: its mutants say nothing about the rules.
git diff "$fork" -- src/plan/ ':(exclude)src/plan/testkit.rs' >"$diff"
if [[ ! -s "$diff" ]]; then
  echo "scripts/mutants.sh: no change to src/plan/ since $base ($fork): nothing to mutate"
  exit 0
fi
echo "scripts/mutants.sh: mutating the src/plan/ lines changed since $base ($(git diff --stat "$fork" -- src/plan/ ':(exclude)src/plan/testkit.rs' | tail -1))"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# A law that fails is a caught mutant: shrinking its counterexample only costs time (a minute
# and more in a debug build, enough to hit the timeout).
export PROPTEST_MAX_SHRINK_ITERS="${PROPTEST_MAX_SHRINK_ITERS:-0}"
# The planner's tests by module: a bare `plan` filter also runs the apply end-to-end tests
# whose names mention a plan (minutes each, and not the planner's).
status=0
cargo mutants \
  --in-diff "$diff" \
  --file 'src/plan/*.rs' --exclude src/plan/testkit.rs \
  --jobs "${MUTANTS_JOBS:-1}" \
  --timeout "${MUTANTS_TIMEOUT:-60}" \
  --output "$out" \
  --cargo-arg=--lib --cargo-arg=--test=it \
  "$@" \
  -- -- plan:: plan_laws:: plan_rules:: plan_trust:: plan_render:: plan_cli:: plan_facts:: \
  --skip pipeline:: || status=$?
# The crate's artifacts are named the same in every build directory, so the last mutant built
# here looks up to date to the next `cargo test` of this tree: newer sources force a rebuild.
find src -name '*.rs' -exec touch {} +
exit "$status"
