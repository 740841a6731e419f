# syntax=docker/dockerfile:1
# The Lanyard server. Build from the repository's root:
#   docker build -f deploy/docker/lanyard.Dockerfile -t lanyard .
# The final image holds the one binary on distroless (glibc, CA certificates, no shell), runs as
# a non-root user, and checks its own /healthz with `lanyard healthcheck`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates ./crates
# Dev mode is opt-in (the `dev` feature); --no-default-features keeps it out even if that changes,
# and with it the fake GitHub's test-only keys.
RUN cargo build --release --locked -p lanyard-server --no-default-features --bin lanyard \
    && mkdir -p /out/data \
    && chmod 700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/lanyard /usr/local/bin/lanyard
# The embedded SQLite default keeps its data here; with Postgres it holds nothing.
COPY --from=build --chown=65532:65532 /out/data /var/lib/lanyard
# MALLOC_ARENA_MAX: glibc otherwise keeps an arena per thread and returns little of it; two keep
# the resident memory with 10,000 live sessions near 44 MB instead of 47 (scripts/bench.sh).
ENV LANYARD_LISTEN=0.0.0.0:8080 \
    LANYARD_DATA_DIR=/var/lib/lanyard \
    LANYARD_LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2
USER 65532:65532
EXPOSE 8080
VOLUME ["/var/lib/lanyard"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/lanyard", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/lanyard"]
CMD ["serve"]
