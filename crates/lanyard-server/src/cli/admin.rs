//! `lanyard admin …`: operator commands. The operator is trusted: they act on the database
//! directly, through the same domain functions as the HTTP routes.

use lanyard_core::{Actor, Email, TeamName, Tier};
use lanyard_store::NewTeam;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::AdminCommand;
use crate::domain::accounts;
use crate::domain::connections::{self, Connect, Trust};
use crate::services::Services;

#[derive(Debug, Serialize)]
struct CreatedTeamView {
    team_id: Uuid,
    api_key: String,
    tier: Tier,
}

#[derive(Debug, Serialize)]
struct ConnectionView {
    connection_id: Uuid,
    host: String,
    owner: String,
    kind: lanyard_store::ConnectionKind,
    installation_id: Option<i64>,
}

/// A parsed operator command: every argument is checked before the database is opened.
#[derive(Debug)]
pub(super) enum Action {
    CreateTeam(NewTeam),
    ConnectGithub { team: Uuid, connect: Connect },
}

pub(super) fn parse(command: AdminCommand) -> anyhow::Result<Action> {
    Ok(match command {
        AdminCommand::CreateTeam {
            name,
            tier,
            test_cohort,
            email,
        } => {
            let name = TeamName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let tier: Tier = tier.parse().map_err(|e| anyhow::anyhow!("--tier: {e}"))?;
            let primary_user = email
                .map(|e| Email::parse(&e).map_err(|err| anyhow::anyhow!("--email: {err}")))
                .transpose()?;
            Action::CreateTeam(NewTeam {
                name,
                tier,
                is_test_cohort: test_cohort,
                primary_user,
                external_id: None,
                notification_email: None,
                actor: Actor::operator(),
                extra_audit: vec![],
            })
        }
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
                        .map_err(|e| anyhow::anyhow!("--pat-file {}: {e}", path.display()))
                })
                .transpose()?;
            let connect = Connect::parse(&host, &owner, installation_id, pat)?;
            Action::ConnectGithub { team, connect }
        }
    })
}

pub(super) async fn run(svc: &Services, action: Action) -> anyhow::Result<()> {
    match action {
        Action::CreateTeam(input) => {
            let created = accounts::create_team(svc, &input).await?;
            print_json(&CreatedTeamView {
                team_id: created.team.id,
                api_key: created.api_key.expose_secret().to_string(),
                tier: created.team.tier,
            })
        }
        Action::ConnectGithub { team, connect } => {
            if svc.store().get_team(team).await?.is_none() {
                anyhow::bail!("--team: no team {team}");
            }
            let record =
                connections::connect(svc, team, connect, Trust::Operator, &Actor::operator())
                    .await?;
            print_json(&ConnectionView {
                connection_id: record.id,
                host: record.host,
                owner: record.owner.to_string(),
                kind: record.kind,
                installation_id: record.installation_id,
            })
        }
    }
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
