//! `LANYARD_CREDENTIALS_DIR` (CONTRACT §14): a 0700 directory holding, for each grant of the
//! session, `NAME.json` (the credential response) and, for an OAuth2 grant, `NAME.token` (the
//! access token alone). Files are 0600 and replaced atomically, written beside and renamed over,
//! so a reader always opens a whole file; a revoked grant's files are removed.
//!
//! Names are the configured providers' (`[a-z0-9_-]`, 1 to 32), checked again here so no name
//! can reach outside the directory. The directory must be this process's own: not a symlink,
//! owned by its user, open to nobody else. A file is staged under a random name created afresh
//! (never through a symlink or over another file), so nothing placed in the directory
//! beforehand can catch a token.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

/// The credentials directory of one runner.
#[derive(Debug, Clone)]
pub struct CredentialFiles {
    dir: PathBuf,
}

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{0:?} is not a provider name (1 to 32 of a-z, 0-9, _ and -)")]
    Name(String),
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("{0}: {1}")]
    Unsafe(PathBuf, &'static str),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> FilesError + '_ {
    move |error| FilesError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn checked(name: &str) -> Result<&str, FilesError> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    ok.then_some(name)
        .ok_or_else(|| FilesError::Name(name.chars().take(40).collect()))
}

impl CredentialFiles {
    /// Creates `dir` (its parents as needed) with mode 0700, or takes it if it already is this
    /// process's own: a directory, not a symlink, owned by its user, with no group or other
    /// bits. Staging files a crash left behind are removed.
    pub fn create(dir: &Path) -> Result<Self, FilesError> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        match DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_error(dir)(e)),
            _ => {}
        }
        let meta = fs::symlink_metadata(dir).map_err(io_error(dir))?;
        let unsafe_dir = |why| Err(FilesError::Unsafe(dir.to_path_buf(), why));
        if !meta.file_type().is_dir() {
            return unsafe_dir("not a directory (a symlink is refused)");
        }
        let me = lanyard_core::file_mode::process_identity().map(|i| i.uid);
        if me.is_some_and(|uid| uid != meta.uid()) {
            return unsafe_dir("owned by another user");
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return unsafe_dir("open to other users (it must be 0700)");
        }
        for entry in fs::read_dir(dir).map_err(io_error(dir))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a grant's `NAME.json`, and `NAME.token` when `token` is given (an OAuth2 grant).
    /// The token file goes first, so a reader of the JSON never finds an older token beside it.
    pub fn write(&self, name: &str, json: &[u8], token: Option<&str>) -> Result<(), FilesError> {
        let name = checked(name)?;
        if let Some(token) = token {
            self.replace(&format!("{name}.token"), token.as_bytes())?;
        }
        self.replace(&format!("{name}.json"), json)
    }

    /// Removes a grant's files (revoked, or no longer granted). Files already gone are fine.
    pub fn remove(&self, name: &str) -> Result<(), FilesError> {
        let name = checked(name)?;
        for file in [format!("{name}.json"), format!("{name}.token")] {
            let path = self.dir.join(file);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(&path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes `file` beside its final name, under a random staging name created afresh
    /// (`O_EXCL`: never through a symlink, never over another file) with mode 0600, then
    /// renames it over.
    fn replace(&self, file: &str, contents: &[u8]) -> Result<(), FilesError> {
        let path = self.dir.join(file);
        let mut suffix = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut suffix);
        let staging = self
            .dir
            .join(format!(".{file}.{}.tmp", u64::from_le_bytes(suffix)));
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staging)
            .map_err(io_error(&staging))?;
        let written = (|| {
            let mut f = opened;
            f.write_all(contents)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&staging);
            return Err(io_error(&staging)(e));
        }
        fs::rename(&staging, &path).map_err(io_error(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn files_are_private_whole_and_removed_with_their_grant() {
        let root = tempfile::TempDir::new().unwrap();
        let dir = root.path().join("creds");
        let files = CredentialFiles::create(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        files
            .write("google", br#"{"access_token":"a1"}"#, Some("a1"))
            .unwrap();
        files.write("jira", br#"{"fields":{}}"#, None).unwrap();
        assert_eq!(fs::read_to_string(dir.join("google.token")).unwrap(), "a1");
        assert_eq!(mode(&dir.join("google.json")), 0o600);
        assert_eq!(mode(&dir.join("google.token")), 0o600);
        // A refresh replaces the file: a reader holding the old one still reads it whole.
        let held = fs::File::open(dir.join("google.token")).unwrap();
        files
            .write("google", br#"{"access_token":"a2"}"#, Some("a2"))
            .unwrap();
        assert_eq!(io::read_to_string(held).unwrap(), "a1");
        assert_eq!(fs::read_to_string(dir.join("google.token")).unwrap(), "a2");
        files.remove("google").unwrap();
        files.remove("google").unwrap();
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["jira.json"], "no staging file is left behind");
    }

    #[test]
    fn a_directory_that_is_not_this_processs_own_is_refused() {
        let root = tempfile::TempDir::new().unwrap();
        let open = root.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            CredentialFiles::create(&open),
            Err(FilesError::Unsafe(..))
        ));
        let link = root.path().join("link");
        let target = root.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            CredentialFiles::create(&link),
            Err(FilesError::Unsafe(..))
        ));
        // A crash's staging file is cleared; a symlink planted as a final name is replaced,
        // never written through.
        fs::write(target.join(".google.json.7.tmp"), "old token").unwrap();
        let elsewhere = root.path().join("elsewhere");
        fs::write(&elsewhere, "untouched").unwrap();
        std::os::unix::fs::symlink(&elsewhere, target.join("google.json")).unwrap();
        let files = CredentialFiles::create(&target).unwrap();
        assert!(!target.join(".google.json.7.tmp").exists());
        files.write("google", b"{}", None).unwrap();
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "untouched");
        assert!(!fs::symlink_metadata(target.join("google.json"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_name_cannot_reach_outside_the_directory() {
        let root = tempfile::TempDir::new().unwrap();
        let files = CredentialFiles::create(&root.path().join("creds")).unwrap();
        for bad in ["../escape", "a/b", "", ".hidden", "UPPER", &"x".repeat(33)] {
            assert!(
                matches!(files.write(bad, b"{}", None), Err(FilesError::Name(_))),
                "{bad}"
            );
            assert!(
                matches!(files.remove(bad), Err(FilesError::Name(_))),
                "{bad}"
            );
        }
        assert!(!root.path().join("escape.json").exists());
    }
}
