//! The identity and audit part of the catalog conformance suite (users, lock-out,
//! sessions, device tokens, the hash-chained audit log), run on every backend exactly as
//! `catalog_conformance.rs`: SQLite always, PostgreSQL when `DXHUB_TEST_PG_URL` names a
//! server; with `CI=true` a missing `DXHUB_TEST_PG_URL` fails the PostgreSQL tests.
//! Each test gets a fresh database and its URL, to tamper with rows behind the catalog.

use std::time::Duration;

use dxhub_core::{InstitutionLevel, Role};
use dxhub_store::catalog::Error;
use dxhub_store::identity::{LOCKOUT_DURATION, LOCKOUT_THRESHOLD};
use dxhub_store::secrets::{hash_token, new_device_token, new_session_token};
use dxhub_store::{
    AuditFilter, Catalog, NewAuditEntry, NewDevice, NewInstitution, NewSession, NewUser,
};
use sqlx::{AnyConnection, Connection, Executor};

mod common;
use common::{run_postgres, run_sqlite};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(|c, url| async move { super::suite::$name(&*c, &url).await })
                        .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(|c, url| async move { super::suite::$name(&*c, &url).await })
                        .await;
                }
            )*
        }
    };
}

conformance!(
    users_add_find_list,
    users_errors,
    lockout_after_repeated_failures,
    sessions_expire_idle_and_revoke,
    session_errors,
    devices_tokens_touch_and_revoke,
    audit_appends_and_lists,
    audit_log_refuses_update_and_delete,
    audit_verify_detects_a_modified_row,
    audit_verify_detects_a_rehashed_row,
    audit_verify_detects_deleted_rows,
    concurrent_appends_keep_the_chain_linear,
    an_append_the_database_refuses_fails_alone,
    totp_enrolment_is_confirmed,
    disable_user_revokes_sessions,
    session_issuer_is_recorded,
    set_user_role_and_password_revoke_sessions,
);

// ---------------------------------------------------------------- helpers

/// Run `sql` on the test database behind the catalog's back.
async fn raw(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let mut conn = AnyConnection::connect(url).await?;
    let result = conn.execute(sql).await.map(|_| ());
    let _ = conn.close().await;
    result
}

/// Run `sql` as an attacker with full database access would: first lifting the
/// append-only triggers of the audit log.
async fn tamper(url: &str, sql: &str) {
    let lift: &[&str] = if url.starts_with("sqlite:") {
        &[
            "DROP TRIGGER IF EXISTS audit_log_no_update",
            "DROP TRIGGER IF EXISTS audit_log_no_delete",
        ]
    } else {
        &["ALTER TABLE audit_log DISABLE TRIGGER USER"]
    };
    for stmt in lift {
        raw(url, stmt).await.expect("lift triggers");
    }
    raw(url, sql).await.expect("tamper");
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Alliance "A" with county "County" → township "Town".
async fn tenancy(c: &dyn Catalog) {
    c.add_alliance("A").await.expect("alliance");
    for (name, level, parent) in [
        ("County", InstitutionLevel::County, None),
        ("Town", InstitutionLevel::Township, Some("County")),
    ] {
        c.add_institution(&NewInstitution {
            alliance: "A".into(),
            name: name.into(),
            level,
            parent: parent.map(Into::into),
            population: None,
        })
        .await
        .expect("institution");
    }
}

fn new_user(institution: &str, login: &str, role: Role) -> NewUser {
    NewUser {
        institution: institution.into(),
        login: login.into(),
        role,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${login}"),
    }
}

fn session(user_id: i64, token: &str, ttl: Duration, idle: Option<Duration>) -> NewSession {
    NewSession {
        user_id,
        token_hash: hash_token(token),
        ttl,
        idle_timeout: idle,
        client: Some("127.0.0.1".into()),
        issued_by: "login".into(),
    }
}

fn entry(actor: &str, action: &str, object_id: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor_kind: "user".into(),
        actor: actor.into(),
        institution_id: Some(1),
        action: action.into(),
        object_kind: Some("study".into()),
        object_id: Some(object_id.into()),
        outcome: "success".into(),
        client: Some("10.0.0.7".into()),
        request_id: Some(format!("req-{object_id}")),
    }
}

async fn append_n(c: &dyn Catalog, n: usize) {
    for i in 0..n {
        c.append_audit(&entry("li.wei", "study.read", &format!("1.2.3.{i}")))
            .await
            .expect("append");
    }
}

// ---------------------------------------------------------------- the suite

mod suite {
    use super::*;

    pub async fn users_add_find_list(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "wang.fang", Role::ClinicDoctor))
            .await
            .expect("add user");
        assert!(u.id > 0 && u.created_at > 0);
        assert_eq!(u.institution_name, "Town");
        assert_eq!(u.role, Role::ClinicDoctor);
        assert_eq!(u.failed_logins, 0);
        assert_eq!(u.locked_until, None);
        assert!(!u.disabled && !u.totp_enrolled);
        let county = c
            .find_institution("County")
            .await
            .expect("find")
            .expect("county");
        assert_eq!(u.alliance_id, county.alliance_id);
        c.add_user(&new_user("County", "admin", Role::Superadmin))
            .await
            .expect("add superadmin");

        let found = c
            .find_user_by_login(" wang.fang ")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(found, u);
        assert_eq!(c.get_user(u.id).await.expect("get"), Some(u.clone()));
        assert_eq!(c.find_user_by_login("nobody").await.expect("find"), None);
        let logins: Vec<_> = c
            .list_users()
            .await
            .expect("list")
            .into_iter()
            .map(|u| (u.login, u.role))
            .collect();
        assert_eq!(
            logins,
            [
                ("admin".to_owned(), Role::Superadmin),
                ("wang.fang".to_owned(), Role::ClinicDoctor)
            ]
        );
        // secrets never serialise
        let json = serde_json::to_string(&u).expect("json");
        assert!(
            !json.contains("argon2") && !json.contains("password_hash"),
            "{json}"
        );
        assert!(json.contains(r#""role":"clinic_doctor""#), "{json}");
    }

    pub async fn users_errors(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        c.add_user(&new_user("Town", "li", Role::Reader))
            .await
            .expect("add");
        assert!(matches!(
            c.add_user(&new_user("County", "li", Role::Auditor)).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            c.add_user(&new_user("Nowhere", "zhao", Role::Reader)).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            c.add_user(&new_user("Town", "  ", Role::Reader)).await,
            Err(Error::Invalid(_))
        ));
        let mut no_hash = new_user("Town", "zhao", Role::Reader);
        no_hash.password_hash.clear();
        assert!(matches!(c.add_user(&no_hash).await, Err(Error::Invalid(_))));
        assert_eq!(c.list_users().await.expect("list").len(), 1);
        assert!(matches!(
            c.record_login_failure(999).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            c.reset_login_failures(999).await,
            Err(Error::NotFound(_))
        ));
    }

    pub async fn lockout_after_repeated_failures(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "li", Role::ClinicTech))
            .await
            .expect("add");
        let before = now_us();
        for n in 1..LOCKOUT_THRESHOLD {
            let f = c.record_login_failure(u.id).await.expect("failure");
            assert_eq!(f.failed_logins, n);
            assert_eq!(f.locked_until, None, "not locked after {n} failures");
        }
        let f = c.record_login_failure(u.id).await.expect("failure");
        let until = f.locked_until.expect("locked after the 5th failure");
        let lock = LOCKOUT_DURATION.as_micros() as i64;
        assert!(
            until >= before + lock && until <= now_us() + lock,
            "locked ~15 min"
        );
        assert_eq!(f.failed_logins, 0, "count restarts once locked");
        let stored = c.get_user(u.id).await.expect("get").expect("user");
        assert!(stored.is_locked(now_us()));
        assert!(!stored.is_locked(until));
        // a further failure while locked does not shorten the lock
        let again = c.record_login_failure(u.id).await.expect("failure");
        assert_eq!(again.locked_until, Some(until));
        assert_eq!(again.failed_logins, 1);

        c.reset_login_failures(u.id).await.expect("reset");
        let stored = c.get_user(u.id).await.expect("get").expect("user");
        assert_eq!((stored.failed_logins, stored.locked_until), (0, None));
        assert!(!stored.is_locked(now_us()));
        assert!(stored.updated_at >= u.updated_at);
    }

    pub async fn sessions_expire_idle_and_revoke(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "li", Role::Reader))
            .await
            .expect("add");
        let hour = Duration::from_secs(3600);

        let token = new_session_token();
        let s = c
            .create_session(&session(u.id, &token, hour, Some(hour)))
            .await
            .expect("create");
        assert_eq!(s.user_id, u.id);
        assert_eq!(s.token_hash, hash_token(&token));
        assert_eq!(s.expires_at - s.created_at, 3_600_000_000);
        assert_eq!(s.last_seen_at, s.created_at);
        assert_eq!(s.idle_timeout_us, Some(3_600_000_000));
        assert_eq!(s.client.as_deref(), Some("127.0.0.1"));
        let found = c
            .find_session(&hash_token(&token))
            .await
            .expect("find")
            .expect("active");
        assert_eq!(found, s);
        assert_eq!(
            c.find_session(&token).await.expect("find"),
            None,
            "by hash only"
        );

        c.touch_session(s.id).await.expect("touch");
        let touched = c
            .find_session(&hash_token(&token))
            .await
            .expect("find")
            .expect("active");
        assert!(touched.last_seen_at >= s.last_seen_at);

        c.revoke_session(s.id).await.expect("revoke");
        assert_eq!(
            c.find_session(&hash_token(&token)).await.expect("find"),
            None
        );
        c.revoke_session(s.id)
            .await
            .expect("revoking twice is fine");

        // expired
        let expired = new_session_token();
        c.create_session(&session(u.id, &expired, Duration::ZERO, None))
            .await
            .expect("create");
        assert_eq!(
            c.find_session(&hash_token(&expired)).await.expect("find"),
            None
        );

        // idle: a short idle timeout lapses, no idle timeout (script tokens) does not
        let idle = new_session_token();
        c.create_session(&session(u.id, &idle, hour, Some(Duration::from_millis(30))))
            .await
            .expect("create");
        let script = new_session_token();
        c.create_session(&session(u.id, &script, hour, None))
            .await
            .expect("create");
        assert!(
            c.find_session(&hash_token(&idle))
                .await
                .expect("find")
                .is_some()
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(
            c.find_session(&hash_token(&idle)).await.expect("find"),
            None
        );
        assert!(
            c.find_session(&hash_token(&script))
                .await
                .expect("find")
                .is_some()
        );
    }

    pub async fn session_errors(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "li", Role::Reader))
            .await
            .expect("add");
        let hour = Duration::from_secs(3600);
        let token = new_session_token();
        c.create_session(&session(u.id, &token, hour, None))
            .await
            .expect("create");
        assert!(matches!(
            c.create_session(&session(u.id, &token, hour, None)).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            c.create_session(&session(999, &new_session_token(), hour, None))
                .await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            c.touch_session(999).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            c.revoke_session(999).await,
            Err(Error::NotFound(_))
        ));
    }

    pub async fn devices_tokens_touch_and_revoke(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let token = new_device_token();
        let d = c
            .add_device(&NewDevice {
                kind: None,
                institution: "Town".into(),
                serial: "ECG-0001".into(),
                model: Some("Edan SE-1200".into()),
                token_hash: hash_token(&token),
            })
            .await
            .expect("add device");
        assert_eq!(d.institution_name, "Town");
        assert_eq!(d.serial, "ECG-0001");
        assert_eq!(d.model.as_deref(), Some("Edan SE-1200"));
        assert_eq!((d.last_seen_at, d.revoked_at), (None, None));
        let json = serde_json::to_string(&d).expect("json");
        assert!(
            !json.contains(&d.token_hash),
            "token hash is not serialised"
        );

        let found = c
            .find_device_by_token_hash(&hash_token(&token))
            .await
            .expect("find")
            .expect("active");
        assert_eq!(found, d);
        c.touch_device(d.id).await.expect("touch");
        let seen = c
            .find_device_by_token_hash(&hash_token(&token))
            .await
            .expect("find")
            .expect("active");
        assert!(seen.last_seen_at.is_some_and(|t| t >= d.created_at));

        assert!(matches!(
            c.add_device(&NewDevice {
                kind: None,
                institution: "County".into(),
                serial: "ECG-0001".into(),
                model: None,
                token_hash: hash_token(&new_device_token()),
            })
            .await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            c.add_device(&NewDevice {
                kind: None,
                institution: "Nowhere".into(),
                serial: "ECG-0002".into(),
                model: None,
                token_hash: hash_token(&new_device_token()),
            })
            .await,
            Err(Error::NotFound(_))
        ));
        let second = c
            .add_device(&NewDevice {
                kind: None,
                institution: "County".into(),
                serial: "ECG-0002".into(),
                model: Some(" ".into()),
                token_hash: hash_token(&new_device_token()),
            })
            .await
            .expect("second device");
        assert_eq!(second.model, None, "blank model is no model");

        c.revoke_device(d.id).await.expect("revoke");
        assert_eq!(
            c.find_device_by_token_hash(&hash_token(&token))
                .await
                .expect("find"),
            None
        );
        let list = c.list_devices().await.expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].serial, "ECG-0001");
        assert!(list[0].revoked_at.is_some(), "revoked devices stay listed");
        assert!(matches!(c.touch_device(999).await, Err(Error::NotFound(_))));
        assert!(matches!(
            c.revoke_device(999).await,
            Err(Error::NotFound(_))
        ));
    }

    pub async fn audit_appends_and_lists(c: &dyn Catalog, _url: &str) {
        let empty = c.verify_audit_chain().await.expect("verify");
        assert!(empty.is_intact());
        assert_eq!(empty.entries, 0);

        let first = c
            .append_audit(&entry("li.wei", "study.read", "1.2.3"))
            .await
            .expect("append");
        assert_eq!(first.id, 1);
        assert_eq!(first.prev_hash, "0".repeat(64));
        assert_eq!(first.hash, first.expected_hash());
        assert_eq!(first.request_id.as_deref(), Some("req-1.2.3"));
        let second = c
            .append_audit(&NewAuditEntry {
                actor_kind: "cli".into(),
                actor: "root".into(),
                action: "user.add".into(),
                outcome: "success".into(),
                ..Default::default()
            })
            .await
            .expect("append");
        assert_eq!(second.id, 2);
        assert_eq!(second.prev_hash, first.hash);
        assert_eq!(second.institution_id, None);
        append_n(c, 5).await;
        assert!(matches!(
            c.append_audit(&NewAuditEntry::default()).await,
            Err(Error::Invalid(_))
        ));

        let all = c.list_audit(&AuditFilter::default()).await.expect("list");
        assert_eq!(all.len(), 7);
        assert_eq!(all[0].id, 7, "newest first");
        // an auditor's alliance: filtered by the index
        let of_one = c
            .list_audit(&AuditFilter {
                institution_ids: Some(vec![1, 999]),
                ..Default::default()
            })
            .await
            .expect("list");
        let expected: Vec<_> = all
            .iter()
            .filter(|e| e.institution_id == Some(1))
            .cloned()
            .collect();
        assert!(!expected.is_empty() && expected.len() < all.len());
        assert_eq!(of_one, expected);
        for ids in [vec![], vec![999]] {
            let none = c
                .list_audit(&AuditFilter {
                    institution_ids: Some(ids),
                    ..Default::default()
                })
                .await
                .expect("list");
            assert!(none.is_empty());
        }
        let cli = c
            .list_audit(&AuditFilter {
                actor_kind: Some("cli".into()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(cli, std::slice::from_ref(&second));
        let by_object = c
            .list_audit(&AuditFilter {
                object_id: Some("1.2.3.4".into()),
                actor: Some("li.wei".into()),
                institution_id: Some(1),
                action: Some("study.read".into()),
                outcome: Some("success".into()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(by_object.len(), 1);
        assert_eq!(by_object[0].id, 7);
        let window = c
            .list_audit(&AuditFilter {
                since: Some(first.at),
                until: Some(second.at + 1),
                ..Default::default()
            })
            .await
            .expect("list");
        assert!(window.iter().any(|e| e.id == 1) && window.iter().any(|e| e.id == 2));
        // keyset pages
        let page1 = c
            .list_audit(&AuditFilter {
                limit: Some(3),
                ..Default::default()
            })
            .await
            .expect("page 1");
        let page2 = c
            .list_audit(&AuditFilter {
                limit: Some(3),
                before_id: page1.last().map(|e| e.id),
                ..Default::default()
            })
            .await
            .expect("page 2");
        let ids: Vec<i64> = page1.iter().chain(&page2).map(|e| e.id).collect();
        assert_eq!(ids, [7, 6, 5, 4, 3, 2]);

        let v = c.verify_audit_chain().await.expect("verify");
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 7);
    }

    pub async fn audit_log_refuses_update_and_delete(c: &dyn Catalog, url: &str) {
        append_n(c, 2).await;
        for sql in [
            "UPDATE audit_log SET actor = 'mallory' WHERE id = 1",
            "DELETE FROM audit_log WHERE id = 2",
            "DELETE FROM audit_log",
        ] {
            let err = raw(url, sql).await.expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        if url.starts_with("postgres") {
            let err = raw(url, "TRUNCATE audit_log").await.expect_err("truncate");
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        let v = c.verify_audit_chain().await.expect("verify");
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 2);
    }

    pub async fn audit_verify_detects_a_modified_row(c: &dyn Catalog, url: &str) {
        append_n(c, 4).await;
        tamper(url, "UPDATE audit_log SET actor = 'mallory' WHERE id = 2").await;
        let v = c.verify_audit_chain().await.expect("verify");
        assert_eq!(v.first_bad_id, Some(2), "{v:?}");
        assert!(v.problem.as_deref().is_some_and(|p| p.contains("hash")));
        assert!(!v.is_intact());
    }

    pub async fn audit_verify_detects_a_rehashed_row(c: &dyn Catalog, url: &str) {
        append_n(c, 4).await;
        // the attacker also recomputes the modified entry's own hash
        let mut e = c
            .list_audit(&AuditFilter {
                before_id: Some(3),
                limit: Some(1),
                ..Default::default()
            })
            .await
            .expect("list")
            .remove(0);
        assert_eq!(e.id, 2);
        e.outcome = "failure".into();
        let forged = e.expected_hash();
        tamper(
            url,
            &format!("UPDATE audit_log SET outcome = 'failure', hash = '{forged}' WHERE id = 2"),
        )
        .await;
        let v = c.verify_audit_chain().await.expect("verify");
        assert_eq!(
            v.first_bad_id,
            Some(3),
            "the next entry no longer links: {v:?}"
        );
        assert!(
            v.problem
                .as_deref()
                .is_some_and(|p| p.contains("prev_hash"))
        );
    }

    pub async fn audit_verify_detects_deleted_rows(c: &dyn Catalog, url: &str) {
        append_n(c, 5).await;
        tamper(url, "DELETE FROM audit_log WHERE id = 3").await;
        let v = c.verify_audit_chain().await.expect("verify");
        assert_eq!(v.first_bad_id, Some(4), "{v:?}");
        assert!(v.problem.as_deref().is_some_and(|p| p.contains("missing")));

        // deleting the first entries is found too
        tamper(url, "DELETE FROM audit_log WHERE id < 3").await;
        let v = c.verify_audit_chain().await.expect("verify");
        assert_eq!(v.first_bad_id, Some(4), "{v:?}");
        assert_eq!(v.entries, 1);

        // an entry deleted and the rest renumbered: the links break
        tamper(url, "UPDATE audit_log SET id = id - 3").await;
        let v = c.verify_audit_chain().await.expect("verify");
        assert_eq!(v.first_bad_id, Some(1), "{v:?}");
        assert!(
            v.problem
                .as_deref()
                .is_some_and(|p| p.contains("prev_hash"))
        );
    }

    pub async fn concurrent_appends_keep_the_chain_linear(c: &dyn Catalog, _url: &str) {
        // `c` is borrowed; concurrency through joined futures on one task still interleaves
        // the transactions on the pool.
        let writers = (0..8).map(|w| async move {
            for i in 0..10 {
                c.append_audit(&entry(&format!("w{w}"), "study.read", &format!("{w}.{i}")))
                    .await
                    .expect("append");
            }
        });
        futures::future::join_all(writers).await;
        let v = c.verify_audit_chain().await.expect("verify");
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 80);
    }

    /// Appends that arrive together (SQLite commits them in one transaction) while the
    /// database refuses one of them: it alone fails, the others are chained and durable.
    pub async fn an_append_the_database_refuses_fails_alone(c: &dyn Catalog, url: &str) {
        let refuse: &[&str] = if url.starts_with("sqlite:") {
            &["CREATE TRIGGER refuse_one BEFORE INSERT ON audit_log \
               WHEN NEW.object_id = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"]
        } else {
            &[
                "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN IF NEW.object_id = 'refused' THEN RAISE EXCEPTION 'refused'; \
                 END IF; RETURN NEW; END $$",
                "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION refuse_one()",
            ]
        };
        for stmt in refuse {
            raw(url, stmt).await.expect("refusing trigger");
        }
        let entries: Vec<NewAuditEntry> = (0..20)
            .map(|i| {
                let object = if i == 11 {
                    "refused".to_owned()
                } else {
                    format!("1.9.{i}")
                };
                entry("w", "study.read", &object)
            })
            .collect();
        let results = futures::future::join_all(entries.iter().map(|e| c.append_audit(e))).await;
        let failed: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(failed, [11], "{results:?}");
        let v = c.verify_audit_chain().await.expect("verify");
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 19);
    }

    pub async fn totp_enrolment_is_confirmed(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "totp.user", Role::Reader))
            .await
            .expect("add");
        assert_eq!(c.pending_totp_secret(u.id).await.expect("pending"), None);
        assert!(matches!(c.confirm_totp(u.id).await, Err(Error::Invalid(_))));
        c.set_totp_secret(u.id, "JBSWY3DPEHPK3PXP")
            .await
            .expect("set");
        assert_eq!(
            c.pending_totp_secret(u.id)
                .await
                .expect("pending")
                .as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
        let before = c.get_user(u.id).await.expect("get").expect("user");
        assert!(!before.totp_enrolled, "pending is not enrolled");
        c.confirm_totp(u.id).await.expect("confirm");
        let after = c.get_user(u.id).await.expect("get").expect("user");
        assert!(after.totp_enrolled);
        assert_eq!(after.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(c.pending_totp_secret(u.id).await.expect("pending"), None);
        assert!(matches!(
            c.set_totp_secret(9999, "X").await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            c.confirm_totp(9999).await,
            Err(Error::NotFound(_))
        ));

        // a lost phone: reset forgets the secret and ends the user's sessions
        let token = "lost-phone-session";
        let hour = Duration::from_secs(3600);
        c.create_session(&session(u.id, token, hour, Some(hour)))
            .await
            .expect("session");
        assert!(
            c.find_session(&hash_token(token))
                .await
                .expect("find")
                .is_some()
        );
        c.reset_totp(u.id).await.expect("reset");
        let reset = c.get_user(u.id).await.expect("get").expect("user");
        assert!(!reset.totp_enrolled, "reset un-enrols");
        assert_eq!(reset.totp_secret, None);
        assert_eq!(c.pending_totp_secret(u.id).await.expect("pending"), None);
        assert_eq!(
            c.find_session(&hash_token(token)).await.expect("find"),
            None,
            "reset revokes sessions"
        );
        assert!(matches!(c.reset_totp(9999).await, Err(Error::NotFound(_))));
    }

    pub async fn disable_user_revokes_sessions(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "to.disable", Role::ClinicTech))
            .await
            .expect("add");
        let s = c
            .create_session(&session(
                u.id,
                "dxs_disable",
                Duration::from_secs(3600),
                None,
            ))
            .await
            .expect("session");
        assert!(c.find_session(&s.token_hash).await.expect("find").is_some());
        c.disable_user(u.id).await.expect("disable");
        assert!(c.find_session(&s.token_hash).await.expect("find").is_none());
        assert!(c.get_user(u.id).await.expect("get").expect("user").disabled);
        assert!(matches!(
            c.disable_user(9999).await,
            Err(Error::NotFound(_))
        ));
    }

    pub async fn session_issuer_is_recorded(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "svc", Role::Reader))
            .await
            .expect("add");
        let mut n = session(u.id, "dxs_cli_issued", Duration::from_secs(3600), None);
        n.issued_by = "cli".into();
        let s = c.create_session(&n).await.expect("session");
        assert_eq!(s.issued_by, "cli");
        let found = c
            .find_session(&s.token_hash)
            .await
            .expect("find")
            .expect("active");
        assert_eq!(found.issued_by, "cli");
        let l = c
            .create_session(&session(
                u.id,
                "dxs_login_issued",
                Duration::from_secs(3600),
                None,
            ))
            .await
            .expect("session");
        assert_eq!(l.issued_by, "login");
    }

    pub async fn set_user_role_and_password_revoke_sessions(c: &dyn Catalog, _url: &str) {
        tenancy(c).await;
        let u = c
            .add_user(&new_user("Town", "to.change", Role::ClinicTech))
            .await
            .expect("add");
        let s1 = c
            .create_session(&session(u.id, "dxs_role", Duration::from_secs(3600), None))
            .await
            .expect("session");
        let changed = c.set_user_role(u.id, Role::Reader).await.expect("role");
        assert_eq!(changed.role, Role::Reader);
        assert_eq!(changed.id, u.id);
        assert_eq!(
            c.get_user(u.id).await.expect("get").expect("user").role,
            Role::Reader
        );
        assert!(
            c.find_session(&s1.token_hash)
                .await
                .expect("find")
                .is_none()
        );
        assert!(matches!(
            c.set_user_role(9999, Role::Reader).await,
            Err(Error::NotFound(_))
        ));

        // password: new hash, lock-out cleared, sessions revoked
        for _ in 0..LOCKOUT_THRESHOLD {
            c.record_login_failure(u.id).await.expect("fail");
        }
        let locked = c.get_user(u.id).await.expect("get").expect("user");
        assert!(locked.locked_until.is_some());
        let s2 = c
            .create_session(&session(u.id, "dxs_pw", Duration::from_secs(3600), None))
            .await
            .expect("session");
        c.set_user_password(u.id, "$argon2id$v=19$m=19456,t=2,p=1$fake$new")
            .await
            .expect("password");
        let after = c.get_user(u.id).await.expect("get").expect("user");
        assert_eq!(
            after.password_hash,
            "$argon2id$v=19$m=19456,t=2,p=1$fake$new"
        );
        assert_eq!(after.failed_logins, 0);
        assert_eq!(after.locked_until, None);
        assert!(!after.is_locked(now_us()));
        assert!(
            c.find_session(&s2.token_hash)
                .await
                .expect("find")
                .is_none()
        );
        assert!(matches!(
            c.set_user_password(u.id, " ").await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.set_user_password(9999, "$argon2id$x").await,
            Err(Error::NotFound(_))
        ));
    }
}
