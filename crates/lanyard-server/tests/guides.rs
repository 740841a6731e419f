//! The guides cannot rot: every `lanyard` and `lanyard-runner` command in README.md and docs/ is
//! one the binaries accept (checked against their `--help`), every TOML example loads as a
//! configuration, every `LANYARD_*` name is a real setting, and the platform walkthrough runs, as
//! written, against a live server and the fake GitHub.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use lanyard_core::ManualClock;
use lanyard_server::config::{known_variables, Config, Flags};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{TestApp, ADMIN_TOKEN};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every guide in docs/.
fn guides() -> Vec<(String, String)> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&f).unwrap())
        })
        .collect()
}

/// The fenced blocks of `text` with this info string, each with the line before its fence.
fn blocks<'a>(text: &'a str, lang: &str) -> Vec<(&'a str, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    let mut previous = "";
    while let Some(line) = lines.next() {
        if line.trim() == format!("```{lang}") {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            out.push((previous, body));
        }
        previous = line;
    }
    out
}

/// Splits a shell line into words: quotes and backslashes as sh reads them, a `#` comment at
/// the end dropped. Variables stay as written.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The `lanyard` or `lanyard-runner` invocations in a shell block: (binary, arguments before
/// `--`). Continuation lines are joined, and `VAR=value` prefixes and `cargo run` wrappers
/// dropped.
fn invocations(block: &str) -> Vec<(String, Vec<String>)> {
    let joined = block.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let mut w = words(line);
        while w
            .first()
            .is_some_and(|x| x.contains('=') && !x.starts_with('-'))
        {
            w.remove(0);
        }
        if w.len() > 4 && w[..2] == ["cargo", "run"] {
            let at = w.iter().position(|x| x == "--").unwrap();
            let bin = w[..at]
                .windows(2)
                .find(|p| p[0] == "--bin" || p[0] == "-p")
                .map(|p| p[1].replace("lanyard-server", "lanyard"))
                .unwrap();
            w = std::iter::once(bin)
                .chain(w[at + 1..].iter().cloned())
                .collect();
        }
        if let Some("lanyard" | "lanyard-runner") = w.first().map(String::as_str) {
            let args = w[1..].iter().take_while(|a| *a != "--").cloned().collect();
            out.push((w[0].clone(), args));
        }
    }
    out
}

fn binary(name: &str) -> PathBuf {
    lanyard_testkit::workspace_binary(name)
}

#[test]
fn every_command_in_the_guides_is_one_the_binaries_accept() {
    let mut checked = 0;
    for (file, text) in guides() {
        for (_, block) in blocks(&text, "sh") {
            for (bin, args) in invocations(&block) {
                // clap refuses an unknown command or flag before it prints help.
                let out = Command::new(binary(&bin))
                    .args(&args)
                    .arg("--help")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{file}: `{bin} {}` is not a command {bin} has: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 15,
        "only {checked} commands found: the extraction broke"
    );
}

/// The README's command table: each command and each flag it lists is in that command's help.
#[test]
fn the_readme_command_table_matches_the_help() {
    let (_, readme) = guides().into_iter().next().unwrap();
    let mut checked = 0;
    for row in readme.lines().filter(|l| l.starts_with("| `lanyard")) {
        let cell = row.split(" | ").next().unwrap();
        for span in cell.split('`').skip(1).step_by(2) {
            let words: Vec<&str> = span.split_whitespace().collect();
            let path: Vec<&str> = words[1..]
                .iter()
                .take_while(|w| {
                    w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !w.starts_with('-')
                })
                .copied()
                .collect();
            let out = Command::new(binary(words[0]))
                .args(&path)
                .arg("--help")
                .output()
                .unwrap();
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "README lists `{span}`, which {} lacks",
                words[0]
            );
            for flag in words.iter().filter_map(|w| {
                let w = w.trim_start_matches(['[', '(']);
                w.starts_with("--")
                    .then(|| w.trim_end_matches([']', ')', ',', '|']))
            }) {
                assert!(
                    help.contains(flag),
                    "README lists {flag} for `{span}`: not in its help"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} commands in the README's table"
    );
}

#[test]
fn the_shell_word_splitter_reads_quotes_like_sh() {
    assert_eq!(
        words(r#"lanyard admin create-team --name "My team"   # prints"#),
        ["lanyard", "admin", "create-team", "--name", "My team"]
    );
    assert_eq!(words(r"a 'b c' d\ e"), ["a", "b c", "d e"]);
    let found = invocations("X=1 lanyard e2e run --api u \\\n  -- cmd --flag\n");
    assert_eq!(
        found,
        [(
            "lanyard".to_string(),
            vec!["e2e".to_string(), "run".into(), "--api".into(), "u".into()]
        )]
    );
}

#[test]
fn every_toml_example_loads_as_a_configuration() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut loaded = 0;
    for (file, text) in guides() {
        for (i, (_, block)) in blocks(&text, "toml").into_iter().enumerate() {
            let path = dir.path().join(format!("{file}-{i}.toml"));
            std::fs::write(&path, &block).unwrap();
            let flags = Flags {
                config: Some(path),
                ..Flags::default()
            };
            if let Err(e) = Config::load(&flags, &Default::default()) {
                panic!("{file}: a TOML example does not load: {e}\n{block}");
            }
            loaded += 1;
        }
    }
    assert!(loaded >= 3, "only {loaded} TOML examples found");
}

#[test]
fn every_lanyard_variable_named_is_a_real_one() {
    let mut known = known_variables();
    // What `lanyard e2e run` gives its command, and the knobs of the benchmark and crash test.
    known.extend(
        [
            "LANYARD_E2E_TEAM_ID",
            "LANYARD_E2E_SESSION_JWT",
            "LANYARD_E2E_EMAIL",
            "LANYARD_E2E_API_URL",
            "LANYARD_E2E_RUNNER_TOKEN",
            "LANYARD_E2E_SESSION_ID",
            "LANYARD_BENCH_SERVER",
            "LANYARD_BENCH_LOG",
            "LANYARD_CRASH_KILLS",
        ]
        .map(String::from),
    );
    for (file, text) in guides() {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("LANYARD_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            // A prefix written as a pattern: LANYARD_WORKER_<NAME>_INTERVAL, LANYARD_*.
            if name.ends_with('_') {
                continue;
            }
            assert!(
                known.contains(&name),
                "{file} names {name}, which nothing reads"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_walkthrough_runs_as_written() {
    let (_, text) = guides()
        .into_iter()
        .find(|(f, _)| f == "platforms.md")
        .unwrap();
    let script = blocks(&text, "sh")
        .into_iter()
        .find(|(before, _)| before.contains("run: platform-walkthrough"))
        .map(|(_, body)| body)
        .expect("the walkthrough block");
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(1, "acme", &["widgets"]);
    let app = TestApp::builder().clock(&clock).github(&fake).spawn().await;
    let dir = tempfile::TempDir::new().unwrap();
    let runner_dir = binary("lanyard-runner").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        runner_dir.display(),
        std::env::var("PATH").unwrap()
    );
    let out = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("LANYARD", app.public_url())
        .env("LANYARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("GITHUB_HOST", &fake.host)
        .env("GITHUB_URL", format!("http://{}", fake.host))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the walkthrough failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.path().join("widgets/README.md").is_file(),
        "step 4 cloned"
    );
    assert_eq!(fake.mint_count(), 1);
    assert_eq!(
        fake.revocation_count(),
        1,
        "step 5 revoked the session's token"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"tokens_revoked\":1"), "{stdout}");
}
