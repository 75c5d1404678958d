# syntax=docker/dockerfile:1
# ovhform in a container: a Rust builder stage, then a slim Debian runtime with only the binary
# and what it needs at run time. Build: `docker build -t ovhform .`
# Run:   `docker run --rm -v "$PWD:/work" -e OVH_ENDPOINT -e OVH_APPLICATION_KEY \
#           -e OVH_APPLICATION_SECRET -e OVH_CONSUMER_KEY ovhform plan`
# (/work is the working directory: manifests/ and the default state directory .ovhform/ live
# there; `--state` / OVHFORM_STATE point elsewhere.)

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
RUN useradd --system --user-group --uid 10001 --create-home --home-dir /home/ovhform \
        --shell /usr/sbin/nologin ovhform \
 && mkdir -p /work \
 && chown ovhform:ovhform /work
COPY --from=builder /out/ovhform /usr/local/bin/ovhform
# The example manifests, for `ovhform demo` and as a starting point.
COPY --from=builder /out/manifests /usr/share/ovhform/manifests
# Numeric, so that orchestrators can check runAsNonRoot.
USER 10001:10001
WORKDIR /work
# The daemon by default: manifests mounted read-only at /work/manifests, state on a volume at
# /work/.ovhform (or OVHFORM_STATE=postgres://…), HTTP on all interfaces of the container.
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=3s CMD ["ovhform", "--version"]
ENTRYPOINT ["ovhform"]
CMD ["run", "--manifests", "/work/manifests", "--listen", "0.0.0.0:9090"]
