#!/usr/bin/env bash
# The full test suite, from a fresh Debian machine with the Rust toolchain:
# installs what the tests need (a Python venv with the pinned official python-ovh client for the
# conformance tests; PostgreSQL's server for the PostgreSQL store's tests; spin for the model
# check; zsh, fish and groff for the completion and manual page checks; cargo-deny), then
# formatting, lints, the supply-chain check, the model check of apply's intent journal and
# every test, the tests with nothing but the repository visible, and the Dockerfile's steps
# (scripts/dockerfile-steps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per phase with the seconds since the start, so a CI log shows where its time goes
# (docs/benchmarks.md "CI time").
started=$SECONDS
phase() { echo "test.sh: $1 done at +$((SECONDS - started)) s" >&2; }

# cargo-deny for the supply-chain check below is built (when missing) while the packages
# install: its compilation overlaps their downloads.
mkdir -p target
bash scripts/deny.sh --install-only >target/deny-install.log 2>&1 &
deny_install=$!

venv="${OVHFORM_TEST_VENV:-$PWD/target/test-venv}"
if ! "$venv/bin/python" -c 'import ovh, prometheus_client' 2>/dev/null; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
export OVHFORM_TEST_PYTHON="$venv/bin/python"
phase "python venv"

# The PostgreSQL store's tests start a throwaway server of their own (tests/it/pg_support.rs)
# unless OVHFORM_TEST_PG_URL names one: they need initdb and pg_ctl, and openssl for the
# server's TLS certificate, and fail without them.
if [[ -z "${OVHFORM_TEST_PG_URL:-}" ]]; then
  pg_packages=()
  if ! command -v initdb >/dev/null 2>&1 \
    && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    pg_packages+=(postgresql)
  fi
  command -v openssl >/dev/null 2>&1 || pg_packages+=(openssl)
  if [[ ${#pg_packages[@]} -gt 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pg_packages[@]}"
  fi
fi

# The CI examples' tests (tests/it/ci_examples.rs) run the GitHub comment script under node and
# the GitLab note script with jq, as their runners would; README's tour
# (tests/it/readme_recipe.rs) reads the daemon's /status with curl. The completion scripts are
# checked by the shells themselves (tests/it/shell_docs.rs), the manual pages by groff: zsh,
# fish and groff are installed when missing (bash is always there).
tools=()
command -v jq >/dev/null 2>&1 || tools+=(jq)
command -v node >/dev/null 2>&1 || tools+=(nodejs)
command -v curl >/dev/null 2>&1 || tools+=(curl)
for tool in zsh fish; do command -v "$tool" >/dev/null 2>&1 || tools+=("$tool"); done
command -v groff >/dev/null 2>&1 || tools+=(groff-base)
# spin and gcc for the model check below (scripts/model-check.sh installs them itself when run
# alone; here, before it starts in the background, so two apt-gets never race for dpkg's lock).
command -v spin >/dev/null 2>&1 || tools+=(spin)
command -v gcc >/dev/null 2>&1 || tools+=(gcc)
if [[ ${#tools[@]} -gt 0 ]]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tools[@]}"
fi
phase "packages"

# apply's intent-journal protocol, model-checked with spin: the model verifies and its
# deliberately flawed variants fail. One core for about half a minute, in the background while
# clippy's single-threaded check of this crate leaves a core idle.
bash scripts/model-check.sh >target/model-check.log 2>&1 &
model_check=$!

cargo fmt --all --check
phase "fmt"
cargo clippy --all-targets --locked -- -D warnings
phase "clippy"
# Supply chain (deny.toml, docs/security.md): licences, banned crates (OpenSSL), sources and
# the vendored RustSec advisories; the self-test shows a planted advisory fails it.
wait "$deny_install" || { cat target/deny-install.log >&2; exit 1; }
phase "cargo-deny build (in the background since the start)"
bash scripts/deny.sh --self-test
phase "supply-chain check"
wait "$model_check" || { cat target/model-check.log >&2; exit 1; }
cat target/model-check.log
phase "model check (in the background since the packages)"
# The tests run where only the repository is visible (scripts/isolated.sh): a test that reads a
# file outside it fails here, not in someone else's clone. Eight test threads on two cores: the
# tests mostly wait on the binaries they run and the simulator (the integration suite measured
# 85 CPU-s in 221 s at two threads, 122 s at eight; docs/benchmarks.md "CI time").
bash scripts/isolated.sh cargo test --locked --all-targets -- --test-threads "${OVHFORM_TEST_THREADS:-8}"
phase "tests"
# The Dockerfile's steps in order without Docker (none in CI): build, install paths, user,
# volume, health check, then the image's default command against the simulator. The dev
# profile reuses every dependency the tests above compiled (only the copied crate is built,
# then seconds per self-test case), where a release build of the whole tree costs about 10 min
# on 2 cores; the release
# command is checked as written and run with `--profile release` by hand (docs/operations.md
# "Container image").
bash scripts/dockerfile-steps.sh --profile dev --self-test
phase "Dockerfile steps"
