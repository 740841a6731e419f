//! `lanyard-runner`: lives next to an agent and keeps its GitHub credentials fresh for days.
//!
//! [`engine`] refreshes each credential by [`policy`], [`ipc`] serves them on a private socket,
//! [`helper`] speaks git's credential protocol, and [`supervise`] runs the agent with git and `gh`
//! wired to the runner, forwarding signals and stopping it when the session ends.

pub mod client;
pub mod engine;
pub mod files;
pub mod helper;
pub mod ipc;
pub mod policy;
pub mod supervise;

/// Exit status when the runner could not start (bad token, unknown session, unreachable server).
pub const EXIT_START_FAILED: i32 = 3;
/// Exit status when the server ended the session (410) and the agent was stopped.
pub const EXIT_SESSION_ENDED: i32 = 4;
/// Exit status when the server refused the runner token after start (401: revoked, or the team
/// is gone) and the agent was stopped.
pub const EXIT_TOKEN_REFUSED: i32 = 5;
/// Exit status when the server no longer knows the session after start (404) and the agent was
/// stopped.
pub const EXIT_SESSION_GONE: i32 = 6;
