#!/usr/bin/env bash
# The Dockerfile's steps performed in order WITHOUT Docker (CI has no engine), so that the image
# recipe cannot rot unnoticed:
#
#   bash scripts/dockerfile-steps.sh [--profile release|dev] [--keep] [--self-test]
#
# 1. Reads the Dockerfile instruction by instruction (continuation lines joined, comments
#    dropped) and performs each one into a root per stage (the builder's under
#    target/dockerfile-steps/, the runtime's a temporary directory): COPY of the build context
#    honouring .dockerignore; the builder's RUN executed as written, its cache mount of
#    /src/target backed by this repository's target directory (so CI reuses what it built) and
#    its absolute paths (/out) moved under the stage's root; the runtime's RUN steps mirrored
#    (groupadd/useradd/install -d: directories, modes, owners) — a step this script does not
#    know fails it, so a new Dockerfile step must be taught here; COPY --from; ENV, VOLUME, USER,
#    WORKDIR, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD recorded.
#    `--profile dev` runs the build command with `--release` replaced by the dev profile (and
#    target/release/ by target/debug/), each replacement checked to happen exactly once, and
#    `--example dump_desired` added so that the dependencies' features are the tests': CI
#    reuses every dependency its tests compiled (only the copied crate itself is built) instead
#    of a release build of the whole tree (about 10 min measured on 2 shared cores). The
#    default, `release`, runs the command exactly as written.
# 2. Checks that the steps fit together: USER numeric, not root, the user and group the RUN
#    step created; the state VOLUME is where OVHFORM_STATE points, created 0700 for that user;
#    /work/manifests (CMD's --manifests) belongs to root; ENTRYPOINT is the copied binary on
#    PATH; CMD runs the daemon on the EXPOSEd port; HEALTHCHECK runs `ovhform healthcheck` whose
#    URL (its default, from the binary's own --help) is that port's /healthz on 127.0.0.1,
#    within Docker's --timeout; the binary needs no shared library the slim base lacks.
# 3. Runs the image's default command with the produced binary — as uid 10001 via setpriv when
#    run as root, the manifests read-only — against `ovhform sim` on 127.0.0.1 (--listen moved
#    from 0.0.0.0:9090 to 127.0.0.1 and a free port): the HEALTHCHECK command passes, /readyz
#    turns ready, the state lands in the volume, SIGTERM stops it with exit 0, and afterwards
#    the HEALTHCHECK command fails.
# 4. Lints the Dockerfile with hadolint when it is installed (it is not packaged in Debian).
#
# 5. `--self-test`: then runs itself on broken copies of the Dockerfile (the old `--version`
#    health check, another USER, a port mismatch, the state volume gone, a step it does not
#    know, a daemon that cannot start) and fails unless each one fails with its reason: the
#    checks above can fail.
#
# scripts/test.sh runs it with `--profile dev --self-test`. DOCKERFILE names another file.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

profile=release
keep=0
self_test=0
dockerfile="${DOCKERFILE:-Dockerfile}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) profile="${2:?--profile needs release or dev}"; shift 2 ;;
    --keep) keep=1; shift ;;
    --self-test) self_test=1; shift ;;
    *) echo "usage: $0 [--profile release|dev] [--keep] [--self-test]" >&2; exit 2 ;;
  esac
done
[[ "$profile" == release || "$profile" == dev ]] || { echo "--profile: release or dev" >&2; exit 2; }

fail() { echo "dockerfile-steps: FAIL: $*" >&2; exit 1; }
say() { echo "dockerfile-steps [${SECONDS}s]: $*" >&2; }

root="$(mktemp -d "${TMPDIR:-/tmp}/ovhform-dockerfile.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ $keep == 1 ]]; then say "kept $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT
# uid 10001 must be able to reach the runtime root.
chmod 0755 "$root"

# --- 1. Parse: one logical instruction per line. ---------------------------------------------
mapfile -t instructions < <(awk '
  /^[ \t]*#/ { next }                       # comments (also between continuation lines)
  { line = cont ? cont " " $0 : $0 }
  /\\[ \t]*$/ { sub(/\\[ \t]*$/, "", line); cont = line; next }
  { cont = ""; gsub(/^[ \t]+|[ \t]+$/, "", line); gsub(/[ \t]+/, " ", line); if (line != "") print line }
' "$dockerfile")
[[ ${#instructions[@]} -gt 10 ]] || fail "$dockerfile parsed into ${#instructions[@]} instructions"

# A JSON array (exec form) as one element per line; fails on shell form.
json_array() {
  python3 -c 'import json,sys
v=json.loads(sys.argv[1])
assert isinstance(v,list) and all(isinstance(x,str) for x in v)
print("\n".join(v))' "$1" 2>/dev/null || fail "not an exec-form JSON array: $1"
}

declare -A args=() envs=() owners=() modes=() stage_of=()
stage=""
stage_root=""
workdir="/"
stages=()
volumes=()
user="" expose="" entrypoint=() cmd=() health_opts="" health_cmd=()
group_gid="" group_name="" user_uid="" user_gid="" user_name="" user_home=""
apt_packages=""

# An absolute image path, inside the current stage's root.
in_stage() { printf '%s%s' "$stage_root" "$1"; }

# Copies the build context (the repository, minus .dockerignore's patterns) to $1.
copy_context() {
  local dest="$1" excludes=() p
  while IFS= read -r p; do
    p="${p%%#*}"; p="${p%"${p##*[![:space:]]}"}"; p="${p%/}"
    [[ -n "$p" ]] || continue
    if [[ "$p" == '**/'* ]]; then
      excludes+=(--no-anchored "--exclude=${p#'**/'}")
    else
      excludes+=(--anchored "--exclude=./$p")
    fi
  done < .dockerignore
  mkdir -p "$dest"
  tar -C "$repo" "${excludes[@]}" -cf - . | tar -C "$dest" -xf -
  [[ ! -e "$dest/target" && ! -e "$dest/.git" ]] || fail ".dockerignore let target/ or .git/ into the context"
  local size
  size=$(du -sm "$dest" | cut -f1)
  [[ $size -lt 200 ]] || fail "the build context is ${size} MB: .dockerignore misses something"
  say "context: ${size} MB copied"
}

# The builder's RUN: cache mounts mapped, absolute paths moved under the stage root, then run.
run_builder() {
  local text="$1" mount command
  command="$text"
  while [[ "$command" == --mount=* ]]; do
    mount="${command%% *}"; command="${command#* }"
    case "$mount" in
      --mount=type=cache,target=/usr/local/cargo/registry) ;; # cargo's own registry cache here
      --mount=type=cache,target="$workdir"/target)
        # The cache mount is a persistent target directory: this repository's.
        ln -sfn "${CARGO_TARGET_DIR:-$repo/target}" "$(in_stage "$workdir")/target" ;;
      *) fail "unknown mount in RUN: $mount" ;;
    esac
  done
  if [[ "$profile" == dev ]]; then
    local before="$command"
    [[ $(grep -o -- ' --release ' <<<" $command " | wc -l) == 1 ]] \
      || fail "the build command no longer has exactly one --release: teach this script"
    [[ $(grep -o 'target/release/' <<<"$command" | wc -l) == 1 ]] \
      || fail "the build command no longer copies exactly one target/release/ path: teach this script"
    # `--example dump_desired` (20 lines) makes cargo resolve the dependencies' features as for
    # the tests, dev-dependencies included, so it reuses their build of every dependency; the
    # plain dev build differs in a few features (tokio's test-util, regex's unicode tables…)
    # and rebuilt 34 crates and all that depend on them (measured: 134 s of a 1,101-s CI run).
    command="${command/ --release / --example dump_desired }"
    command="${command/target\/release\//target/debug/}"
    say "dev profile: '$before' run as '$command'"
  fi
  # Every absolute path in a build step is the stage's file system.
  command="$(sed -E "s#(^| )/#\1$stage_root/#g" <<<"$command")"
  (cd "$(in_stage "$workdir")" && env -u CARGO_TARGET_DIR bash -euo pipefail -c "$command") \
    || fail "builder RUN failed: $text"
}

# The runtime's RUN: each `&&` part must be a step this script knows how to mirror.
run_runtime() {
  local text="$1" part
  if [[ "$text" == "apt-get update && apt-get install -y --no-install-recommends "*" && rm -rf /var/lib/apt/lists/*" ]]; then
    apt_packages="${text#*--no-install-recommends }"
    apt_packages="${apt_packages%% && rm*}"
    say "runtime packages (not installed here): $apt_packages"
    return
  fi
  local parts=()
  mapfile -t parts < <(sed 's/ && /\n/g' <<<"$text")
  for part in "${parts[@]}"; do
    local w=()
    read -r -a w <<<"$part"
    case "${w[0]}" in
      groupadd)
        [[ "${w[1]}" == --system && "${w[2]}" == --gid && ${#w[@]} == 5 ]] || fail "unknown groupadd form: $part"
        group_gid="${w[3]}"; group_name="${w[4]}" ;;
      useradd)
        [[ "$part" =~ ^useradd\ --system\ --uid\ ([0-9]+)\ --gid\ ([0-9]+)\ --create-home\ --home-dir\ ([^ ]+)\ --shell\ /usr/sbin/nologin\ ([a-z]+)$ ]] \
          || fail "unknown useradd form: $part"
        user_uid="${BASH_REMATCH[1]}"; user_gid="${BASH_REMATCH[2]}"
        user_home="${BASH_REMATCH[3]}"; user_name="${BASH_REMATCH[4]}"
        mkdir -p "$(in_stage "$user_home")"
        owners["$user_home"]="$user_uid:$user_gid"; modes["$user_home"]=0755 ;;
      install)
        [[ "$part" =~ ^install\ -d\ -m\ ([0-7]+)\ -o\ ([a-z0-9]+)\ -g\ ([a-z0-9]+)\ (/[^ ]*)$ ]] \
          || fail "unknown install form: $part"
        local mode="${BASH_REMATCH[1]}" o="${BASH_REMATCH[2]}" g="${BASH_REMATCH[3]}" dir="${BASH_REMATCH[4]}"
        [[ "$o" == root ]] && o=0
        [[ "$g" == root ]] && g=0
        mkdir -p "$(in_stage "$dir")"
        chmod "$mode" "$(in_stage "$dir")"
        owners["$dir"]="$o:$g"; modes["$dir"]="$mode" ;;
      *) fail "the runtime RUN step '$part' is not mirrored by scripts/dockerfile-steps.sh: teach it" ;;
    esac
  done
}

for line in "${instructions[@]}"; do
  op="${line%% *}"; rest="${line#* }"
  # ${NAME} from ARG defaults.
  for a in "${!args[@]}"; do rest="${rest//\$\{$a\}/${args[$a]}}"; done
  case "$op" in
    ARG) args["${rest%%=*}"]="${rest#*=}" ;;
    FROM)
      stage="${rest##* AS }"; [[ "$rest" == *" AS "* ]] || stage="stage${#stages[@]}"
      if [[ ${#stages[@]} == 0 ]]; then
        # The builder at a fixed path under target/ (the copy keeps file times): a second run
        # finds cargo's build of the copied sources fresh instead of rebuilding it.
        stage_root="${CARGO_TARGET_DIR:-$repo/target}/dockerfile-steps/$stage"
        rm -rf "$stage_root"
      else
        stage_root="$root/$stage"
      fi
      stages+=("$stage"); stage_of["$stage"]="$stage_root"
      workdir="/"; mkdir -p "$stage_root"
      say "FROM ${rest%% AS *} ($stage)" ;;
    WORKDIR) workdir="$rest"; mkdir -p "$(in_stage "$workdir")" ;;
    COPY)
      if [[ "$rest" == ". ." ]]; then
        copy_context "$(in_stage "$workdir")"
      elif [[ "$rest" =~ ^--from=([a-z]+)\ (/[^ ]+)\ (/[^ ]+)$ ]]; then
        from="${stage_of[${BASH_REMATCH[1]}]:-}"
        [[ -n "$from" ]] || fail "COPY from an unknown stage: $rest"
        src="$from${BASH_REMATCH[2]}"; dst="$(in_stage "${BASH_REMATCH[3]}")"
        [[ -e "$src" ]] || fail "COPY source missing in stage ${BASH_REMATCH[1]}: ${BASH_REMATCH[2]}"
        mkdir -p "$(dirname "$dst")"; cp -a "$src" "$dst"
      else
        fail "unknown COPY form: $rest"
      fi ;;
    RUN)
      if [[ "$stage" == "${stages[0]}" ]]; then run_builder "$rest"; else run_runtime "$rest"; fi ;;
    ENV) envs["${rest%%=*}"]="${rest#*=}" ;;
    VOLUME) list="$(json_array "$rest")" || exit 1; mapfile -t volumes <<<"$list" ;;
    USER) user="$rest" ;;
    EXPOSE) expose="$rest" ;;
    HEALTHCHECK)
      health_opts="${rest%% CMD *}"
      list="$(json_array "${rest#* CMD }")" || exit 1; mapfile -t health_cmd <<<"$list" ;;
    ENTRYPOINT) list="$(json_array "$rest")" || exit 1; mapfile -t entrypoint <<<"$list" ;;
    CMD) list="$(json_array "$rest")" || exit 1; mapfile -t cmd <<<"$list" ;;
    *) fail "instruction $op is not handled by scripts/dockerfile-steps.sh: teach it" ;;
  esac
done
[[ ${#stages[@]} == 2 ]] || fail "expected a builder and a runtime stage, got: ${stages[*]}"
rt="$stage_root"   # the runtime stage, the image

# --- 2. Coherence. ---------------------------------------------------------------------------
[[ "$user" =~ ^([0-9]+):([0-9]+)$ ]] || fail "USER must be numeric uid:gid (runAsNonRoot): $user"
uid="${BASH_REMATCH[1]}"; gid="${BASH_REMATCH[2]}"
[[ "$uid" != 0 && "$gid" != 0 ]] || fail "USER is root"
[[ "$uid" == "$user_uid" && "$gid" == "$user_gid" && "$gid" == "$group_gid" ]] \
  || fail "USER $user is not the user ($user_uid:$user_gid) and group ($group_gid) the RUN step created"
[[ "$group_name" == "$user_name" ]] || fail "the group ($group_name) is not the user's own ($user_name)"

[[ ${#volumes[@]} -ge 1 ]] || fail "no VOLUME for the state"
state="${envs[OVHFORM_STATE]:-}"
[[ " ${volumes[*]} " == *" $state "* ]] || fail "OVHFORM_STATE ($state) is not a VOLUME (${volumes[*]})"
for v in "${volumes[@]}"; do
  [[ "${owners[$v]:-}" == "$uid:$gid" && "${modes[$v]:-}" == 0700 ]] \
    || fail "VOLUME $v must be created 0700 for $uid:$gid (is ${owners[$v]:-absent} ${modes[$v]:-})"
done
[[ "${owners[$workdir]:-}" == "$uid:$gid" ]] || fail "WORKDIR $workdir is not the user's"

[[ ${#entrypoint[@]} == 1 ]] || fail "ENTRYPOINT must be the one binary: ${entrypoint[*]}"
bin="$rt/usr/local/bin/${entrypoint[0]}"
[[ -x "$bin" && ! -d "$bin" ]] || fail "ENTRYPOINT ${entrypoint[0]} is not an executable on PATH (/usr/local/bin)"
[[ -f "$rt/usr/share/ovhform/manifests/servers/web.yaml" ]] || fail "the example manifests were not copied"

[[ "${cmd[0]:-}" == run ]] || fail "CMD must run the daemon: ${cmd[*]}"
manifests="" listen=""
for ((i = 1; i < ${#cmd[@]}; i++)); do
  case "${cmd[$i]}" in
    --manifests) manifests="${cmd[$((i + 1))]}" ;;
    --listen) listen="${cmd[$((i + 1))]}" ;;
  esac
done
[[ -n "$manifests" && "${owners[$manifests]:-}" == 0:0 ]] \
  || fail "CMD's --manifests ($manifests) must be a directory the image creates owned by root"
port="${listen##*:}"
[[ "$expose" == "$port" ]] || fail "EXPOSE $expose but CMD listens on $listen"

[[ "${health_cmd[0]:-}" == "${entrypoint[0]}" && "${health_cmd[1]:-}" == healthcheck ]] \
  || fail "HEALTHCHECK must run '${entrypoint[0]} healthcheck': ${health_cmd[*]}"
# The probe's defaults, from the binary itself (help lines joined: wrapping depends on width).
help="$("$bin" healthcheck --help | tr -s ' \n' '  ')"
health_url="$(sed -nE 's/.*--url <URL> [^[]*(\[[^]]*\] )*\[default: (http:[^]]+)\].*/\2/p' <<<"$help")"
probe_timeout="$(sed -nE 's/.*--timeout <DURATION> [^[]*\[default: ([0-9]+)s\].*/\1/p' <<<"$help")"
[[ -n "$health_url" && -n "$probe_timeout" ]] || fail "cannot read the probe's defaults from: $help"
for ((i = 2; i < ${#health_cmd[@]}; i++)); do
  [[ "${health_cmd[$i]}" == --url ]] && health_url="${health_cmd[$((i + 1))]}"
done
[[ -z "${envs[OVHFORM_HEALTHCHECK_URL]:-}" ]] || health_url="${envs[OVHFORM_HEALTHCHECK_URL]}"
[[ "$health_url" == "http://127.0.0.1:$port/healthz" ]] \
  || fail "the health check probes $health_url, the daemon listens on $listen"
[[ "$health_opts" =~ --timeout=([0-9]+)s ]] || fail "HEALTHCHECK has no --timeout"
[[ -n "$probe_timeout" && "${BASH_REMATCH[1]}" -gt "$probe_timeout" ]] \
  || fail "HEALTHCHECK --timeout=${BASH_REMATCH[1]}s must exceed the probe's own ${probe_timeout:-?}s"

# The slim base has libc and libgcc, nothing more (TLS is rustls, compiled in).
needed="$(readelf -d "$bin" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p')"
for lib in $needed; do
  case "$lib" in
    libc.so.*|libm.so.*|libgcc_s.so.*|ld-linux*|libpthread.so.*|libdl.so.*|librt.so.*) ;;
    *) fail "the binary needs $lib, which debian-slim does not have (packages: $apt_packages)" ;;
  esac
done
say "coherent: USER $user, VOLUME ${volumes[*]}, CMD ${cmd[*]}, HEALTHCHECK ${health_cmd[*]} -> $health_url; libraries: $(echo $needed)"

# --- 3. Run the image's default command against the simulator. ------------------------------
run_as=()
if [[ $(id -u) == 0 ]]; then
  for d in "${!owners[@]}"; do chown "${owners[$d]}" "$rt$d"; done
  run_as=(setpriv --reuid "$uid" --regid "$gid" --clear-groups --)
  say "running as uid $uid (setpriv)"
else
  say "not root: running as $(id -u), ownership checked on paper only"
fi
# The manifests mounted read-only: the shipped examples, not writable by the daemon's user.
cp -R "$rt/usr/share/ovhform/manifests/." "$rt$manifests/"
chmod -R a-w "$rt$manifests"
before="$(cd "$rt$manifests" && find . -type f -exec sha256sum {} + | sort)"

# The simulator's clock 1000 times faster, and the daemon told so (the documented test hooks,
# as `docker run -e` would pass them): a reinstall the first pass starts ends in about a second.
"$bin" sim --fleet demo/fleet.yaml --speed 1000 --listen 127.0.0.1:0 --env-file "$root/sim.env" \
  >"$root/sim.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$root/sim.env" ]] && break; sleep 0.1; done
[[ -s "$root/sim.env" ]] || fail "the simulator did not start: $(cat "$root/sim.out")"
sim_env=()
while IFS= read -r l; do
  [[ "$l" =~ ^export\ ([A-Z_]+)=\'(.*)\'$ ]] && sim_env+=("${BASH_REMATCH[1]}=${BASH_REMATCH[2]}")
done <"$root/sim.env"
[[ ${#sim_env[@]} -ge 4 ]] || fail "no credentials in sim.env"
sim_env+=(OVHFORM_TIME_SCALE=1000 OVHFORM_POLL_MS=50)

image_env=(PATH="$rt/usr/local/bin:/usr/bin:/bin" HOME="$rt$user_home")
for k in "${!envs[@]}"; do
  v="${envs[$k]}"; [[ "$v" == /* ]] && v="$rt$v"
  image_env+=("$k=$v")
done
daemon_args=()
for a in "${cmd[@]}"; do
  case "$a" in
    "$listen") daemon_args+=(127.0.0.1:0) ;;     # 0.0.0.0:9090 in the image; loopback here
    /*) daemon_args+=("$rt$a") ;;
    *) daemon_args+=("$a") ;;
  esac
done
(cd "$rt$workdir" && exec env -i "${image_env[@]}" "${sim_env[@]}" "${run_as[@]}" \
  "${entrypoint[0]}" "${daemon_args[@]}") >"$root/daemon.out" 2>"$root/daemon.err" &
daemon=$!
pids+=("$daemon")
addr=""
for _ in $(seq 300); do
  addr="$(sed -nE 's#^ovhform run: .* (http://127\.0\.0\.1:[0-9]+) \(/healthz.*#\1#p' "$root/daemon.err" | head -1)"
  [[ -n "$addr" ]] && break
  kill -0 "$daemon" 2>/dev/null || fail "the daemon exited: $(cat "$root/daemon.err")"
  sleep 0.1
done
[[ -n "$addr" ]] || fail "the daemon announced no address: $(cat "$root/daemon.err")"

health() { # the HEALTHCHECK's command, in the container's environment, on the real port
  (cd "$rt$workdir" && env -i "${image_env[@]}" OVHFORM_HEALTHCHECK_URL="$addr${1:-/healthz}" \
    "${run_as[@]}" "${health_cmd[@]}")
}
health >"$root/health.out" 2>&1 || fail "HEALTHCHECK failed on a running daemon: $(cat "$root/health.out")"
say "HEALTHCHECK: $(cat "$root/health.out")"
ready=0
for _ in $(seq 120); do
  if health /readyz >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
[[ $ready == 1 ]] || fail "/readyz never answered 200: $(tail -5 "$root/daemon.err")"
[[ -n "$(ls -A "$rt$state")" ]] || fail "nothing was written to the state volume $state"
[[ "$(cd "$rt$manifests" && find . -type f -exec sha256sum {} + | sort)" == "$before" ]] \
  || fail "the manifests changed"
say "ready; state volume holds: $(cd "$rt$state" && ls -A | tr '\n' ' ')"
if [[ ${#run_as[@]} -gt 0 ]]; then
  owner="$(stat -c %u:%g "$rt$state"/*  | sort -u | tr '\n' ' ')"
  [[ "$owner" == "$uid:$gid " ]] || fail "state files owned by $owner, not $uid:$gid"
fi

kill -TERM "$daemon"
stopped=""
for _ in $(seq 120); do
  if ! kill -0 "$daemon" 2>/dev/null; then stopped=1; break; fi
  sleep 0.1
done
[[ -n "$stopped" ]] || fail "the daemon did not stop within 12 s of SIGTERM"
wait "$daemon" && rc=0 || rc=$?
[[ $rc == 0 ]] || fail "the daemon exited $rc on SIGTERM: $(tail -5 "$root/daemon.err")"
if health >"$root/health.out" 2>&1; then fail "HEALTHCHECK passed with no daemon running"; fi
say "stopped with exit 0; HEALTHCHECK now: $(cat "$root/health.out")"

# --- 4. Lint. --------------------------------------------------------------------------------
if command -v hadolint >/dev/null 2>&1; then
  hadolint "$dockerfile"
  say "hadolint: clean"
else
  say "hadolint is not installed (not packaged in Debian): coherence checks only"
fi
say "OK (profile $profile)"

# --- 5. Self-test: broken Dockerfiles must fail, each for its own reason. --------------------
if [[ $self_test == 1 ]]; then
  mutants=(
    's#CMD \["ovhform", "healthcheck"\]#CMD ["ovhform", "--version"]#|HEALTHCHECK must run'
    's#^USER 10001:10001#USER 10002:10002#|is not the user'
    's#^USER 10001:10001#USER ovhform#|USER must be numeric'
    's#^EXPOSE 9090#EXPOSE 8080#|EXPOSE 8080 but CMD listens'
    's#"0\.0\.0\.0:9090"#"0.0.0.0:9191"#; s#^EXPOSE 9090#EXPOSE 9191#|the health check probes http://127.0.0.1:9090/healthz'
    's#^VOLUME .*#VOLUME ["/data"]#|is not a VOLUME'
    's#-d -m 0700 -o 10001 -g 10001 /var/lib/ovhform#-d -m 0700 -o root -g root /var/lib/ovhform#|must be created 0700 for 10001:10001'
    's#-d -m 0755 -o root -g root /work/manifests#-d -m 0755 -o 10001 -g 10001 /work/manifests#|owned by root'
    's#--timeout=5s#--timeout=3s#|must exceed the probe'
    's#^USER 10001#RUN chmod 0777 /work\nUSER 10001#|is not mirrored'
    's#"0\.0\.0\.0:9090"\]#"0.0.0.0:9090", "--no-such-flag"]#|the daemon exited'
  )
  for m in "${mutants[@]}"; do
    expr="${m%|*}" want="${m##*|}"
    sed -E "$expr" "$dockerfile" >"$root/Dockerfile.mutant"
    ! cmp -s "$root/Dockerfile.mutant" "$dockerfile" || fail "self-test: '$expr' changed nothing"
    if DOCKERFILE="$root/Dockerfile.mutant" bash "$0" --profile "$profile" >"$root/mutant.out" 2>&1; then
      fail "self-test: the Dockerfile with '$expr' passed"
    fi
    grep -qF -- "$want" "$root/mutant.out" \
      || fail "self-test: '$expr' failed for another reason than '$want': $(grep FAIL "$root/mutant.out")"
    say "self-test: '$expr' fails: $(grep -o 'FAIL: .*' "$root/mutant.out" | cut -c1-100)"
  done
  say "self-test: ${#mutants[@]} broken Dockerfiles all refused"
fi
