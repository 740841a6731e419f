//! Files tests make and use: the workspace's binaries, run as a user would, and secret files.

use std::path::PathBuf;
use std::process::Command;

/// `lanyard` or `lanyard-runner` from this test run's target directory, built first if this run
/// did not build it (as with `cargo test -p lanyard-server`, which builds only its own binaries).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    if !path.is_file() {
        let package = match name {
            "lanyard" => "lanyard-server",
            other => other,
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", package, "--bin", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// Writes a secret file as Lanyard and its runner require it: readable by its owner only (0600),
/// whatever the umask.
pub fn write_private(path: impl AsRef<std::path::Path>, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    let path = path.as_ref();
    std::fs::write(path, contents).expect("write the secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("make the secret file private");
}
