//! The Kubernetes manifests: they parse, set real settings, probe real routes, mount what their
//! `_FILE` settings name, select the server's pods, and hold only placeholders Lanyard refuses.

use std::path::{Path, PathBuf};

use lanyard_server::config::known_variables;
use lanyard_testkit::TestApp;
use yaml_rust2::{Yaml, YamlLoader};

use crate::{accepts, root};

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
        let read = lanyard_server::hosts::read_secret(
            key,
            &lanyard_core::Host::parse("github.com").unwrap(),
            Path::new(&path),
        );
        let e = read.unwrap_err().to_string();
        assert!(e.contains("placeholder"), "{key}: {e}");
    }
}
