//! The deployment files cannot rot: every Dockerfile names only files that exist and commands the
//! binaries have, and every Kubernetes manifest parses, sets only real settings, probes real
//! routes and mounts what its `_FILE` settings name. No Docker daemon or cluster runs here, so
//! this is what can be checked without one.
mod docker;
mod kubernetes;

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn binary(name: &str) -> PathBuf {
    lanyard_testkit::workspace_binary(name)
}

/// Whether `bin ARGS... --help` succeeds: clap refuses an unknown command or flag before it
/// prints help, so this proves the binary has them.
pub(crate) fn accepts(bin: &str, args: &[String]) -> bool {
    let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
    let out = Command::new(binary(name))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    out.status.success()
}
