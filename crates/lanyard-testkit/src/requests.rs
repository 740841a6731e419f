//! The calls tests make again and again: connect an installation, start a session, read JSON,
//! fetch a credential.

use crate::{TestApp, TestTeam, ADMIN_TOKEN};

impl TestApp {
    /// Binds an App installation to the team as a platform does, through the admin API (a team
    /// itself must prove the installation through the installation flow).
    pub async fn connect_installation(
        &self,
        team: &TestTeam,
        host: &str,
        owner: &str,
        installation_id: u64,
    ) -> reqwest::Response {
        self.post(&format!("/admin/v1/teams/{}/github/connections", team.id))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"host": host, "owner": owner, "installation_id": installation_id}))
            .send()
            .await
            .expect("request")
    }

    /// `POST /v1/sessions`; returns `(session_id, runner_token)` and panics unless 201.
    pub async fn start_session(&self, team: &TestTeam, repos: &[String]) -> (String, String) {
        let r = self
            .post("/v1/sessions")
            .bearer_auth(&team.api_key)
            .json(&serde_json::json!({ "repos": repos }))
            .send()
            .await
            .expect("request");
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(status, 201, "session not created: {body}");
        (
            body["session_id"].as_str().unwrap().to_string(),
            body["runner_token"].as_str().unwrap().to_string(),
        )
    }

    /// `DELETE /v1/sessions/{id}` with the team's key; returns the body and panics unless 200.
    pub async fn stop_session(&self, team: &TestTeam, session_id: &str) -> serde_json::Value {
        let r = self
            .delete(&format!("/v1/sessions/{session_id}"))
            .bearer_auth(&team.api_key)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(status, 200, "session not stopped: {body}");
        body
    }

    /// `GET path` with a bearer credential, expecting a JSON body (any status).
    pub async fn get_json(&self, path: &str, bearer: &str) -> serde_json::Value {
        let r = self
            .get(path)
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request");
        r.json().await.expect("a JSON body")
    }

    /// `GET /v1/sessions/{id}/credentials/github` with the runner token.
    pub async fn fetch_credential(
        &self,
        session_id: &str,
        runner_token: &str,
        query: &str,
    ) -> reqwest::Response {
        self.get(&format!(
            "/v1/sessions/{session_id}/credentials/github{query}"
        ))
        .bearer_auth(runner_token)
        .send()
        .await
        .expect("request")
    }
}
