//! `lanyard admin …`: operator commands. The operator is trusted: they act on the database
//! directly, through the same domain functions as the admin API (`domain::admin`), audited as
//! the operator.

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, Label, Tier};
use lanyard_store::TeamUpdate;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::failure::{arg, bad, domain};
use super::AdminCommand;
use crate::domain::admin::{self, parse_email, parse_external_id, parse_name, parse_tier};
use crate::domain::admin::{Provision, Provisioned};
use crate::domain::connections::Connect;
use crate::http::routes::admin::{AdminTeamView, DeletedTeam, IssuedKey};
use crate::http::routes::connections::ConnectionView;
use crate::services::Services;

#[derive(Debug, Serialize)]
struct CreatedTeamView {
    team_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    tier: Tier,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    /// Printed only as `false` (as the admin API's 200 does): a team with this external id
    /// existed, and no key was issued.
    #[serde(skip_serializing_if = "Clone::clone")]
    created: bool,
}

/// A parsed operator command: every argument is checked before the database is opened.
#[derive(Debug)]
pub(super) enum Action {
    CreateTeam(Provision),
    UpdateTeam { team: Uuid, update: TeamUpdate },
    IssueKey { team: Uuid, label: Label },
    DeleteTeam { team: Uuid },
    ConnectGithub { team: Uuid, connect: Connect },
    Workers { json: bool },
}

pub(super) fn parse(command: AdminCommand) -> anyhow::Result<Action> {
    Ok(match command {
        AdminCommand::CreateTeam {
            name,
            tier,
            test_cohort,
            email,
            external_id,
            notification_email,
        } => Action::CreateTeam(Provision {
            name: arg("name", parse_name(&name))?,
            tier: arg("tier", parse_tier(&tier))?,
            external_id: external_id
                .map(|e| arg("external-id", parse_external_id(&e)))
                .transpose()?,
            notification_email: notification_email
                .map(|e| arg("notification-email", parse_email(&e)))
                .transpose()?,
            is_test_cohort: test_cohort,
            primary_user: email.map(|e| arg("email", parse_email(&e))).transpose()?,
            actor: Actor::operator(),
        }),
        AdminCommand::UpdateTeam {
            team,
            name,
            tier,
            notification_email,
        } => {
            let update = TeamUpdate {
                name: name.map(|n| arg("name", parse_name(&n))).transpose()?,
                tier: tier.map(|t| arg("tier", parse_tier(&t))).transpose()?,
                notification_email: notification_email
                    .map(|e| match e.trim() {
                        "" => Ok(None),
                        e => arg("notification-email", parse_email(e)).map(Some),
                    })
                    .transpose()?,
            };
            if update.name.is_none() && update.tier.is_none() && update.notification_email.is_none()
            {
                return Err(bad(
                    "team",
                    "nothing to change: give --name, --tier or --notification-email",
                ));
            }
            Action::UpdateTeam { team, update }
        }
        AdminCommand::IssueKey { team, label } => Action::IssueKey {
            team,
            label: arg("label", Label::parse(&label))?,
        },
        AdminCommand::DeleteTeam { team } => Action::DeleteTeam { team },
        AdminCommand::ConnectGithub {
            team,
            host,
            owner,
            installation_id,
            pat_file,
        } => {
            let pat = pat_file
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .map(|s| SecretString::from(s.trim().to_string()))
                        .map_err(|e| format!("{}: {e}", path.display()))
                })
                .transpose();
            let pat = arg("pat-file", pat)?;
            let connect = Connect::parse(&host, &owner, installation_id, pat).map_err(domain)?;
            Action::ConnectGithub { team, connect }
        }
        AdminCommand::Workers { json } => Action::Workers { json },
    })
}

/// `--team`: no such team, for a command that names one that does not exist.
fn team_error(team: Uuid, e: admin::AdminError) -> anyhow::Error {
    match e {
        admin::AdminError::NotFound => bad("team", format!("no team {team}")),
        e => domain(e),
    }
}

pub(super) async fn run(svc: &Services, action: Action) -> anyhow::Result<()> {
    let operator = Actor::operator();
    match action {
        Action::CreateTeam(input) => {
            print_json(&match admin::provision(svc, input).await.map_err(domain)? {
                Provisioned::Created { team, api_key } => CreatedTeamView {
                    team_id: team.id,
                    api_key: Some(api_key.expose_secret().to_string()),
                    tier: team.tier,
                    external_id: team.external_id,
                    created: true,
                },
                Provisioned::Existing(team) => CreatedTeamView {
                    team_id: team.id,
                    api_key: None,
                    tier: team.tier,
                    external_id: team.external_id,
                    created: false,
                },
            })
        }
        Action::UpdateTeam { team, update } => {
            let t = admin::update(svc, team, update, &operator)
                .await
                .map_err(|e| team_error(team, e))?;
            print_json(&AdminTeamView::from(t))
        }
        Action::IssueKey { team, label } => {
            let (record, key) = admin::issue_key(svc, team, label, &operator)
                .await
                .map_err(|e| team_error(team, e))?;
            print_json(&IssuedKey {
                key_id: record.id,
                api_key: key.expose_secret().to_string(),
            })
        }
        Action::DeleteTeam { team } => {
            let deleted = admin::delete(svc, team, &operator)
                .await
                .map_err(|e| team_error(team, e))?;
            print_json(&DeletedTeam {
                team_id: team,
                sessions_stopped: deleted.sessions_stopped,
                team_deleted: true,
            })
        }
        Action::ConnectGithub { team, connect } => {
            let record = admin::connect(svc, team, connect, &operator)
                .await
                .map_err(|e| team_error(team, e))?;
            print_json(&ConnectionView::from(record))
        }
        Action::Workers { json } => print_workers(svc, json).await,
    }
}

#[derive(Debug, Serialize)]
struct WorkerView {
    worker: lanyard_core::Worker,
    last_run: Option<DateTime<Utc>>,
    /// `ok` or `error`; `null` before the first run.
    result: Option<String>,
    /// `null` before the first run: it runs as soon as a server starts.
    next_run: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct WorkerList {
    workers: Vec<WorkerView>,
}

/// Every worker of the registry with its row, if it has run.
async fn print_workers(svc: &Services, json: bool) -> anyhow::Result<()> {
    let rows = svc.store().worker_runs().await?;
    let workers: Vec<WorkerView> = lanyard_core::Worker::ALL
        .iter()
        .map(|&worker| {
            let row = rows.iter().find(|r| r.worker == worker.as_str());
            WorkerView {
                worker,
                last_run: row.and_then(|r| r.last_run_at),
                result: row.and_then(|r| r.last_result.clone()),
                next_run: row.map(|r| r.next_run_at),
                error: row.and_then(|r| r.last_error.clone()),
            }
        })
        .collect();
    if json {
        return print_json(&WorkerList { workers });
    }
    let when = |t: Option<DateTime<Utc>>, none: &str| {
        t.map_or_else(
            || none.to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    };
    println!(
        "{:<22} {:<21} {:<7} {:<21}",
        "WORKER", "LAST_RUN", "RESULT", "NEXT_RUN"
    );
    for w in workers {
        println!(
            "{:<22} {:<21} {:<7} {:<21}{}",
            w.worker.as_str(),
            when(w.last_run, "never"),
            w.result.as_deref().unwrap_or("-"),
            when(w.next_run, "at start"),
            w.error.map(|e| format!(" ({e})")).unwrap_or_default(),
        );
    }
    Ok(())
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
