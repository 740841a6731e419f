//! Bad values: each names its key, its variable or flag, and where it was set.

use super::{env, write};
use crate::config::{Config, Flags};

#[test]
fn bad_values_name_their_key() {
    for (var, value, needle) in [
        (
            "LANYARD_DATABASE_URL",
            "mysql://root:pw@h/db",
            "LANYARD_DATABASE_URL",
        ),
        ("LANYARD_LISTEN", "not-an-address", "LANYARD_LISTEN"),
        ("LANYARD_REDIS_URL", "http://h", "LANYARD_REDIS_URL"),
        (
            "LANYARD_PUBLIC_URL",
            "lanyard.example.com",
            "LANYARD_PUBLIC_URL",
        ),
        (
            "LANYARD_TOKEN_MIN_REMAINING",
            "2h",
            "LANYARD_TOKEN_MIN_REMAINING",
        ),
        (
            "LANYARD_TOKEN_MIN_REMAINING",
            "soon",
            "LANYARD_TOKEN_MIN_REMAINING",
        ),
        ("LANYARD_LOG_FORMAT", "xml", "LANYARD_LOG_FORMAT"),
        ("LANYARD_GITHUB_APP_ID", "abc", "LANYARD_GITHUB_APP_ID"),
    ] {
        let err = Config::load(&Flags::default(), &env(&[(var, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{var}={value}: {err}");
        assert!(!err.contains(":pw@"), "{err}");
    }
}

#[test]
fn a_bad_value_or_a_wrong_type_in_the_file_names_the_key_and_line() {
    let dir = tempfile::TempDir::new().unwrap();
    for (listen, needle) in [("8080", "\"8080\" is not an IP:port"), ("true", "as text")] {
        let path = write(&dir, &format!("data_dir = \"/d\"\nlisten = {listen}\n"));
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        let err = Config::load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(err.contains("listen") && err.contains("line 2"), "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn a_blank_variable_is_refused_unless_it_unsets_an_optional_setting() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = write(
        &dir,
        "database_url = \"postgres://db.internal/lanyard\"\nredis_url = \"redis://r:6379\"\n",
    );
    let flags = Flags {
        config: Some(path),
        ..Flags::default()
    };
    // A database URL set to nothing (an unset ${VAR}, an empty secret file) must not quietly
    // become a fresh SQLite database.
    for var in [
        "LANYARD_DATABASE_URL",
        "LANYARD_LISTEN",
        "LANYARD_TOKEN_MIN_REMAINING",
    ] {
        let err = Config::load(&flags, &env(&[(var, "  ")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(var) && err.contains("is empty"), "{err}");
    }
    // An optional URL set to nothing is unset, as before.
    let loaded = Config::load(&flags, &env(&[("LANYARD_REDIS_URL", "")])).unwrap();
    assert!(loaded.config.redis_url.is_none());
}

#[test]
fn a_bad_flag_is_named_as_the_flag() {
    let flags = Flags {
        listen: Some("nowhere".into()),
        ..Flags::default()
    };
    let err = Config::load(&flags, &env(&[])).unwrap_err().to_string();
    assert!(err.contains("--listen") && err.contains("nowhere"), "{err}");
    assert!(!err.contains("LANYARD_LISTEN"), "{err}");
}
