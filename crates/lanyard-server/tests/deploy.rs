//! The deployment files cannot rot: every Dockerfile names only files that exist and commands the
//! binaries have, and every Kubernetes manifest parses, sets only real settings, probes real
//! routes and mounts what its `_FILE` settings name. No Docker daemon or cluster runs here, so
//! this is what can be checked without one.

use std::path::{Path, PathBuf};
use std::process::Command;

use lanyard_server::config::known_variables;
use lanyard_testkit::TestApp;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `lanyard` or `lanyard-runner`, built if this test run did not build it.
fn binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_lanyard")).with_file_name(name);
    if !path.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "lanyard-runner", "--bin", name])
            .status()
            .unwrap();
        assert!(status.success());
    }
    path
}

/// Whether `bin ARGS... --help` succeeds: clap refuses an unknown command or flag before it
/// prints help, so this proves the binary has them.
fn accepts(bin: &str, args: &[String]) -> bool {
    let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
    let out = Command::new(binary(name))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    out.status.success()
}

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
                    assert!(
                        known.contains(&name.to_string()),
                        "ENV {name} is no setting"
                    );
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

/// Every document of every manifest.
fn manifests() -> Vec<(String, Yaml)> {
    let mut out = Vec::new();
    let dir = root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for doc in docs {
            assert!(
                doc["kind"].as_str().is_some(),
                "{name}: a document without a kind"
            );
            out.push((name.clone(), doc));
        }
    }
    out
}

fn kinds(docs: &[(String, Yaml)]) -> Vec<String> {
    docs.iter()
        .map(|(_, d)| d["kind"].as_str().unwrap().to_string())
        .collect()
}

fn pod_spec(doc: &Yaml) -> Option<&Yaml> {
    match doc["kind"].as_str()? {
        "Pod" => Some(&doc["spec"]),
        "Deployment" => Some(&doc["spec"]["template"]["spec"]),
        _ => None,
    }
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .map(|v| v.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn manifests_set_real_settings_probe_real_routes_and_mount_their_files() {
    let docs = manifests();
    let kinds = kinds(&docs);
    for kind in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
        "Pod",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind}");
    }
    let known = known_variables();
    let app = TestApp::spawn().await;
    let mut probes = Vec::new();
    let secrets: Vec<&Yaml> = docs
        .iter()
        .filter(|(_, d)| d["kind"].as_str() == Some("Secret"))
        .map(|(_, d)| d)
        .collect();
    for (file, doc) in &docs {
        let Some(spec) = pod_spec(doc) else { continue };
        let volumes = spec["volumes"].as_vec().cloned().unwrap_or_default();
        for container in spec["containers"].as_vec().unwrap() {
            let mounts = container["volumeMounts"]
                .as_vec()
                .cloned()
                .unwrap_or_default();
            for var in container["env"].as_vec().cloned().unwrap_or_default() {
                let name = var["name"].as_str().unwrap();
                if !name.starts_with("LANYARD_") {
                    continue;
                }
                assert!(
                    known.contains(&name.to_string()),
                    "{file}: {name} is no setting"
                );
                let value = var["value"].as_str().unwrap_or_default();
                let is_file = name.ends_with("_FILE") || name == "LANYARD_CONFIG";
                if !is_file {
                    continue;
                }
                // The file is in a mounted volume, and that volume has an entry by its name.
                let mount = mounts
                    .iter()
                    .find(|m| value.starts_with(m["mountPath"].as_str().unwrap()))
                    .unwrap_or_else(|| panic!("{file}: {name}={value} is in no mounted volume"));
                let key = Path::new(value).file_name().unwrap().to_str().unwrap();
                let volume = volumes
                    .iter()
                    .find(|v| v["name"] == mount["name"])
                    .unwrap_or_else(|| panic!("{file}: no volume {:?}", mount["name"]));
                let source = if let Some(secret) = volume["secret"]["secretName"].as_str() {
                    docs.iter()
                        .find(|(_, d)| {
                            d["kind"].as_str() == Some("Secret")
                                && d["metadata"]["name"].as_str() == Some(secret)
                        })
                        .map(|(_, d)| &d["stringData"])
                } else if let Some(map) = volume["configMap"]["name"].as_str() {
                    docs.iter()
                        .find(|(_, d)| {
                            d["kind"].as_str() == Some("ConfigMap")
                                && d["metadata"]["name"].as_str() == Some(map)
                        })
                        .map(|(_, d)| &d["data"])
                } else {
                    None
                };
                let source =
                    source.unwrap_or_else(|| panic!("{file}: {name}'s volume has no source here"));
                assert!(
                    !source[key].is_badvalue(),
                    "{file}: {name} names {key}, which its volume lacks"
                );
            }
            // Its command: lanyard or lanyard-runner with a real subcommand and real flags.
            let mut argv = strings(&container["command"]);
            argv.extend(strings(&container["args"]));
            let image = container["image"].as_str().unwrap();
            let bin = if image.contains("agent") {
                "lanyard-runner"
            } else {
                "lanyard"
            };
            let (bin, args) = if argv.first().is_some_and(|a| a.ends_with("lanyard-runner")) {
                ("lanyard-runner", argv[1..].to_vec())
            } else {
                (bin, argv)
            };
            let upto: Vec<String> = args.iter().take_while(|a| *a != "--").cloned().collect();
            assert!(accepts(bin, &upto), "{file}: {bin} {upto:?}");
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                if let Some(path) = container[probe]["httpGet"]["path"].as_str() {
                    let port = container[probe]["httpGet"]["port"].as_str().unwrap();
                    let ports = container["ports"].as_vec().unwrap();
                    assert!(
                        ports.iter().any(|p| p["name"].as_str() == Some(port)),
                        "{port}"
                    );
                    probes.push((probe, path.to_string()));
                }
            }
        }
    }
    assert_eq!(
        probes,
        [
            ("startupProbe", "/healthz".to_string()),
            ("readinessProbe", "/readyz".to_string()),
            ("livenessProbe", "/healthz".to_string())
        ]
    );
    for (_, path) in probes {
        let r = app.get(&path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} is a real route that answers");
    }
    // Every selector finds the server's pods.
    let deployment = &docs
        .iter()
        .find(|(_, d)| d["kind"].as_str() == Some("Deployment"))
        .unwrap()
        .1;
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (file, doc) in &docs {
        let selector = match doc["kind"].as_str().unwrap() {
            "Service" => &doc["spec"]["selector"],
            "PodDisruptionBudget" => &doc["spec"]["selector"]["matchLabels"],
            "NetworkPolicy" => &doc["spec"]["podSelector"]["matchLabels"],
            _ => continue,
        };
        for (k, v) in selector.as_hash().unwrap() {
            assert_eq!(&labels[k.as_str().unwrap()], v, "{file}: selector {k:?}");
        }
    }
    assert!(!secrets.is_empty());
}

/// A forgotten placeholder stops start-up instead of becoming a secret everyone knows.
#[test]
fn every_placeholder_in_the_example_secrets_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let docs = manifests();
    let value = |secret: &str, key: &str| -> String {
        let doc = &docs
            .iter()
            .find(|(_, d)| {
                d["kind"].as_str() == Some("Secret")
                    && d["metadata"]["name"].as_str() == Some(secret)
            })
            .unwrap()
            .1;
        doc["stringData"][key].as_str().unwrap().to_string()
    };
    let file = |key: &str, contents: &str| {
        let path = dir.path().join(key);
        lanyard_testkit::write_private(&path, contents);
        path.display().to_string()
    };
    for (key, variable) in [
        ("jwt-secret", "LANYARD_JWT_SECRET_FILE"),
        ("encryption-key", "LANYARD_ENCRYPTION_KEY_FILE"),
        ("admin-token", "LANYARD_ADMIN_TOKEN_FILE"),
    ] {
        let path = file(key, &value("lanyard-secrets", key));
        let env = std::collections::BTreeMap::from([(variable.to_string(), path)]);
        let loaded = lanyard_server::config::Config::load(&Default::default(), &env);
        assert!(loaded.is_err(), "the {key} placeholder was accepted");
    }
    for key in ["client-secret", "webhook-secret"] {
        let path = file(key, &value("lanyard-github", key));
        let read = lanyard_server::broker::read_secret(key, "github.com", Path::new(&path));
        let e = read.unwrap_err().to_string();
        assert!(e.contains("placeholder"), "{key}: {e}");
    }
}
