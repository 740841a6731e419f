use super::*;

mod providers;
mod values;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("lanyard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::load(&Flags::default(), &env(&[])).unwrap().config;
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(c.database_url.expose(), "sqlite://./.lanyard/lanyard.db");
    assert_eq!(c.token_min_remaining, Duration::from_secs(900));
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(c.redis_url.is_none() && c.public_url.is_none() && c.github.is_empty());
}

#[test]
fn layers_apply_in_order_file_then_env_then_flags() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = write(
        &dir,
        "listen = \"127.0.0.1:1111\"\ndata_dir = \"/from/file\"\nlog_format = \"json\"\n",
    );
    let e = env(&[
        ("LANYARD_CONFIG", path.to_str().unwrap()),
        ("LANYARD_LISTEN", "127.0.0.1:2222"),
    ]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    assert_eq!(c.listen.port(), 2222, "env beats file");
    assert_eq!(
        c.data_dir,
        PathBuf::from("/from/file"),
        "file beats default"
    );
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(
        c.database_url.expose(),
        "sqlite:///from/file/lanyard.db",
        "follows data_dir"
    );
    let flags = Flags {
        listen: Some("127.0.0.1:3333".into()),
        ..Flags::default()
    };
    assert_eq!(
        Config::load(&flags, &e).unwrap().config.listen.port(),
        3333,
        "flag beats env"
    );
}

#[test]
fn unknown_file_key_is_an_error_naming_it() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = write(&dir, "listen = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n");
    let flags = Flags {
        config: Some(path),
        ..Flags::default()
    };
    let err = Config::load(&flags, &env(&[])).unwrap_err().to_string();
    assert!(
        err.contains("listen_adress") && err.contains("line 2"),
        "{err}"
    );

    let path = write(&dir, "[[github]]\nhost = \"ghe.test\"\napp_idd = 3\n");
    let flags = Flags {
        config: Some(path),
        ..Flags::default()
    };
    let err = Config::load(&flags, &env(&[])).unwrap_err().to_string();
    assert!(err.contains("app_idd"), "{err}");
}

#[test]
fn unknown_env_variables_are_reported_not_fatal() {
    let e = env(&[
        ("LANYARD_LISTN", "x"),
        ("LANYARD_SESSION_ID", "s"),
        ("OTHER", "y"),
    ]);
    let loaded = Config::load(&Flags::default(), &e).unwrap();
    assert_eq!(loaded.unknown_env, vec!["LANYARD_LISTN".to_string()]);
}

#[test]
fn short_secrets_are_refused_naming_the_variable() {
    for var in ["LANYARD_JWT_SECRET", "LANYARD_E2E_ACCOUNT_TOKEN"] {
        let err = Config::load(&Flags::default(), &env(&[(var, "too-short")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(var) && msg.contains("32 bytes"), "{msg}");
        assert!(
            !msg.contains("too-short"),
            "the secret itself is not echoed: {msg}"
        );
    }
    let ok = "x".repeat(32);
    assert!(Config::load(&Flags::default(), &env(&[("LANYARD_JWT_SECRET", &ok)])).is_ok());
    let err = Config::load(
        &Flags::default(),
        &env(&[("LANYARD_ENCRYPTION_KEY", "abcd")]),
    );
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("LANYARD_ENCRYPTION_KEY"));
}

#[test]
fn github_hosts_from_toml_and_the_env_shortcut() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = write(
        &dir,
        "[[github]]\nhost = \"ghe.example.com\"\napi_url = \"https://ghe.example.com/api/v3/\"\n\
         app_id = 12345\nprivate_key_file = \"/etc/lanyard/ghe-app.pem\"\n",
    );
    let e = env(&[
        ("LANYARD_CONFIG", path.to_str().unwrap()),
        ("LANYARD_GITHUB_APP_ID", "7"),
        ("LANYARD_GITHUB_APP_PRIVATE_KEY_FILE", "/k.pem"),
    ]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    assert_eq!(c.github.len(), 2);
    assert_eq!(c.github[0].api_url, "https://ghe.example.com/api/v3");
    assert_eq!(c.github[1].host, "github.com");
    assert_eq!(c.github[1].api_url, "https://api.github.com");
    assert_eq!(c.github[1].app_id, Some(7));
    assert_eq!(
        c.github[0].max_concurrent_mints,
        DEFAULT_MAX_CONCURRENT_MINTS
    );
}

#[test]
fn max_concurrent_mints_is_bounded_per_host() {
    let dir = tempfile::TempDir::new().unwrap();
    let toml = |n: &str| format!("[[github]]\nhost = \"ghe.test\"\nmax_concurrent_mints = {n}\n");
    let path = write(&dir, &toml("200"));
    let e = env(&[("LANYARD_CONFIG", path.to_str().unwrap())]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    assert_eq!(c.github[0].max_concurrent_mints, 200);
    for bad in ["0", "1001"] {
        let path = write(&dir, &toml(bad));
        let e = env(&[("LANYARD_CONFIG", path.to_str().unwrap())]);
        let err = Config::load(&Flags::default(), &e).unwrap_err().to_string();
        assert!(
            err.contains("max_concurrent_mints") && err.contains("1000"),
            "{err}"
        );
    }
    let e = env(&[("LANYARD_GITHUB_MAX_CONCURRENT_MINTS", "many")]);
    let err = Config::load(&Flags::default(), &e).unwrap_err().to_string();
    assert!(err.contains("LANYARD_GITHUB_MAX_CONCURRENT_MINTS"), "{err}");
    let e = env(&[("LANYARD_GITHUB_MAX_CONCURRENT_MINTS", "12")]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    assert_eq!(c.github[0].max_concurrent_mints, 12);
}

#[test]
fn debug_output_never_contains_secrets() {
    let jwt = "jwt-secret-value-that-is-long-enough-000";
    let enc = "ab".repeat(32);
    let e2e = "e2e-token-value-that-is-long-enough-0000";
    let e = env(&[
        ("LANYARD_JWT_SECRET", jwt),
        ("LANYARD_ENCRYPTION_KEY", &enc),
        ("LANYARD_E2E_ACCOUNT_TOKEN", e2e),
        (
            "LANYARD_DATABASE_URL",
            "postgres://lanyard:db-password-1@db/lanyard",
        ),
        (
            "LANYARD_REDIS_URL",
            "redis://:redis-password-2@127.0.0.1:6379",
        ),
    ]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    let debug = format!("{c:?} {c:#?}");
    for secret in [jwt, enc.as_str(), e2e, "db-password-1", "redis-password-2"] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(debug.contains("REDACTED") || debug.contains("***"));
}

#[test]
fn secrets_can_come_from_files_but_not_from_both() {
    let dir = tempfile::TempDir::new().unwrap();
    let jwt = dir.path().join("jwt");
    std::fs::write(&jwt, "j".repeat(40) + "\n").unwrap();
    let private = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    // Readable by others: refused, with the fix.
    let e = env(&[("LANYARD_JWT_SECRET_FILE", jwt.to_str().unwrap())]);
    let refused = Config::load(&Flags::default(), &e).unwrap_err().to_string();
    assert!(refused.contains("chmod 600"), "{refused}");
    private(&jwt);
    let e = env(&[("LANYARD_JWT_SECRET_FILE", jwt.to_str().unwrap())]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    assert_eq!(c.jwt_secret.unwrap().expose_secret(), "j".repeat(40));

    let url = dir.path().join("db");
    std::fs::write(&url, "postgres://u:pw@db/lanyard").unwrap();
    private(&url);
    let e = env(&[("LANYARD_DATABASE_URL_FILE", url.to_str().unwrap())]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    assert_eq!(c.database_url.expose(), "postgres://u:pw@db/lanyard");

    let both = env(&[
        ("LANYARD_JWT_SECRET_FILE", jwt.to_str().unwrap()),
        ("LANYARD_JWT_SECRET", &"k".repeat(40)),
    ]);
    let err = Config::load(&Flags::default(), &both)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LANYARD_JWT_SECRET_FILE") && err.contains("not both"),
        "{err}"
    );

    let missing = env(&[("LANYARD_E2E_ACCOUNT_TOKEN_FILE", "/nonexistent/token")]);
    let err = Config::load(&Flags::default(), &missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("LANYARD_E2E_ACCOUNT_TOKEN_FILE"), "{err}");
    for setting in SETTINGS.iter().filter(|s| s.secret) {
        let name = format!("{}_FILE", env_name(setting.key));
        let loaded = Config::load(&Flags::default(), &env(&[(&name, "/nonexistent")]));
        assert!(loaded.is_err(), "{name} is read");
    }
}

#[test]
fn a_secret_of_digits_stays_text() {
    let digits = "1234567890".repeat(4);
    let c = Config::load(&Flags::default(), &env(&[("LANYARD_JWT_SECRET", &digits)]))
        .unwrap()
        .config;
    assert_eq!(c.jwt_secret.unwrap().expose_secret(), digits);
}

#[test]
fn worker_periods_come_from_toml_and_env_and_bad_ones_are_named() {
    use lanyard_core::Worker;
    let dir = tempfile::TempDir::new().unwrap();
    let path = write(
        &dir,
        "churn_after = \"30d\"\n[workers.usage_meter]\ninterval = \"5m\"\n[workers.quota_nudge]\ninterval = \"2m\"\n",
    );
    let e = env(&[
        ("LANYARD_CONFIG", path.to_str().unwrap()),
        ("LANYARD_WORKER_USAGE_METER_INTERVAL", "5s"),
        ("LANYARD_TEST_COHORT_MAX_AGE", "30m"),
    ]);
    let loaded = Config::load(&Flags::default(), &e).unwrap();
    assert!(loaded.unknown_env.is_empty(), "{:?}", loaded.unknown_env);
    let w = loaded.config.workers;
    assert_eq!(
        w.interval(Worker::UsageMeter),
        Duration::from_secs(5),
        "env beats file"
    );
    assert_eq!(w.interval(Worker::QuotaNudge), Duration::from_secs(120));
    assert_eq!(
        w.interval(Worker::SessionExpiry),
        Duration::from_secs(30),
        "default"
    );
    assert_eq!(w.churn_after, Duration::from_secs(30 * 86_400));
    assert_eq!(w.test_cohort_max_age, Duration::from_secs(1800));
    assert!(loaded.config.smtp.is_none());

    for (pairs, needle) in [
        (
            vec![("LANYARD_WORKER_SESSION_EXPIRY_INTERVAL", "0s")],
            "LANYARD_WORKER_SESSION_EXPIRY_INTERVAL",
        ),
        (
            vec![("LANYARD_WORKER_CHURN_SCORE_INTERVAL", "soon")],
            "churn_score.interval",
        ),
        (vec![("LANYARD_CHURN_AFTER", "1m")], "LANYARD_CHURN_AFTER"),
        (
            vec![("LANYARD_SMTP_URL", "http://mail.example.com")],
            "smtp://",
        ),
        (
            vec![
                ("LANYARD_SMTP_URL", "smtp://mail.example.com"),
                ("LANYARD_SMTP_FROM", "nobody"),
            ],
            "LANYARD_SMTP_FROM",
        ),
    ] {
        let err = Config::load(&Flags::default(), &env(&pairs))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{pairs:?}: {err}");
    }
    let path = write(&dir, "[workers.mine_bitcoin]\ninterval = \"1s\"\n");
    let err = Config::load(
        &Flags::default(),
        &env(&[("LANYARD_CONFIG", path.to_str().unwrap())]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("unknown worker") && err.contains("usage_meter"),
        "{err}"
    );
}

#[test]
fn the_smtp_url_is_never_printed_with_its_password() {
    let e = env(&[
        (
            "LANYARD_SMTP_URL",
            "smtp://mailer:hunter2-very-secret@mail.example.com:587",
        ),
        ("LANYARD_SMTP_FROM", "Ops <ops@example.com>"),
    ]);
    let c = Config::load(&Flags::default(), &e).unwrap().config;
    let printed = format!("{c:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("mail.example.com"), "{printed}");
    assert_eq!(c.smtp.unwrap().from.email.to_string(), "ops@example.com");
}
