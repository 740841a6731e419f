//! Hardening: what a slow, greedy, repeated or racing client cannot do to the server. Each test
//! runs on SQLite, and on Postgres and Redis when `TEST_DATABASE_URL`/`TEST_REDIS_URL` are set.

mod chaos;
mod crash;
mod fairness;
mod races;
mod sockets;
