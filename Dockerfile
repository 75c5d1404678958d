# syntax=docker/dockerfile:1
# ovhform in a container: a Rust builder stage, then a slim Debian runtime with only the binary
# and what it needs at run time. Build: `docker build -t ovhform .`
# Daemon (the default command):
#   docker run -d -v "$PWD/manifests:/work/manifests:ro" -v ovhform-state:/var/lib/ovhform \
#     -p 127.0.0.1:9090:9090 -e OVH_ENDPOINT -e OVH_APPLICATION_KEY \
#     -e OVH_APPLICATION_SECRET -e OVH_CONSUMER_KEY ovhform
# One-shot, on the same state: `docker run --rm -v "$PWD/manifests:/work/manifests:ro"
#   -v ovhform-state:/var/lib/ovhform -e OVH_… ovhform plan`
# No Docker engine in CI: scripts/dockerfile-steps.sh performs these steps in order outside
# Docker and checks that they fit together (docs/operations.md "Container image").

# The toolchain CI tests with; Cargo.toml's rust-version is the minimum.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# .dockerignore keeps target/, .git and local state out of the context.
COPY . .
# Cache mounts keep the registry and build artifacts between builds; the binary is copied out
# of the cached target directory because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ovhform \
 && install -D -m 0755 target/release/ovhform /out/ovhform \
 && mkdir -p manifests \
 && cp -r manifests /out/manifests

FROM debian:${DEBIAN_RELEASE}-slim
# ca-certificates: TLS to the OVHcloud API verifies against the system roots.
# tzdata: maintenance windows name IANA time zones.
# git: the manifests' revision recorded with each install (optional; ovhform works without it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata git \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid and gid (numeric in USER below, so that orchestrators can check runAsNonRoot;
# Kubernetes runAsUser/fsGroup 10001). /work/manifests belongs to root: the daemon only reads
# the manifests mounted there. The state directory belongs to the user, mode 0700.
RUN groupadd --system --gid 10001 ovhform \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/ovhform \
        --shell /usr/sbin/nologin ovhform \
 && install -d -m 0755 -o 10001 -g 10001 /work \
 && install -d -m 0755 -o root -g root /work/manifests \
 && install -d -m 0700 -o 10001 -g 10001 /var/lib/ovhform
COPY --from=builder /out/ovhform /usr/local/bin/ovhform
# The example manifests, for `ovhform demo` and as a starting point.
COPY --from=builder /out/manifests /usr/share/ovhform/manifests
# The state (records, intent journal, facts cache) outlives the container on a volume, outside
# /work so that bind-mounting a checkout at /work never hides it behind a nested anonymous
# volume. A fresh named volume starts as the image's directory: owned by 10001, mode 0700.
# OVHFORM_STATE=postgres://… (or --state) replaces it.
ENV OVHFORM_STATE=/var/lib/ovhform
VOLUME ["/var/lib/ovhform"]
USER 10001:10001
WORKDIR /work
EXPOSE 9090
# `ovhform healthcheck` GETs http://127.0.0.1:9090/healthz (the listener below, seen from inside
# the container) and gives up after 3 s, within Docker's 5 s, so the health log says why.
# With another --listen port, set OVHFORM_HEALTHCHECK_URL as well.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["ovhform", "healthcheck"]
ENTRYPOINT ["ovhform"]
CMD ["run", "--manifests", "/work/manifests", "--listen", "0.0.0.0:9090"]
