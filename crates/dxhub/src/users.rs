//! `dxhub admin user|token|device …`: scriptable bootstrap of identities. The flags are
//! relied on by deployment scripts and monitoring; keep them:
//!
//! - `dxhub admin user add --institution NAME --login L --role ROLE --password-stdin`
//! - `dxhub admin user list [--json]`
//! - `dxhub admin token issue --login L [--ttl 1h]` prints a bearer token
//! - `dxhub admin device add --institution NAME --serial S [--model M]` prints the
//!   device's upload token
//! - `dxhub admin device list [--json]`
//!
//! Every command appends an audit entry with actor kind `cli` and the OS user as actor.

use crate::table::cell;
use std::io::Read;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use dxhub_core::Role;
use dxhub_core::password_policy::check_password;
use dxhub_store::secrets::{hash_password, hash_token, new_device_token, new_session_token};
use dxhub_store::{Catalog, Device, NewDevice, NewSession, NewUser, User};

use crate::audit::{CliAudit, Outcome};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (one line).
    Add {
        #[arg(long)]
        institution: String,
        #[arg(long)]
        login: String,
        /// clinic_tech, clinic_doctor, reader, senior_reader, group_admin, auditor or
        /// superadmin.
        #[arg(long)]
        role: Role,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a bearer token for a user (for scripts and service accounts: no second
    /// factor, no idle timeout).
    Issue {
        #[arg(long)]
        login: String,
        /// Lifetime: a number and a unit (s, m, h, d), e.g. 30m, 1h, 7d, 1h30m.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Register an ECG device or clinic gateway and print its upload token (once).
    Add {
        #[arg(long)]
        institution: String,
        #[arg(long)]
        serial: String,
        #[arg(long)]
        model: Option<String>,
        /// `ecg` (an acquiring ECG device; counts for the village coverage indicator) or
        /// `gateway` (a clinic gateway).
        #[arg(long, default_value = "ecg")]
        kind: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

/// `30m`, `1h`, `7d`, `1h30m`, `90s`: positive, units s, m, h, d.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "bad duration {s:?}: unknown unit {c:?} (use s, m, h, d)"
                ));
            }
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("bad duration {s:?}: a number must precede {c:?}"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {s:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "bad duration {s:?}: missing unit after {digits} (use s, m, h, d)"
        ));
    }
    if total == 0 {
        return Err("duration must be positive".to_owned());
    }
    Ok(Duration::from_secs(total))
}

/// The password from standard input's text: one line, its line ending removed.
pub fn password_from_input(input: &str) -> anyhow::Result<String> {
    let pw = input
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(input);
    if pw.contains('\n') {
        bail!("the password on standard input must be a single line");
    }
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw.to_owned())
}

/// Add a user after checking the password policy; audited (`user.add`).
pub async fn add_user(
    catalog: &dyn Catalog,
    audit: &CliAudit,
    institution: &str,
    login: &str,
    role: Role,
    password: String,
) -> anyhow::Result<User> {
    let institution_id = catalog
        .find_institution(institution)
        .await
        .ok()
        .flatten()
        .map(|i| i.id);
    let result = async {
        check_password(login, &password).context("password rejected")?;
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .context("password hashing task failed")??;
        let user = catalog
            .add_user(&NewUser {
                institution: institution.to_owned(),
                login: login.to_owned(),
                role,
                password_hash,
            })
            .await?;
        anyhow::Ok(user)
    }
    .await;
    audit
        .record(
            catalog,
            "user.add",
            institution_id,
            Some(("user", login)),
            Outcome::of(&result),
        )
        .await?;
    result
}

/// Issue a session token for `login` (no TOTP, no idle timeout, client `cli`); audited
/// (`token.issue`). Returns the token, which is stored only as its hash.
pub async fn issue_token(
    catalog: &dyn Catalog,
    audit: &CliAudit,
    login: &str,
    ttl: Duration,
) -> anyhow::Result<String> {
    let user = catalog.find_user_by_login(login).await?;
    let institution_id = user.as_ref().map(|u| u.institution_id);
    let result = async {
        let Some(user) = user else {
            bail!("no user with login {login:?}");
        };
        if user.disabled {
            bail!("user {login:?} is disabled");
        }
        let token = new_session_token();
        catalog
            .create_session(&NewSession {
                user_id: user.id,
                token_hash: hash_token(&token),
                ttl,
                idle_timeout: None,
                client: Some("cli".to_owned()),
                issued_by: dxhub_store::SESSION_ISSUED_BY_CLI.to_owned(),
            })
            .await?;
        Ok(token)
    }
    .await;
    audit
        .record(
            catalog,
            "token.issue",
            institution_id,
            Some(("user", login)),
            Outcome::of(&result),
        )
        .await?;
    result
}

/// Register a device; audited (`device.add`). Returns the device and its upload token.
pub async fn add_device(
    catalog: &dyn Catalog,
    audit: &CliAudit,
    institution: &str,
    serial: &str,
    model: Option<&str>,
    kind: &str,
) -> anyhow::Result<(Device, String)> {
    let token = new_device_token();
    let result = catalog
        .add_device(&NewDevice {
            kind: Some(kind.to_owned()),
            institution: institution.to_owned(),
            serial: serial.to_owned(),
            model: model.map(str::to_owned),
            token_hash: hash_token(&token),
        })
        .await
        .map_err(anyhow::Error::from);
    let institution_id = match &result {
        Ok(d) => Some(d.institution_id),
        Err(_) => catalog
            .find_institution(institution)
            .await
            .ok()
            .flatten()
            .map(|i| i.id),
    };
    audit
        .record(
            catalog,
            "device.add",
            institution_id,
            Some(("device", serial)),
            Outcome::of(&result),
        )
        .await?;
    result.map(|d| (d, token))
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn time(us: Option<i64>) -> String {
    us.map(|t| t.to_string()).unwrap_or_else(|| "-".to_owned())
}

pub async fn run_user(catalog: &dyn Catalog, command: UserCommand) -> anyhow::Result<()> {
    let audit = CliAudit::from_env();
    match command {
        UserCommand::Add {
            institution,
            login,
            role,
            password_stdin,
        } => {
            if !password_stdin {
                bail!("pass --password-stdin and write the password to standard input");
            }
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("cannot read the password from standard input")?;
            let password = password_from_input(&input)?;
            let u = add_user(catalog, &audit, &institution, &login, role, password).await?;
            println!(
                "user {} ({}) added to {} (id {})",
                u.login, u.role, u.institution_name, u.id
            );
        }
        UserCommand::List { json } => {
            let list = catalog.list_users().await;
            audit
                .record(catalog, "user.list", None, None, Outcome::of(&list))
                .await?;
            let list = list?;
            if json {
                print_json(&list)?;
            } else {
                println!(
                    "{:<6} {:<20} {:<14} {:<24} {:<5} {:<8} LOCKED_UNTIL",
                    "ID", "LOGIN", "ROLE", "INSTITUTION", "TOTP", "DISABLED"
                );
                for u in list {
                    println!(
                        "{:<6} {:<20} {:<14} {} {:<5} {:<8} {}",
                        u.id,
                        u.login,
                        u.role,
                        cell(&u.institution_name, 24),
                        if u.totp_enrolled { "yes" } else { "no" },
                        if u.disabled { "yes" } else { "no" },
                        time(u.locked_until)
                    );
                }
            }
        }
    }
    Ok(())
}

pub async fn run_token(catalog: &dyn Catalog, command: TokenCommand) -> anyhow::Result<()> {
    let audit = CliAudit::from_env();
    match command {
        TokenCommand::Issue { login, ttl } => {
            let token = issue_token(catalog, &audit, &login, ttl).await?;
            println!("{token}");
        }
    }
    Ok(())
}

pub async fn run_device(catalog: &dyn Catalog, command: DeviceCommand) -> anyhow::Result<()> {
    let audit = CliAudit::from_env();
    match command {
        DeviceCommand::Add {
            institution,
            serial,
            model,
            kind,
        } => {
            let (d, token) = add_device(
                catalog,
                &audit,
                &institution,
                &serial,
                model.as_deref(),
                &kind,
            )
            .await?;
            eprintln!(
                "device {} added to {} (id {}); its upload token is shown once:",
                d.serial, d.institution_name, d.id
            );
            println!("{token}");
        }
        DeviceCommand::List { json } => {
            let list = catalog.list_devices().await;
            audit
                .record(catalog, "device.list", None, None, Outcome::of(&list))
                .await?;
            let list = list?;
            if json {
                print_json(&list)?;
            } else {
                println!(
                    "{:<6} {:<20} {:<20} {:<24} {:<18} REVOKED_AT",
                    "ID", "SERIAL", "MODEL", "INSTITUTION", "LAST_SEEN_AT"
                );
                for d in list {
                    println!(
                        "{:<6} {:<20} {} {} {:<18} {}",
                        d.id,
                        d.serial,
                        cell(d.model.as_deref().unwrap_or("-"), 20),
                        cell(&d.institution_name, 24),
                        time(d.last_seen_at),
                        time(d.revoked_at)
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxhub_core::InstitutionLevel;
    use dxhub_store::{AuditFilter, CatalogOptions, NewInstitution, SqlCatalog};

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration(" 1h30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        for bad in [
            "",
            "1",
            "h",
            "1w",
            "0h",
            "-1h",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn password_input() {
        assert_eq!(
            password_from_input("Secret-pass1\n").ok().as_deref(),
            Some("Secret-pass1")
        );
        assert_eq!(
            password_from_input("Secret-pass1\r\n").ok().as_deref(),
            Some("Secret-pass1")
        );
        assert_eq!(
            password_from_input("Secret-pass1").ok().as_deref(),
            Some("Secret-pass1")
        );
        assert_eq!(
            password_from_input(" sp ace \n").ok().as_deref(),
            Some(" sp ace ")
        );
        assert!(password_from_input("a\nb\n").is_err());
        assert!(password_from_input("\n").is_err());
        assert!(password_from_input("").is_err());
    }

    async fn catalog() -> SqlCatalog {
        let c = SqlCatalog::connect("sqlite::memory:", CatalogOptions::default())
            .await
            .expect("connect");
        c.migrate().await.expect("migrate");
        c.add_alliance("A").await.expect("alliance");
        c.add_institution(&NewInstitution {
            alliance: "A".into(),
            name: "County".into(),
            level: InstitutionLevel::County,
            parent: None,
            population: None,
        })
        .await
        .expect("institution");
        c
    }

    fn cli() -> CliAudit {
        CliAudit {
            actor: "ops".into(),
        }
    }

    #[tokio::test]
    async fn bootstrap_commands_work_and_are_audited() {
        let c = catalog().await;
        let audit = cli();

        let u = add_user(
            &c,
            &audit,
            "County",
            "admin",
            Role::Superadmin,
            "Bootstrap-2026".into(),
        )
        .await
        .expect("add user");
        assert!(u.password_hash.starts_with("$argon2id$"));
        assert!(
            dxhub_store::secrets::verify_password("Bootstrap-2026", &u.password_hash)
                .expect("verify")
        );
        let weak = add_user(&c, &audit, "County", "li", Role::Reader, "short".into()).await;
        assert!(weak.is_err(), "password policy is enforced");
        assert!(c.find_user_by_login("li").await.expect("find").is_none());

        let token = issue_token(&c, &audit, "admin", Duration::from_secs(3600))
            .await
            .expect("token");
        assert!(token.starts_with("dxs_"));
        let s = c
            .find_session(&hash_token(&token))
            .await
            .expect("find")
            .expect("the token is a live session");
        assert_eq!(s.user_id, u.id);
        assert_eq!(s.idle_timeout_us, None);
        assert_eq!(s.client.as_deref(), Some("cli"));
        assert!(
            issue_token(&c, &audit, "ghost", Duration::from_secs(60))
                .await
                .is_err()
        );

        let (d, dtoken) = add_device(&c, &audit, "County", "ECG-1", Some("SE-12"), "ecg")
            .await
            .expect("device");
        assert!(dtoken.starts_with("dxd_"));
        let found = c
            .find_device_by_token_hash(&hash_token(&dtoken))
            .await
            .expect("find")
            .expect("device token works");
        assert_eq!(found.id, d.id);

        let log = c.list_audit(&AuditFilter::default()).await.expect("audit");
        let summary: Vec<(&str, &str, Option<&str>, &str)> = log
            .iter()
            .rev()
            .map(|e| {
                (
                    e.actor.as_str(),
                    e.action.as_str(),
                    e.object_id.as_deref(),
                    e.outcome.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("ops", "user.add", Some("admin"), "success"),
                ("ops", "user.add", Some("li"), "failure"),
                ("ops", "token.issue", Some("admin"), "success"),
                ("ops", "token.issue", Some("ghost"), "failure"),
                ("ops", "device.add", Some("ECG-1"), "success"),
            ]
        );
        assert!(log.iter().all(|e| e.actor_kind == "cli"));
        assert_eq!(log[0].institution_id, Some(d.institution_id));
        assert!(c.verify_audit_chain().await.expect("verify").is_intact());
    }
}
