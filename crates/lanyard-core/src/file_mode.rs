//! The one rule for secret files, shared by the server and the runner: nobody but the owner may
//! read or write one. A group may read it (never write) when that group is the one this process
//! runs as: Kubernetes mounts a Secret root-owned with mode 0440 and the pod's `fsGroup`, a
//! group only the pod's own processes hold.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Whether a file with `mode` and group `file_gid` is private enough, for a process whose group
/// is `own_gid` (`None` when unknown: then only the owner may read).
pub fn is_private(mode: u32, file_gid: u32, own_gid: Option<u32>) -> bool {
    let mode = mode & 0o777;
    if mode & 0o007 != 0 || mode & 0o020 != 0 {
        return false;
    }
    mode & 0o040 == 0 || own_gid == Some(file_gid)
}

/// This process's group: the group of `/proc/self`, read without unsafe code.
fn own_gid() -> Option<u32> {
    std::fs::metadata("/proc/self").map(|m| m.gid()).ok()
}

/// `Some(reason)` when the secret file at `path` is open to others, saying how to fix it. A file
/// that cannot be inspected is left to the read that follows, which names the problem.
pub fn secret_file_problem(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    if is_private(mode, meta.gid(), own_gid()) {
        return None;
    }
    Some(format!(
        "{} holds a secret but its mode is {mode:04o}, readable or writable by others; run chmod 600 {}",
        path.display(),
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_or_this_processs_own_group_may_read() {
        assert!(is_private(0o600, 10, Some(20)));
        assert!(is_private(0o400, 10, None));
        // Kubernetes' Secret with fsGroup: readable by the group this process runs as.
        assert!(is_private(0o440, 20, Some(20)));
        assert!(!is_private(0o440, 10, Some(20)), "another group");
        assert!(!is_private(0o440, 20, None), "a group we cannot confirm");
        assert!(!is_private(0o460, 20, Some(20)), "a group that may write");
        assert!(!is_private(0o604, 20, Some(20)), "everyone may read");
        assert!(!is_private(0o644, 20, Some(20)));
        assert!(!is_private(0o602, 20, Some(20)));
    }
}
