//! `LANYARD_CREDENTIALS_DIR` (CONTRACT §14): a 0700 directory holding, for each grant of the
//! session, `NAME.json` (the credential response) and, for an OAuth2 grant, `NAME.token` (the
//! access token alone). Files are 0600 and replaced atomically, written beside and renamed over,
//! so a reader always opens a whole file; a revoked grant's files are removed.
//!
//! Names are the configured providers' (`[a-z0-9_-]`, 1 to 32), checked again here so no name
//! can reach outside the directory.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    /// Creates `dir` (and its parents) if needed and makes it 0700.
    pub fn create(dir: &Path) -> Result<Self, FilesError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
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

    /// Writes `file` beside its final name, mode 0600 from the start, then renames it over.
    fn replace(&self, file: &str, contents: &[u8]) -> Result<(), FilesError> {
        let path = self.dir.join(file);
        let staging = self.dir.join(format!(".{file}.{}.tmp", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staging)
            .and_then(|mut f| {
                f.write_all(contents)?;
                f.sync_all()
            });
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
