//! `lanyard serve --dev` as a new user meets it: start it, read what it prints, and run exactly
//! the printed lines.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{lanyard, stdout_of, wait_with_timeout};

/// Runs one printed line through a shell, as a user pasting it would, in `cwd`.
fn sh(line: &str, cwd: &Path) -> std::process::Output {
    Command::new("sh")
        .args(["-c", line])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run sh")
}

fn printed<'a>(lines: &'a [String], what: &str, test: impl Fn(&str) -> bool) -> &'a str {
    lines
        .iter()
        .map(|l| l.trim())
        .find(|l| test(l))
        .unwrap_or_else(|| panic!("dev mode printed no {what}: {lines:#?}"))
}

#[test]
fn dev_mode_prints_lines_that_clone_fetch_and_show_a_refresh() {
    let runner = lanyard_testkit::workspace_binary("lanyard-runner");
    let cwd = tempfile::TempDir::new().unwrap();
    let mut child = lanyard(&[
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--dev-token-lifetime",
        "20s",
    ])
    .current_dir(cwd.path())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn lanyard serve --dev");
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "dev mode stopped before its banner ended: {lines:#?}"
        );
        let done = line.starts_with("Serving until Ctrl-C");
        lines.push(line.trim_end().to_string());
        if done {
            break;
        }
    }
    let banner = lines.join("\n");
    assert!(banner.contains("NOT FOR PRODUCTION"), "{banner}");
    let api_key = printed(&lines, "API key", |l| l.starts_with("API key"));
    assert!(api_key
        .split_whitespace()
        .last()
        .unwrap()
        .starts_with("lk_"));

    // The runner line, exactly as printed: the clone succeeds with a fresh token, and no token
    // lands in the clone's config.
    let clone = printed(&lines, "runner line", |l| {
        l.contains(" run --api ") && l.contains(" -- git clone ")
    });
    assert!(
        clone.starts_with(&runner.display().to_string()),
        "the runner beside lanyard: {clone}"
    );
    let out = sh(clone, cwd.path());
    assert!(
        out.status.success(),
        "the printed runner line failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = PathBuf::from(clone.split_whitespace().last().unwrap());
    assert!(dest.join("README.md").is_file(), "the demo repo is cloned");
    let git_config = std::fs::read_to_string(dest.join(".git/config")).unwrap();
    assert!(
        !git_config.contains("ghs_") && !git_config.contains('@'),
        "{git_config}"
    );

    // The curl, exactly as printed: the credential with its expiry.
    let curl = printed(&lines, "curl", |l| l.starts_with("curl "));
    let out = sh(curl, cwd.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let credential: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(credential["token"].as_str().unwrap().starts_with("ghs_"));
    assert_eq!(credential["owner"], "demo");
    assert_eq!(credential["scheme"], "http");

    // The same runner line with a command that asks for status twice: a refresh happens within
    // the first token's life, and the new token lives longer.
    let (runner_args, _) = clone.split_once(" -- ").unwrap();
    let status = format!("{runner} status --json", runner = runner.display());
    let watch = format!("{runner_args} -- sh -c '{status}; sleep 14; {status}'");
    let out = sh(&watch, cwd.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (before, after) = (&reports[0][0], &reports[1][0]);
    let at =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(
        at(&after["last_refresh"]) > at(&before["last_refresh"]),
        "refreshed: {before} then {after}"
    );
    assert!(
        at(&after["last_refresh"]) < at(&before["expires_at"]),
        "before the first token died"
    );
    assert!(
        at(&after["expires_at"]) > at(&before["expires_at"]),
        "a new token"
    );

    // The printed test-account line runs as printed, in a shell with no lanyard on PATH, with CMD
    // a fetch through the seeded session.
    let e2e = printed(&lines, "e2e line", |l| l.contains(" e2e run "));
    let command = e2e
        .split("test accounts with ")
        .nth(1)
        .unwrap()
        .trim_end()
        .strip_suffix("CMD")
        .expect("the line ends with CMD");
    let fetch = r#"curl -fsS -H "Authorization: Bearer $LANYARD_E2E_RUNNER_TOKEN" "$LANYARD_E2E_API_URL/v1/sessions/$LANYARD_E2E_SESSION_ID/credentials/github""#;
    let mut e2e_run = Command::new("sh");
    e2e_run
        .arg("-c")
        .arg(format!("{command}sh -c '{fetch}'"))
        .env("PATH", "/usr/bin:/bin");
    let seeded: serde_json::Value = serde_json::from_str(&stdout_of(&mut e2e_run)).unwrap();
    assert_eq!(seeded["owner"], "demo-ci", "the test account's own owner");

    // Ctrl-C: it stops cleanly and leaves nothing behind.
    let root = dest.parent().unwrap().to_path_buf();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&root).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the throwaway dir is private");
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(20));
    let log = log.join().unwrap().join("\n");
    assert!(status.success(), "{log}");
    assert!(log.contains("NOT FOR PRODUCTION"), "warned in the log too");
    assert!(
        !root.exists(),
        "the throwaway dir {} is removed",
        root.display()
    );
    let runner_token = curl
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let secrets = [
        api_key.split_whitespace().last().unwrap(),
        runner_token,
        credential["token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "the log never holds a secret");
    }
}

#[test]
fn dev_mode_refuses_a_non_loopback_address_and_configuration() {
    let out = lanyard(&["serve", "--dev", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
    let dir = tempfile::TempDir::new().unwrap();
    let out = lanyard(&["serve", "--dev", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data-dir"));
}
