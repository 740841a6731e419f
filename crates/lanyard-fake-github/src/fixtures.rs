//! The fake GitHub's secrets (its App key, OAuth client secret and webhook secret), as Lanyard
//! is configured with them. They are compiled in, so a binary that embeds the fake (`lanyard
//! serve --dev`) needs no checkout; they are for tests and dev mode only.

use std::path::{Path, PathBuf};

const APP_KEY: &[u8] = include_bytes!("../fixtures/app-key.pem");
pub(super) const APP_PUBLIC_KEY: &[u8] = include_bytes!("../fixtures/app-key.pub.pem");
const CLIENT_SECRET: &[u8] = include_bytes!("../fixtures/oauth-client-secret");
const WEBHOOK_SECRET: &[u8] = include_bytes!("../fixtures/webhook-secret");

/// Where [`write_secrets`] put the fake's secrets.
#[derive(Debug, Clone)]
pub struct SecretFiles {
    pub app_private_key: PathBuf,
    pub client_secret: PathBuf,
    pub webhook_secret: PathBuf,
}

/// Writes the fake's secrets into `dir` (created 0700), each file 0600, as Lanyard requires of
/// secret files.
pub fn write_secrets(dir: &Path) -> std::io::Result<SecretFiles> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    Ok(SecretFiles {
        app_private_key: write_private(dir, "app-key.pem", APP_KEY)?,
        client_secret: write_private(dir, "oauth-client-secret", CLIENT_SECRET)?,
        webhook_secret: write_private(dir, "webhook-secret", WEBHOOK_SECRET)?,
    })
}

/// Writes `bytes` to `dir/name` with mode 0600, through a temporary name so a reader never sees
/// half a file.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.{:x}.tmp", rand::random::<u64>()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    std::io::Write::write_all(&mut file, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The secrets written once per process into a private temporary directory.
fn process_secrets() -> &'static SecretFiles {
    static FILES: std::sync::OnceLock<(tempfile::TempDir, SecretFiles)> =
        std::sync::OnceLock::new();
    let (_, files) = FILES.get_or_init(|| {
        let dir = tempfile::TempDir::new().expect("a private fixtures directory");
        let files = write_secrets(dir.path()).expect("write the fake's secrets");
        (dir, files)
    });
    files
}

/// The app's private key (PKCS#1 PEM), as Lanyard is configured with it.
pub fn app_private_key_path() -> PathBuf {
    process_secrets().app_private_key.clone()
}

/// The OAuth client secret ([`super::CLIENT_SECRET`]), as Lanyard is configured with it.
pub fn client_secret_path() -> PathBuf {
    process_secrets().client_secret.clone()
}

/// The webhook secret ([`super::WEBHOOK_SECRET`]), as Lanyard is configured with it.
pub fn webhook_secret_path() -> PathBuf {
    process_secrets().webhook_secret.clone()
}
