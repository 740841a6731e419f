//! The fake GitHub's secrets (its App key, OAuth client secret and webhook secret), as Lanyard
//! is configured with them.

use std::path::{Path, PathBuf};

/// A secret fixture, as Lanyard must be configured with it: a private copy (mode 0600 in a 0700
/// directory), since a clone leaves the checked-in files readable by all and Lanyard refuses
/// secret files that others can read.
pub(super) fn fixture(name: &str) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::TempDir::new().expect("a private fixtures directory"));
    let path = dir.path().join(name);
    if !path.exists() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        let bytes = std::fs::read(&source).expect("the fixture is checked in");
        let tmp = dir
            .path()
            .join(format!("{name}.{:x}.tmp", rand::random::<u64>()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .expect("write the private fixture");
        std::io::Write::write_all(&mut file, &bytes).expect("write the private fixture");
        std::fs::rename(&tmp, &path).expect("publish the private fixture");
    }
    path
}

/// The app's private key (PKCS#1 PEM), as Lanyard is configured with it.
pub fn app_private_key_path() -> PathBuf {
    fixture("app-key.pem")
}

/// The OAuth client secret ([`super::CLIENT_SECRET`]), as Lanyard is configured with it.
pub fn client_secret_path() -> PathBuf {
    fixture("oauth-client-secret")
}

/// The webhook secret ([`super::WEBHOOK_SECRET`]), as Lanyard is configured with it.
pub fn webhook_secret_path() -> PathBuf {
    fixture("webhook-secret")
}
