//! The Dockerfiles: multi-stage, real files, real commands, a distroless non-root final image.

use std::path::PathBuf;

use lanyard_server::config::known_variables;

use crate::{accepts, root};

/// A Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || (line.starts_with('#') && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (op, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// An exec-form array (`["a", "b"]`).
fn exec_form(rest: &str) -> Vec<String> {
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("not exec form ({e}): {rest}"))
}

fn dockerfiles() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/docker"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    files
}

#[test]
fn dockerfiles_name_real_files_and_real_commands() {
    let files = dockerfiles();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["lanyard-runner.Dockerfile", "lanyard.Dockerfile"]);
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let known = known_variables();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let steps = instructions(&text);
        let stages: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, (op, _))| op == "FROM")
            .map(|(i, _)| i)
            .collect();
        assert!(stages.len() >= 2, "{}: multi-stage", file.display());
        let final_stage = &steps[*stages.last().unwrap()..];
        let mut built = Vec::new();
        for (op, rest) in &steps {
            if op == "COPY" && !rest.contains("--from=") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                for source in &words[..words.len() - 1] {
                    assert!(
                        root().join(source).exists(),
                        "{}: COPY {source} names a file that does not exist",
                        file.display()
                    );
                    assert!(
                        !ignored.lines().any(|l| l.trim() == *source),
                        "{source} is in .dockerignore"
                    );
                }
            }
            if op == "RUN" && rest.contains("cargo build") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let after = |flag: &str| {
                    words[words.iter().position(|w| *w == flag).unwrap() + 1].to_string()
                };
                let package = after("-p");
                assert!(
                    root().join("crates").join(&package).is_dir(),
                    "{package} is a crate"
                );
                built.push(after("--bin"));
                if package == "lanyard-server" {
                    assert!(
                        words.contains(&"--no-default-features"),
                        "the server image leaves out dev mode and the fake's test keys"
                    );
                }
            }
        }
        // The final image: no shell needed, no build step, not root.
        let base = &final_stage[0].1;
        assert!(base.contains("distroless"), "{}: {base}", file.display());
        assert!(
            final_stage.iter().all(|(op, _)| op != "RUN"),
            "{}",
            file.display()
        );
        let user = final_stage
            .iter()
            .find(|(op, _)| op == "USER")
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| panic!("{}: no USER", file.display()));
        assert!(
            !user.starts_with("root") && !user.starts_with("0"),
            "{user}"
        );
        // Binaries copied from the build stage are the ones it built.
        let mut installed = Vec::new();
        for (op, rest) in final_stage.iter().filter(|(op, _)| op == "COPY") {
            assert_eq!(op, "COPY");
            if let Some(bin) = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("/src/target/release/"))
            {
                assert!(built.contains(&bin.to_string()), "{bin} was built");
                installed.push(format!("/usr/local/bin/{bin}"));
            }
        }
        let entrypoint = exec_form(
            &final_stage
                .iter()
                .find(|(op, _)| op == "ENTRYPOINT")
                .unwrap()
                .1,
        );
        assert!(installed.contains(&entrypoint[0]), "{entrypoint:?}");
        let cmd = exec_form(&final_stage.iter().find(|(op, _)| op == "CMD").unwrap().1);
        let mut args = entrypoint[1..].to_vec();
        args.extend(cmd.into_iter().filter(|a| a != "--help"));
        assert!(accepts(&entrypoint[0], &args), "{entrypoint:?} {args:?}");
        for (op, rest) in final_stage {
            if op == "ENV" {
                for pair in rest.split_whitespace() {
                    let name = pair.split('=').next().unwrap();
                    // Lanyard's own settings, and the one allocator setting the images tune.
                    let real = known.contains(&name.to_string()) || name == "MALLOC_ARENA_MAX";
                    assert!(real, "ENV {name} is no setting");
                }
            }
            if op == "HEALTHCHECK" && rest != "NONE" {
                let check = exec_form(&rest[rest.find("CMD").unwrap() + 3..]);
                assert!(installed.contains(&check[0]), "{check:?}");
                assert!(accepts(&check[0], &check[1..]), "{check:?}");
            }
        }
        if built.contains(&"lanyard".to_string()) {
            assert!(
                final_stage
                    .iter()
                    .any(|(op, rest)| op == "HEALTHCHECK" && rest.contains("healthcheck")),
                "the server image checks its own /healthz"
            );
            assert!(final_stage
                .iter()
                .any(|(op, rest)| op == "EXPOSE" && rest == "8080"));
        }
    }
}
