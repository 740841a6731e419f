//! `lanyard-runner`: lives next to an agent and keeps its GitHub credentials fresh for days.
//!
//! [`engine`] refreshes each credential by [`policy`], [`ipc`] serves them on a private socket,
//! [`helper`] speaks git's credential protocol, and [`supervise`] runs the agent with git and `gh`
//! wired to the runner, forwarding signals and stopping it when the session ends.

pub mod client;
pub mod engine;
pub mod helper;
pub mod ipc;
pub mod policy;
pub mod supervise;

/// Exit status when the runner could not start (bad token, unknown session, unreachable server).
pub const EXIT_START_FAILED: i32 = 3;
/// Exit status when the server ended the session and the agent was stopped.
pub const EXIT_SESSION_ENDED: i32 = 4;
