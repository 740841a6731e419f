//! The server's modules form layers, and a module only uses the layers below it: no module cycle
//! can form, and a newcomer can read the code top to bottom. This test reads the sources and
//! fails on any `crate::x` reference that points sideways or up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first. A module may use only modules of strictly lower layers.
const LAYERS: &[&[&str]] = &[
    // What the operator asked for.
    &["config"],
    // Foundations: no knowledge of the domain.
    &[
        "crypto",
        "jwt",
        "mailer",
        "metrics",
        "redis_conn",
        "telemetry",
    ],
    // Built from configuration: secrets and rate limits.
    &["secrets", "ratelimit"],
    // The credential broker (its own crate, re-exported) and the GitHub hosts it is handed.
    &["broker", "hosts"],
    // The one value everything calls through.
    &["services"],
    // What operations mean.
    &["domain"],
    // Who calls the domain: HTTP handlers and background workers.
    &["http", "workers"],
    // Assembly: the running server, then the command line.
    &["server"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules named by `crate::…` paths in `text`, outside comments.
fn crate_references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let preceded_by_ident = rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
            rest = &rest[i + "crate::".len()..];
            if preceded_by_ident {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn modules_only_use_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = BTreeMap::new();
    let mut modules_seen = 0;
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        modules_seen += 1;
        let own = layer_of(&top)
            .unwrap_or_else(|| panic!("module `{top}` is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(&file).unwrap();
        for used in crate_references(&text) {
            if used == top {
                continue;
            }
            let Some(theirs) = layer_of(&used) else {
                continue; // an item of the crate root, such as a re-export
            };
            if theirs >= own {
                violations
                    .entry(format!("{}", relative.display()))
                    .or_insert_with(Vec::new)
                    .push(format!(
                        "uses crate::{used} (layer {theirs}, its own is {own})"
                    ));
            }
        }
    }
    assert!(modules_seen > 20, "the sources were read");
    assert!(
        violations.is_empty(),
        "modules using their own layer or a higher one:\n{violations:#?}"
    );
}

#[test]
fn the_reader_finds_references_and_skips_comments() {
    let text = "use crate::services::Services;\n// crate::cli is only mentioned\n\
                let x = crate::domain::e2e::reap; $crate::metrics";
    assert_eq!(crate_references(text), ["services", "domain"]);
}
