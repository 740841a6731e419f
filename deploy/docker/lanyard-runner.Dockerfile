# syntax=docker/dockerfile:1
# lanyard-runner. Build from the repository's root:
#   docker build -f deploy/docker/lanyard-runner.Dockerfile -t lanyard-runner .
# The runner wraps an agent inside the agent's own image, so this image is mostly a carrier:
#   COPY --from=lanyard-runner /usr/local/bin/lanyard-runner /usr/local/bin/lanyard-runner
# It links no database driver and needs only glibc; git and gh come from the agent's image.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates ./crates
RUN cargo build --release --locked -p lanyard-runner --bin lanyard-runner

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/lanyard-runner /usr/local/bin/lanyard-runner
USER 65532:65532
# A wrapper has no port to probe: the agent it runs is what a platform watches.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/lanyard-runner"]
CMD ["--help"]
