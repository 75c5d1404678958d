#!/usr/bin/env bash
# Runs a command (e.g. `cargo test`) where nothing beside the repository is visible, to prove the
# command reads no file outside it: in a private Linux mount namespace, the repository's parent
# directory is covered by an empty tmpfs in which only the repository is mounted back, at the same
# path. Inside, OVHFORM_ISOLATED=1 is exported (tests/it/isolation.rs checks the view).
#
#   bash scripts/isolated.sh cargo test --locked --all-targets
#
# - Root uses `unshare --mount`; other users `unshare --mount --map-root-user` (a user namespace).
#   The mounts are private to the namespace and vanish with its last process.
# - The toolchain must stay reachable: CARGO_HOME (~/.cargo), RUSTUP_HOME (~/.rustup) and
#   CARGO_TARGET_DIR, when they lie under the parent directory (outside the repository), are
#   mounted back at their own paths. Same paths, so cargo reuses what it built outside, and the
#   test knows exactly what else may be visible (OVHFORM_ISOLATED_KEEP, colon-separated).
# - Without namespaces (no unshare, or a container that forbids them), or when the parent is `/`,
#   it prints one line saying isolation could not be set up and runs the command as it is.
# - The working directory becomes the same directory inside the repository (the repository's
#   root when it was outside it): a working directory under the hidden tree would be an escape.
# - The exit code is the command's, isolated or not.
set -euo pipefail

notice() { echo "isolated.sh: $*" >&2; }

# Stage 2, inside the namespace: cover the parent, mount back what must stay, run the command.
if [[ "${OVHFORM_ISOLATE_STAGE:-}" == inner ]]; then
  unset OVHFORM_ISOLATE_STAGE
  # The repository (and kept paths) are bind-mounted to a side directory first: once the tmpfs
  # covers the parent, their original paths no longer lead to them.
  mount --bind "$ISO_REPO" "$ISO_SIDE/repo"
  i=0
  IFS=: read -r -a keep <<<"${ISO_KEEP:-}"
  for k in "${keep[@]}"; do
    [[ -n "$k" ]] || continue
    mkdir -p "$ISO_SIDE/keep$i"
    mount --bind "$k" "$ISO_SIDE/keep$i"
    i=$((i + 1))
  done
  mount -t tmpfs -o mode=0755 ovhform-isolated "$ISO_PARENT"
  mkdir -p "$ISO_REPO"
  mount --bind "$ISO_SIDE/repo" "$ISO_REPO"
  i=0
  for k in "${keep[@]}"; do
    [[ -n "$k" ]] || continue
    mkdir -p "$k"
    mount --bind "$ISO_SIDE/keep$i" "$k"
    i=$((i + 1))
  done
  cd "$ISO_CWD"
  export OVHFORM_ISOLATED=1 OVHFORM_ISOLATED_KEEP="${ISO_KEEP:-}"
  unset ISO_REPO ISO_PARENT ISO_SIDE ISO_KEEP ISO_CWD
  exec "$@"
fi

if [[ $# -eq 0 ]]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

run_plain() {
  notice "isolation could not be set up ($1); running without it: files outside the repository stay visible"
  shift
  exec "$@"
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
parent=$(dirname "$repo")
cwd=$(pwd -P)
case "$cwd/" in
  "$repo"/*) ;;
  *) cwd=$repo ;;
esac

if [[ "$parent" == / ]]; then
  run_plain "the repository's parent is /" "$@"
fi
if ! command -v unshare >/dev/null 2>&1; then
  run_plain "no unshare command" "$@"
fi

# Paths under the parent, outside the repository, that the command needs.
keep=""
for path in "${CARGO_HOME:-$HOME/.cargo}" "${RUSTUP_HOME:-$HOME/.rustup}" "${CARGO_TARGET_DIR:-}"; do
  [[ -n "$path" && -e "$path" ]] || continue
  path=$(cd "$path" && pwd -P)
  case "$path/" in
    "$repo"/*) continue ;;
    "$parent"/) run_plain "$path, which must stay reachable, is the parent itself" "$@" ;;
    "$parent"/*) ;;
    *) continue ;;
  esac
  if [[ "$path" == *:* ]]; then
    run_plain "$path contains ':'" "$@"
  fi
  keep="${keep:+$keep:}$path"
done

if [[ $(id -u) -eq 0 ]]; then
  ns=(unshare --mount --propagation private)
else
  ns=(unshare --mount --map-root-user --propagation private)
fi
if ! "${ns[@]}" true 2>/dev/null; then
  run_plain "mount namespaces are not available: $("${ns[@]}" true 2>&1 | head -n 1)" "$@"
fi

# A side directory for the bind mounts, somewhere that stays reachable once the parent is covered.
side=""
for tmp in "${TMPDIR:-/tmp}" /tmp /dev/shm; do
  [[ -d "$tmp" && -w "$tmp" ]] || continue
  tmp=$(cd "$tmp" && pwd -P)
  case "$tmp/" in "$parent"/*) continue ;; esac
  side=$(mktemp -d "$tmp/ovhform-isolated.XXXXXX") && break
done
if [[ -z "$side" ]]; then
  run_plain "no writable temporary directory outside $parent" "$@"
fi
mkdir "$side/repo"

set +e
OVHFORM_ISOLATE_STAGE=inner ISO_REPO="$repo" ISO_PARENT="$parent" ISO_SIDE="$side" \
  ISO_KEEP="$keep" ISO_CWD="$cwd" "${ns[@]}" -- bash "$repo/scripts/isolated.sh" "$@"
status=$?
set -e
# The mounts lived in the namespace only; outside, these are empty directories.
find "$side" -mindepth 1 -maxdepth 1 -type d -empty -delete 2>/dev/null || true
rmdir "$side" 2>/dev/null || true
exit "$status"
