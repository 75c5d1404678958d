#!/usr/bin/env bash
# The supply-chain check (docs/security.md "Supply chain"): `cargo deny check licenses bans
# sources advisories` with deny.toml's policy, offline, against the RustSec advisories vendored
# in deny/advisory-db (GitHub, where the database lives, is unreachable from the build
# machines). cargo-deny itself is built from crates.io at a pinned version when missing.
#
#   --install-only  only build cargo-deny when missing (scripts/test.sh starts this early, so
#                   the build overlaps the package installs)
#   --self-test     also show the check can fail: an advisory planted against a crate in
#                   Cargo.lock must turn it red.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
root=target/tools
deny="$root/bin/cargo-deny"
if ! "$deny" --version 2>/dev/null | grep -qx "cargo-deny $version"; then
  # Its own release profile (fat LTO, one codegen unit) costs minutes of CI for a tool that
  # runs for seconds: built unoptimised instead (measured on 2 cores: 164 CPU-s to build where
  # opt-level 1 took ~270; a check then takes 4.3 s instead of 1.8).
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    cargo install --locked --quiet --root "$root" "cargo-deny@$version"
fi
[[ "${1:-}" == "--install-only" ]] && exit 0

snapshot=deny/advisory-db
# Where cargo-deny looks for the database of db-urls' one URL under deny.toml's db-path.
db=target/advisory-dbs/advisory-db-3157b0e258782691

# Lays the snapshot out as the git checkout cargo-deny expects, dated the day it was taken so
# deny.toml's maximum-db-staleness tells when it must be refreshed.
install_db() {
  local taken
  taken=$(cat "$snapshot/TAKEN")
  rm -rf "$db"
  mkdir -p "$db"
  cp -R "$snapshot/." "$db/"
  git -C "$db" init -q
  git -C "$db" add -A
  GIT_AUTHOR_DATE="$taken" GIT_COMMITTER_DATE="$taken" \
    git -C "$db" -c user.name=ovhform -c user.email=ci@ovhform.invalid commit -qm "snapshot $taken"
}

check() {
  "$deny" deny --offline --log-level error check "$@" licenses bans sources advisories
}

install_db
# cargo-deny runs offline (the advisory database is the vendored one): the crates it reads
# licences from must be in cargo's cache already.
cargo fetch --locked --quiet
check

if [[ "${1:-}" == "--self-test" ]]; then
  planted="$db/crates/hex/RUSTSEC-2099-0001.md"
  mkdir -p "$(dirname "$planted")"
  cat >"$planted" <<'ADVISORY'
```toml
[advisory]
id = "RUSTSEC-2099-0001"
package = "hex"
date = "2026-11-29"

[versions]
patched = [">= 99.0.0"]
```

# Planted by scripts/deny.sh --self-test

Every version of `hex` is "vulnerable": the check must fail.
ADVISORY
  git -C "$db" add -A
  git -C "$db" -c user.name=ovhform -c user.email=ci@ovhform.invalid commit -qm planted
  if check 2>/dev/null; then
    echo "deny.sh --self-test: an advisory planted against hex did not fail the check" >&2
    exit 1
  fi
  install_db
  echo "deny.sh --self-test: a planted advisory fails the check"
fi
