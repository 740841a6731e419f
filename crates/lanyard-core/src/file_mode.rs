//! The one rule for secret files, shared by the server and the runner: nobody but the owner may
//! read or write one. The single allowance is the shape Kubernetes gives a Secret mounted under a
//! pod's `fsGroup`: owned by another user (root), mode 0440, group the one this process runs as,
//! a group only the pod's own processes hold. A file of this process's own user that its group
//! may read is refused: its owner chose to share it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Who this process is: its user and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

/// Whether a file with `mode`, owned by `owner`, is private enough for a process that is `me`
/// (`None` when unknown: then only the owner's bits may be set).
pub fn is_private(mode: u32, owner: Identity, me: Option<Identity>) -> bool {
    let mode = mode & 0o777;
    if mode & 0o077 == 0 {
        return true;
    }
    let group_read_only = mode & 0o037 == 0;
    group_read_only && me.is_some_and(|me| owner.uid != me.uid && owner.gid == me.gid)
}

/// This process's user and group: the owner of `/proc/self`, read without unsafe code.
fn me() -> Option<Identity> {
    std::fs::metadata("/proc/self")
        .map(|m| Identity {
            uid: m.uid(),
            gid: m.gid(),
        })
        .ok()
}

/// `Some(reason)` when the secret file at `path` is open to others, saying how to fix it. A file
/// that cannot be inspected is left to the read that follows, which names the problem.
pub fn secret_file_problem(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    let owner = Identity {
        uid: meta.uid(),
        gid: meta.gid(),
    };
    if is_private(mode, owner, me()) {
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

    const ME: Identity = Identity {
        uid: 65532,
        gid: 65532,
    };
    const ROOT_MY_GROUP: Identity = Identity { uid: 0, gid: 65532 };

    #[test]
    fn only_the_owner_or_kubernetes_fs_group_may_read() {
        assert!(is_private(0o600, ME, Some(ME)));
        assert!(is_private(0o400, ROOT_MY_GROUP, None));
        // A Kubernetes Secret under fsGroup: root's file, readable by the group we run as.
        assert!(is_private(0o440, ROOT_MY_GROUP, Some(ME)));
        assert!(
            !is_private(0o440, ROOT_MY_GROUP, None),
            "a group we cannot confirm"
        );
        let other_group = Identity { uid: 0, gid: 10 };
        assert!(!is_private(0o440, other_group, Some(ME)), "another group");
        assert!(
            !is_private(0o640, ME, Some(ME)),
            "our own file, shared with our group"
        );
        assert!(
            !is_private(0o460, ROOT_MY_GROUP, Some(ME)),
            "a group that may write"
        );
        assert!(
            !is_private(0o450, ROOT_MY_GROUP, Some(ME)),
            "a group that may run it"
        );
        assert!(
            !is_private(0o444, ROOT_MY_GROUP, Some(ME)),
            "everyone may read"
        );
        assert!(!is_private(0o602, ME, Some(ME)));
    }
}
