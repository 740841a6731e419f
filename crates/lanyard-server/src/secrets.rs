//! Secrets that default to "generate once, keep in the data dir" (CONTRACT §2).
//!
//! Files are created with mode 0600 and never overwritten, so a restart keeps every issued JWT
//! valid and every stored ciphertext readable.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::{distributions::Alphanumeric, Rng, RngCore};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{check_encryption_key, Config, ConfigError, MIN_SECRET_BYTES};

const JWT_FILE: &str = "jwt_secret";
const ENCRYPTION_FILE: &str = "encryption_key";

/// The secrets the server runs with, resolved from config or the data dir.
#[derive(Debug, Clone)]
pub struct ServerSecrets {
    pub jwt_secret: SecretString,
    /// 32 bytes, hex, validated.
    pub encryption_key: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot use secret file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

pub fn resolve(config: &Config) -> Result<ServerSecrets, SecretFileError> {
    let jwt_secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => load_or_create(&config.data_dir, JWT_FILE, || {
            rand::thread_rng()
                .sample_iter(Alphanumeric)
                .take(64)
                .map(char::from)
                .collect()
        })?,
    };
    if let Err(why) = check_jwt_secret(jwt_secret.expose_secret()) {
        return Err(ConfigError::Invalid {
            key: "jwt_secret (LANYARD_JWT_SECRET)",
            message: format!("the stored {JWT_FILE} file is {why}"),
        }
        .into());
    }
    let encryption_key = match &config.encryption_key {
        Some(s) => s.clone(),
        None => load_or_create(&config.data_dir, ENCRYPTION_FILE, || {
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            hex::encode(key)
        })?,
    };
    check_encryption_key(encryption_key.expose_secret())?;
    Ok(ServerSecrets {
        jwt_secret,
        encryption_key,
    })
}

/// For `lanyard doctor`: checks the secrets [`resolve`] would read, creating nothing. Says where
/// each one comes from, or why `serve` would refuse it.
pub fn inspect(config: &Config) -> Result<String, String> {
    let describe = |name: &str,
                    configured: bool,
                    valid: &dyn Fn(&str) -> Result<(), String>|
     -> Result<String, String> {
        if configured {
            return Ok(format!("{name} from configuration"));
        }
        let path = config.data_dir.join(name);
        if !path.exists() {
            return Ok(format!("{name} generated on first start"));
        }
        crate::config::require_private(&path)?;
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        valid(text.trim()).map_err(|e| format!("{}: {e}", path.display()))?;
        let mode = fs::metadata(&path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap_or_default();
        Ok(format!("{name} stored in the data dir ({mode:04o})"))
    };
    let jwt = describe(JWT_FILE, config.jwt_secret.is_some(), &check_jwt_secret)?;
    let key = describe(ENCRYPTION_FILE, config.encryption_key.is_some(), &|s| {
        check_encryption_key(s)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    Ok(format!("{jwt}; {key}"))
}

fn check_jwt_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!("shorter than {MIN_SECRET_BYTES} bytes"));
    }
    Ok(())
}

fn load_or_create(
    dir: &Path,
    name: &str,
    generate: impl FnOnce() -> String,
) -> Result<SecretString, SecretFileError> {
    let path = dir.join(name);
    let io = |source| SecretFileError::Io {
        path: path.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            let value = generate();
            file.write_all(value.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io)?;
            tracing::info!(file = %path.display(), "generated a new {name} in the data dir");
            Ok(SecretString::from(value))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            crate::config::require_private(&path).map_err(|message| ConfigError::Invalid {
                key: "data_dir (LANYARD_DATA_DIR)",
                message,
            })?;
            let value = fs::read_to_string(&path).map_err(io)?;
            Ok(SecretString::from(value.trim().to_string()))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flags;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn config_in(dir: &Path) -> Config {
        let flags = Flags {
            data_dir: Some(dir.to_path_buf()),
            ..Flags::default()
        };
        Config::load(&flags, &BTreeMap::new()).unwrap().config
    }

    #[test]
    fn generated_once_with_mode_0600_and_reused() {
        let dir = tempfile::TempDir::new().unwrap();
        let first = resolve(&config_in(dir.path())).unwrap();
        let second = resolve(&config_in(dir.path())).unwrap();
        assert_eq!(
            first.jwt_secret.expose_secret(),
            second.jwt_secret.expose_secret()
        );
        assert_eq!(
            first.encryption_key.expose_secret(),
            second.encryption_key.expose_secret()
        );
        assert!(first.jwt_secret.expose_secret().len() >= MIN_SECRET_BYTES);
        for name in [JWT_FILE, ENCRYPTION_FILE] {
            let mode = fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn configured_values_win_and_write_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut config = config_in(dir.path());
        config.jwt_secret = Some(SecretString::from("j".repeat(40)));
        config.encryption_key = Some(SecretString::from("cd".repeat(32)));
        let s = resolve(&config).unwrap();
        assert_eq!(s.jwt_secret.expose_secret(), "j".repeat(40));
        assert!(!dir.path().join(JWT_FILE).exists());
    }
}
