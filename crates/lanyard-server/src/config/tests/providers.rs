//! `[[gitlab]]`, `[[oauth2]]` and `[[secret]]` (CONTRACT §14): read from the file, with defaults,
//! and every rule of the contract refused with a message naming what broke it.

use super::{env, write};
use crate::config::{Config, Flags, DEFAULT_GITLAB_SCOPES};

const OAUTH2: &str = r#"
[[oauth2]]
name = "google"
authorize_url = "https://accounts.google.com/o/oauth2/v2/auth"
token_url = "https://oauth2.googleapis.com/token/"
revoke_url = "https://oauth2.googleapis.com/revoke"
client_id = "id"
client_secret_file = "/etc/lanyard/google"
scopes = ["openid", "email"]
authorize_params = { access_type = "offline", prompt = "consent" }
"#;

const SECRET: &str = r#"
[[secret]]
name = "jira"
fields = ["url", "email", "api_token"]
secret_fields = ["api_token"]
"#;

fn load(text: &str) -> Result<Config, String> {
    let dir = tempfile::TempDir::new().unwrap();
    let flags = Flags {
        config: Some(write(&dir, text)),
        ..Flags::default()
    };
    Config::load(&flags, &env(&[]))
        .map(|l| l.config)
        .map_err(|e| e.to_string())
}

#[test]
fn providers_are_read_with_their_defaults() {
    let text = format!("[[gitlab]]\nhost = \"GitLab.example.com\"\n{OAUTH2}{SECRET}");
    let config = load(&text).unwrap();
    let gitlab = &config.gitlab[0];
    assert_eq!(gitlab.host.as_str(), "gitlab.example.com");
    assert_eq!(gitlab.api_url, "https://gitlab.example.com/api/v4");
    assert_eq!(gitlab.web_url, "https://gitlab.example.com");
    assert_eq!(gitlab.scopes, DEFAULT_GITLAB_SCOPES);
    assert!(
        gitlab.oauth.is_none(),
        "no client_id: no OAuth connect flow"
    );
    let google = &config.oauth2[0];
    assert_eq!(google.token_url, "https://oauth2.googleapis.com/token");
    assert_eq!(google.authorize_params["access_type"], "offline");
    assert!(!google.refresh_revokes_previous);
    let jira = &config.secrets[0];
    assert_eq!(jira.fields, ["url", "email", "api_token"]);
    assert!(jira.secret_fields.contains("api_token") && jira.secret_fields.len() == 1);
}

#[test]
fn each_rule_of_the_contract_is_refused_naming_what_broke_it() {
    let gitlab = |extra: &str| format!("[[gitlab]]\nhost = \"gitlab.test\"\n{extra}");
    for (text, needle) in [
        (format!("{OAUTH2}{}", OAUTH2), "\"google\" is used twice"),
        (
            format!("{OAUTH2}{}", SECRET.replace("jira", "google")),
            "\"google\" is used twice",
        ),
        (
            SECRET.replace("jira", "gitlab"),
            "\"gitlab\" is a provider kind",
        ),
        (SECRET.replace("jira", "Jira!"), "must be 1 to 32 of a-z"),
        (
            SECRET.replace(
                "secret_fields = [\"api_token\"]",
                "secret_fields = [\"token\"]",
            ),
            "\"token\" of jira is not one of its fields",
        ),
        (
            SECRET.replace("\"url\", ", "\"url\", \"url\", "),
            "named once",
        ),
        (format!("{SECRET}colour = \"blue\"\n"), "colour"),
        (
            OAUTH2.replace(
                "https://oauth2.googleapis.com/token/",
                "oauth2.googleapis.com",
            ),
            "token_url of google",
        ),
        (
            OAUTH2.replace("prompt = \"consent\"", "state = \"x\""),
            "may not set \"state\"",
        ),
        (gitlab("client_id = \"x\"\n"), "go together"),
        (
            gitlab("scopes = [\"read_repository\"]\n"),
            "must include read_api",
        ),
        (
            SECRET.replace("\"email\", ", "\"api-token\", "),
            "named once",
        ),
        (
            OAUTH2.replace(
                "https://oauth2.googleapis.com/token/",
                "http://oauth2.example.com/token",
            ),
            "http:// only on localhost",
        ),
        (gitlab("") + &gitlab(""), "gitlab.test is configured twice"),
        (
            format!("[[github]]\nhost = \"gitlab.test\"\n{}", gitlab("")),
            "is a [[github]] host too",
        ),
        (
            gitlab("").replace("gitlab.test", "https://gitlab.test"),
            "bare host",
        ),
    ] {
        let err = load(&text).unwrap_err();
        assert!(err.contains(needle), "{needle}: {err}\n{text}");
    }
}
