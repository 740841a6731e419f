//! The one rule for secret files, shared by the server and the runner: nobody but the owner may
//! read or write one. The single allowance is the shape Kubernetes gives a Secret mounted under a
//! pod's `fsGroup`: owned by root, mode 0440, group the one this (non-root) process runs as, a
//! group only the pod's own processes hold. Any other group-readable file is refused: a file of
//! this process's own user was shared by choice, and one of another user could be planted.

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
    group_read_only && owner.uid == 0 && me.is_some_and(|me| me.uid != 0 && owner.gid == me.gid)
}

/// This process's effective user and group, from `/proc/self/status` (read without unsafe code;
/// unlike the owner of `/proc/self`, right for a setgid or capability-raised binary too).
pub fn process_identity() -> Option<Identity> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The effective ids: the second field of the `Uid:` and `Gid:` lines.
fn parse_status(status: &str) -> Option<Identity> {
    let effective = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(Identity {
        uid: effective("Uid:")?,
        gid: effective("Gid:")?,
    })
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
    if is_private(mode, owner, process_identity()) {
        return None;
    }
    Some(format!(
        "{} holds a secret but its mode is {mode:04o}, readable or writable by others; run chmod 600 {} \
         (on Kubernetes: mount it with defaultMode 0400 and set the pod's fsGroup to the group Lanyard runs as)",
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
        let planted = Identity {
            uid: 1000,
            gid: 65532,
        };
        assert!(
            !is_private(0o440, planted, Some(ME)),
            "another user's file in our group"
        );
        let root = Identity { uid: 0, gid: 0 };
        assert!(
            !is_private(0o440, root, Some(root)),
            "root gets no group allowance"
        );
    }

    #[test]
    fn the_effective_ids_come_from_the_status_file() {
        let status = "Name:\tlanyard\nUid:\t1000\t65532\t65532\t65532\nGid:\t1000\t70\t70\t70\n";
        assert_eq!(
            parse_status(status),
            Some(Identity {
                uid: 65532,
                gid: 70
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
        assert!(
            process_identity().is_some(),
            "this machine has /proc/self/status"
        );
    }
}
