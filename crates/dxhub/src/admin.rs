//! `dxhub admin …`: bootstrap management of the alliance, institutions and DICOM senders,
//! and of users, tokens and devices (in `crate::users`).
//! The flags here are relied on by scripts; keep them.

use crate::config::Config;
use crate::serve::open_migrated_catalog;
use crate::table::cell;
use anyhow::Context;
use clap::Subcommand;
use dxhub_core::InstitutionLevel;
use dxhub_store::NewInstitution;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Alliances (医共体).
    Alliance {
        #[command(subcommand)]
        command: AllianceCommand,
    },
    /// Member institutions.
    Institution {
        #[command(subcommand)]
        command: InstitutionCommand,
    },
    /// DICOM senders (calling AE titles) of an institution.
    Ae {
        #[command(subcommand)]
        command: AeCommand,
    },
    /// Users (add with --password-stdin, list).
    User {
        #[command(subcommand)]
        command: crate::users::UserCommand,
    },
    /// Bearer tokens for scripts and service accounts.
    Token {
        #[command(subcommand)]
        command: crate::users::TokenCommand,
    },
    /// ECG devices and clinic gateways (upload tokens).
    Device {
        #[command(subcommand)]
        command: crate::users::DeviceCommand,
    },
    /// Readers' sealed SM2 signing keys.
    SigningKeys {
        #[command(subcommand)]
        command: SigningKeysCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum SigningKeysCommand {
    /// Re-seal every private signing key under the current KEK (`reports.kek`), opening
    /// each with the KEK that sealed it (`reports.previous_keks`): the KEK rotation step.
    Reseal,
    /// List signing keys (public part, owner, KEK id, revoked).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AllianceCommand {
    Add {
        name: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum InstitutionCommand {
    Add {
        #[arg(long)]
        alliance: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        level: InstitutionLevel,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        population: Option<i64>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AeCommand {
    Add {
        #[arg(long)]
        institution: String,
        #[arg(long = "ae-title")]
        ae_title: String,
        /// Only accept this AE title from this host (IP address or name).
        #[arg(long)]
        host: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(cfg: &Config, command: AdminCommand) -> anyhow::Result<ExitCode> {
    let catalog = open_migrated_catalog(cfg).await?;
    match command {
        AdminCommand::User { command } => crate::users::run_user(&*catalog, command).await?,
        AdminCommand::Token { command } => crate::users::run_token(&*catalog, command).await?,
        AdminCommand::SigningKeys { command } => match command {
            SigningKeysCommand::Reseal => {
                let ring = cfg.reports.kek_ring(&cfg.data_dir)?;
                let (mut resealed, mut current) = (0, 0);
                for k in catalog.list_signing_keys(None).await? {
                    if k.kek_id == ring.current.id() {
                        current += 1;
                        continue;
                    }
                    let old = ring.get(&k.kek_id).with_context(|| {
                        format!(
                            "key {} of {} is sealed under KEK {}: add it to reports.previous_keks",
                            k.id, k.login, k.kek_id
                        )
                    })?;
                    let secret = old
                        .open(&k.sealed_secret, k.user_id, &k.public_key)
                        .with_context(|| format!("opening key {} of {}", k.id, k.login))?;
                    let sealed = ring.current.seal(
                        &secret,
                        k.user_id,
                        &k.public_key,
                        &mut rand::rngs::OsRng,
                    );
                    if catalog
                        .reseal_signing_key(k.id, &k.kek_id, &sealed, ring.current.id())
                        .await?
                    {
                        resealed += 1;
                    }
                }
                println!(
                    "{resealed} key(s) re-sealed under KEK {}; {current} already were",
                    ring.current.id()
                );
            }
            SigningKeysCommand::List { json } => {
                let keys = catalog.list_signing_keys(None).await?;
                if json {
                    print_json(&keys)?;
                } else {
                    for k in keys {
                        println!(
                            "{}\t{}\t{}\tkek {}\t{}",
                            k.id,
                            k.login,
                            k.fingerprint,
                            k.kek_id,
                            if k.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "active"
                            }
                        );
                    }
                }
            }
        },
        AdminCommand::Device { command } => crate::users::run_device(&*catalog, command).await?,
        AdminCommand::Alliance {
            command: AllianceCommand::Add { name },
        } => {
            let a = catalog.add_alliance(&name).await?;
            dxhub_api::reports::seed_defaults(&*catalog, a.id).await?;
            println!("alliance {} added (id {})", a.name, a.id);
        }
        AdminCommand::Alliance {
            command: AllianceCommand::List { json },
        } => {
            let list = catalog.list_alliances().await?;
            if json {
                print_json(&list)?;
            } else {
                println!("{:<6} NAME", "ID");
                for a in list {
                    println!("{:<6} {}", a.id, a.name);
                }
            }
        }
        AdminCommand::Institution {
            command:
                InstitutionCommand::Add {
                    alliance,
                    name,
                    level,
                    parent,
                    population,
                },
        } => {
            let i = catalog
                .add_institution(&NewInstitution {
                    alliance,
                    name,
                    level,
                    parent,
                    population,
                })
                .await?;
            println!(
                "institution {} ({}) added to {} (id {})",
                i.name, i.level, i.alliance_name, i.id
            );
        }
        AdminCommand::Institution {
            command: InstitutionCommand::List { json },
        } => {
            let list = catalog.list_institutions().await?;
            if json {
                print_json(&list)?;
            } else {
                println!(
                    "{:<6} {:<24} {:<9} {:<24} {:<24} POPULATION",
                    "ID", "NAME", "LEVEL", "ALLIANCE", "PARENT"
                );
                for i in list {
                    println!(
                        "{:<6} {} {:<9} {} {} {}",
                        i.id,
                        cell(&i.name, 24),
                        i.level.as_str(),
                        cell(&i.alliance_name, 24),
                        cell(i.parent_name.as_deref().unwrap_or("-"), 24),
                        i.population
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
        AdminCommand::Ae {
            command:
                AeCommand::Add {
                    institution,
                    ae_title,
                    host,
                },
        } => {
            let ae = catalog
                .add_ae_title(&institution, &ae_title, host.as_deref())
                .await?;
            println!(
                "AE title {} added for {}{}",
                ae.ae_title,
                ae.institution_name,
                ae.host
                    .as_deref()
                    .map(|h| format!(" (host {h})"))
                    .unwrap_or_default()
            );
        }
        AdminCommand::Ae {
            command: AeCommand::List { json },
        } => {
            let list = catalog.list_ae_titles().await?;
            if json {
                print_json(&list)?;
            } else {
                println!("{:<17} {:<24} HOST", "AE TITLE", "INSTITUTION");
                for a in list {
                    println!(
                        "{:<17} {} {}",
                        a.ae_title,
                        cell(&a.institution_name, 24),
                        a.host.as_deref().unwrap_or("any")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
