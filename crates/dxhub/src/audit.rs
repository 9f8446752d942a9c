//! `dxhub audit …`: check and read the hash-chained audit log; and [`CliAudit`], how the
//! command line records its own actions in it (actor kind `cli`, actor the OS user).
//!
//! - `dxhub audit verify`: exit 0 and `audit chain intact: N entries`, or exit 1 naming
//!   the first entry that breaks the chain;
//! - `dxhub audit list [--actor A] [--action X] [--object ID] [--limit N] [--json]`.

use std::process::ExitCode;

use clap::Subcommand;
use dxhub_store::{AuditFilter, Catalog, NewAuditEntry};

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain: detects altered and deleted entries.
    Verify,
    /// Show entries, newest first.
    List {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// Object id (Study Instance UID, login, device serial …).
        #[arg(long)]
        object: Option<String>,
        /// Only entries with an id below this (the next page).
        #[arg(long)]
        before_id: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

/// The outcome recorded for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn of<T, E>(r: &Result<T, E>) -> Self {
        if r.is_ok() {
            Self::Success
        } else {
            Self::Failure
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Records actions of the command line in the audit log.
#[derive(Debug, Clone)]
pub struct CliAudit {
    /// The OS user running the command (`$USER`), or `cli`.
    pub actor: String,
}

impl CliAudit {
    pub fn from_env() -> Self {
        let actor = std::env::var("USER")
            .ok()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "cli".to_owned());
        Self { actor }
    }

    /// Append one entry. An action whose entry cannot be written is reported as failed:
    /// nothing the CLI does may go unrecorded silently.
    pub async fn record(
        &self,
        catalog: &dyn Catalog,
        action: &str,
        institution_id: Option<i64>,
        object: Option<(&str, &str)>,
        outcome: Outcome,
    ) -> anyhow::Result<()> {
        catalog
            .append_audit(&NewAuditEntry {
                actor_kind: "cli".to_owned(),
                actor: self.actor.clone(),
                institution_id,
                action: action.to_owned(),
                object_kind: object.map(|(kind, _)| kind.to_owned()),
                object_id: object.map(|(_, id)| id.to_owned()),
                outcome: outcome.as_str().to_owned(),
                client: Some("cli".to_owned()),
                request_id: None,
            })
            .await
            .map_err(|e| anyhow::anyhow!(e).context("cannot write the audit log"))?;
        Ok(())
    }
}

/// What `dxhub audit verify` prints, and whether the chain is intact.
pub async fn verify(catalog: &dyn Catalog) -> anyhow::Result<(bool, String)> {
    let v = catalog.verify_audit_chain().await?;
    Ok(match v.first_bad_id {
        None => (true, format!("audit chain intact: {} entries", v.entries)),
        Some(id) => (
            false,
            format!(
                "audit chain broken at entry {id}: {} ({} entries checked)",
                v.problem.as_deref().unwrap_or("unknown problem"),
                v.entries
            ),
        ),
    })
}

pub async fn run(catalog: &dyn Catalog, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let audit = CliAudit::from_env();
    match command {
        AuditCommand::Verify => {
            let (intact, message) = verify(catalog).await?;
            let outcome = if intact {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            audit
                .record(catalog, "audit.verify", None, None, outcome)
                .await?;
            if intact {
                println!("{message}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{message}");
                Ok(ExitCode::FAILURE)
            }
        }
        AuditCommand::List {
            actor,
            action,
            object,
            before_id,
            limit,
            json,
        } => {
            let list = catalog
                .list_audit(&AuditFilter {
                    actor,
                    action,
                    object_id: object,
                    before_id,
                    limit: Some(limit),
                    ..Default::default()
                })
                .await;
            audit
                .record(catalog, "audit.list", None, None, Outcome::of(&list))
                .await?;
            let list = list?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<8} {:<17} {:<6} {:<16} {:<8} {:<16} {:<40} OUTCOME",
                    "ID", "AT_US", "KIND", "ACTOR", "INST", "ACTION", "OBJECT"
                );
                for e in list {
                    println!(
                        "{:<8} {:<17} {:<6} {:<16} {:<8} {:<16} {:<40} {}",
                        e.id,
                        e.at,
                        e.actor_kind,
                        e.actor,
                        e.institution_id
                            .map(|i| i.to_string())
                            .unwrap_or_else(|| "-".to_owned()),
                        e.action,
                        match (&e.object_kind, &e.object_id) {
                            (Some(k), Some(id)) => format!("{k}:{id}"),
                            (None, Some(id)) => id.clone(),
                            _ => "-".to_owned(),
                        },
                        e.outcome
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxhub_store::{CatalogOptions, SqlCatalog};

    #[tokio::test]
    async fn verify_reports_intact_chains_and_records_itself() {
        let c = SqlCatalog::connect("sqlite::memory:", CatalogOptions::default())
            .await
            .expect("connect");
        c.migrate().await.expect("migrate");
        let (ok, msg) = verify(&c).await.expect("verify");
        assert!(ok);
        assert_eq!(msg, "audit chain intact: 0 entries");
        let cli = CliAudit {
            actor: "ops".into(),
        };
        cli.record(&c, "user.list", None, None, Outcome::Success)
            .await
            .expect("record");
        cli.record(
            &c,
            "device.add",
            Some(1),
            Some(("device", "S1")),
            Outcome::Failure,
        )
        .await
        .expect("record");
        let (ok, msg) = verify(&c).await.expect("verify");
        assert!(ok);
        assert_eq!(msg, "audit chain intact: 2 entries");
        let log = c.list_audit(&AuditFilter::default()).await.expect("list");
        assert_eq!(log[0].object_kind.as_deref(), Some("device"));
        assert_eq!(log[0].object_id.as_deref(), Some("S1"));
        assert_eq!(log[0].outcome, "failure");
        assert_eq!(log[1].actor, "ops");
    }
}
