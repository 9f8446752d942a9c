//! Authentication of `/api/v1` (issue #3): login, lock-out, rate limiting, sessions
//! (bearer and cookie, CSRF, logout, expiry, idle timeout), TOTP, device tokens, and the
//! audit trail of it all (`GET /api/v1/audit`, CSV, `dxhub audit verify` on a tampered
//! row) — each scenario on SQLite and on PostgreSQL, each on its own hub (the login rate
//! limit is per client address, and every request here comes from 127.0.0.1).

use std::time::Duration;

use dxhub_e2e::api::{
    Api, PASSWORD, add_device, add_user, eventually, issue_token, postgres_options, raw_sql,
    store_study, totp_at, unix_now,
};
use dxhub_e2e::hub::{HubOptions, TestHub};
use reqwest::Method;

/// The township health centre of [`TestHub::spawn`]'s alliance (AE title `CLINIC`).
const TOWNSHIP: &str = "城关镇卫生院";
/// Its county hospital.
const COUNTY: &str = "县人民医院";

macro_rules! on_both_backends {
    ($name:ident, $tag:literal) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::HubOptions::default()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(opts) = super::postgres_options($tag).await {
                    super::$name(opts).await;
                }
            }
        }
    };
}

on_both_backends!(login_bearer_cookie_csrf_logout, "auth_login");
on_both_backends!(lockout_after_five_failures, "auth_lock");
on_both_backends!(login_rate_limit, "auth_rate");
on_both_backends!(verify_limit_leaves_logins, "auth_vrate");
on_both_backends!(session_expiry, "auth_exp");
on_both_backends!(login_session_ttl, "auth_ttl");
on_both_backends!(idle_timeout, "auth_idle");
on_both_backends!(totp_enrolment_and_login, "auth_totp");
on_both_backends!(device_token_upload_only, "auth_dev");
on_both_backends!(audit_trail_csv_and_tamper_detection, "auth_audit");
on_both_backends!(user_management_rules, "auth_users");
on_both_backends!(invalid_totp_codes_count_toward_lockout, "auth_totp_lock");
on_both_backends!(body_limit_and_study_paging, "auth_limits");

/// Login as a clinic user: the token works as Bearer, the cookie for GET; a cookie POST
/// needs the CSRF header; logout revokes the session (bearer and cookie alike).
async fn login_bearer_cookie_csrf_logout(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    add_user(&hub, TOWNSHIP, "wang.tech", "clinic_tech", PASSWORD);
    let api = Api::new(&hub);

    let r = api.login("wang.tech", PASSWORD, None).await;
    assert_eq!(r.status, 200, "login: {r}");
    let body = r.json();
    let token = body["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("dxs_"), "{token}");
    let expires = body["expires_at"].as_str().expect("expires_at");
    assert!(
        expires.len() >= 20 && expires.as_bytes()[4] == b'-' && expires.contains('T'),
        "RFC 3339 expires_at: {expires}"
    );
    let csrf = body["csrf_token"].as_str().expect("csrf_token").to_owned();
    assert_eq!(body["user"]["login"], "wang.tech");
    assert!(
        r.header("x-request-id").is_some(),
        "every response has x-request-id"
    );
    let cookies = r.cookies();
    let session_cookie = cookies
        .get("dxhub_session")
        .expect("dxhub_session cookie")
        .clone();
    assert_eq!(
        cookies.get("dxhub_csrf"),
        Some(&csrf),
        "csrf cookie = csrf_token"
    );
    let lines = r.set_cookie_lines();
    let session_line = lines
        .iter()
        .find(|l| l.starts_with("dxhub_session="))
        .expect("session Set-Cookie")
        .to_ascii_lowercase();
    assert!(session_line.contains("httponly"), "{session_line}");
    assert!(session_line.contains("samesite=strict"), "{session_line}");
    let csrf_line = lines
        .iter()
        .find(|l| l.starts_with("dxhub_csrf="))
        .expect("csrf Set-Cookie")
        .to_ascii_lowercase();
    assert!(
        !csrf_line.contains("httponly"),
        "the CSRF cookie is readable: {csrf_line}"
    );

    // Bearer
    let me = api.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{me}");
    assert_eq!(me.json()["user"]["login"], "wang.tech");
    assert_eq!(me.json()["user"]["role"], "clinic_tech");
    let r = api.get("/api/v1/studies", Some(&token)).await;
    assert_eq!(r.status, 200, "clinic user reads studies: {r}");

    // Cookie for GET
    let cookie_header = format!("dxhub_session={session_cookie}; dxhub_csrf={csrf}");
    let r = send(
        api.req(Method::GET, "/api/v1/auth/me", None)
            .header("cookie", &cookie_header),
    )
    .await;
    assert_eq!(r.status, 200, "cookie GET: {r}");
    assert_eq!(r.json()["user"]["login"], "wang.tech");

    // Cookie POST without X-CSRF-Token → 403 csrf-failed; with a wrong one too.
    let r = send(
        api.req(Method::POST, "/api/v1/auth/totp/enroll", None)
            .header("cookie", &cookie_header)
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "csrf-failed"), "{r}");
    let r = send(
        api.req(Method::POST, "/api/v1/auth/totp/enroll", None)
            .header("cookie", &cookie_header)
            .header("x-csrf-token", "not-the-token")
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "csrf-failed"), "{r}");
    let r = send(
        api.req(Method::POST, "/api/v1/auth/totp/enroll", None)
            .header("cookie", &cookie_header)
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({})),
    )
    .await;
    assert_ne!(r.code(), "csrf-failed", "{r}");
    assert_eq!(r.status, 200, "enrol with CSRF header: {r}");
    assert!(r.json()["secret"].is_string(), "{r}");
    // Bearer POST needs no CSRF token.
    let r = api
        .post(
            "/api/v1/auth/totp/enroll",
            Some(&token),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "bearer POST without CSRF: {r}");

    // Logout via cookie (+CSRF): 204, cookies cleared, session revoked everywhere.
    let r = send(
        api.req(Method::POST, "/api/v1/auth/logout", None)
            .header("cookie", &cookie_header)
            .header("x-csrf-token", &csrf),
    )
    .await;
    assert_eq!(r.status, 204, "logout: {r}");
    let cleared = r.set_cookie_lines();
    assert!(
        cleared.iter().any(|l| l.starts_with("dxhub_session=")),
        "logout clears the session cookie: {cleared:?}"
    );
    let r = api.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unauthenticated"),
        "{r}"
    );
    let r = send(
        api.req(Method::GET, "/api/v1/studies", None)
            .header("cookie", &cookie_header),
    )
    .await;
    assert_eq!(r.status, 401, "revoked cookie: {r}");

    // Logout by bearer of a second session leaves nothing usable either.
    let r = api.login("wang.tech", PASSWORD, None).await;
    assert_eq!(r.status, 200, "{r}");
    let t2 = r.json()["token"].as_str().expect("token").to_owned();
    let r = send(api.req(Method::POST, "/api/v1/auth/logout", Some(&t2))).await;
    assert_eq!(r.status, 204, "{r}");
    let r = api.get("/api/v1/studies", Some(&t2)).await;
    assert_eq!(r.status, 401, "{r}");
    // unknown tokens and garbage
    for bad in ["dxs_not-a-token", "garbage"] {
        let r = api.get("/api/v1/auth/me", Some(bad)).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "unauthenticated"),
            "{bad}: {r}"
        );
    }
    let r = api.get("/api/v1/auth/me", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unauthenticated"),
        "{r}"
    );
}

async fn send(rb: reqwest::RequestBuilder) -> dxhub_e2e::api::Reply {
    dxhub_e2e::api::Reply::of(rb.send().await.expect("request")).await
}

/// Wrong password → 401 invalid-credentials (same answer as an unknown login); after 5
/// failures the account is locked: 423 even with the right password.
async fn lockout_after_five_failures(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    add_user(&hub, TOWNSHIP, "li.doc", "clinic_doctor", PASSWORD);
    let api = Api::new(&hub);

    let unknown = api.login("nobody.here", PASSWORD, None).await;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (401, "invalid-credentials"),
        "{unknown}"
    );
    for i in 1..=4 {
        let r = api.login("li.doc", "Wrong-password-1", None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "invalid-credentials"),
            "failure {i}: {r}"
        );
        assert_eq!(
            r.json()["error"]["message"],
            unknown.json()["error"]["message"],
            "wrong password and unknown login answer alike"
        );
    }
    let r = api.login("li.doc", "Wrong-password-1", None).await;
    assert!(
        matches!(
            (r.status, r.code().as_str()),
            (401, "invalid-credentials") | (423, "account-locked")
        ),
        "failure 5: {r}"
    );
    let r = api.login("li.doc", PASSWORD, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (423, "account-locked"),
        "right password while locked: {r}"
    );
    assert!(r.json().get("token").is_none());
    // the lock is on the account: `admin user list` shows it
    let users = dxhub_e2e::api::admin_list(&hub, "user");
    let u = users.iter().find(|u| u["login"] == "li.doc").expect("user");
    assert!(u["locked_until"].is_i64(), "locked_until set: {u}");
}

/// 10 rapid attempts from one address are answered; the 11th gets 429. The public
/// verification page has a bucket of its own (`reports.verify_per_minute`): it still
/// answers after the logins are spent, and spending it leaves logins alone.
async fn login_rate_limit(opts: HubOptions) {
    let hub = TestHub::spawn(opts.env("DXHUB_REPORTS__VERIFY_PER_MINUTE", "3"));
    let api = Api::new(&hub);
    for i in 1..=10 {
        let r = api.login(&format!("ghost{i}"), PASSWORD, None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "invalid-credentials"),
            "attempt {i}: {r}"
        );
    }
    let r = api.login("ghost11", PASSWORD, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "too-many-requests"),
        "attempt 11: {r}"
    );
    let verify = format!("/api/v1/verify/{}", "0".repeat(32));
    for i in 1..=3 {
        let r = api.get(&verify, None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "unknown-verify-code"),
            "verification {i}, logins spent: {r}"
        );
    }
    let r = api.get(&verify, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "too-many-requests"),
        "verification 4: {r}"
    );
    let limited = dxhub_e2e::api::sql_rows(
        &hub,
        "SELECT outcome FROM audit_log WHERE action = 'report-verify-public' ORDER BY id",
    )
    .await;
    assert_eq!(
        limited.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["not-found", "not-found", "not-found", "rate-limited"]
    );
}

/// A clinic that spent its verification lookups can still log in.
async fn verify_limit_leaves_logins(opts: HubOptions) {
    let hub = TestHub::spawn(opts.env("DXHUB_REPORTS__VERIFY_PER_MINUTE", "2"));
    add_user(&hub, TOWNSHIP, "sun.tech", "clinic_tech", PASSWORD);
    let api = Api::new(&hub);
    let verify = format!("/api/v1/verify/{}", "0".repeat(32));
    for _ in 0..2 {
        assert_eq!(api.get(&verify, None).await.status, 404);
    }
    assert_eq!(api.get(&verify, None).await.status, 429);
    let r = api.login("sun.tech", PASSWORD, None).await;
    assert_eq!(r.status, 200, "login after the verification limit: {r}");
}

/// A token issued with `--ttl 2s` works, then stops working (bounded poll).
async fn session_expiry(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    add_user(&hub, TOWNSHIP, "zhao.tech", "clinic_tech", PASSWORD);
    let api = Api::new(&hub);
    let token = issue_token(&hub, "zhao.tech", "2s");
    let r = api.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(r.status, 200, "fresh token: {r}");
    let expired = eventually(Duration::from_secs(15), || {
        let api = api.clone();
        let token = token.clone();
        async move {
            let r = api.get("/api/v1/auth/me", Some(&token)).await;
            assert!(matches!(r.status, 200 | 401), "{r}");
            r.status == 401 && r.code() == "unauthenticated"
        }
    })
    .await;
    assert!(expired, "a 2 s token still works after 15 s");
    let r = api.get("/api/v1/studies", Some(&token)).await;
    assert_eq!(r.status, 401, "{r}");
    // a long-lived token of the same user is unaffected
    let long = issue_token(&hub, "zhao.tech", "1h");
    assert_eq!(api.get("/api/v1/auth/me", Some(&long)).await.status, 200);
}

/// `http.session_ttl_secs`: a login session ends after its lifetime even when in use.
async fn login_session_ttl(opts: HubOptions) {
    let hub = TestHub::spawn(opts.env("DXHUB_HTTP__SESSION_TTL_SECS", "2"));
    add_user(&hub, TOWNSHIP, "qian.tech", "clinic_tech", PASSWORD);
    let api = Api::new(&hub);
    let r = api.login("qian.tech", PASSWORD, None).await;
    assert_eq!(r.status, 200, "{r}");
    let token = r.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(api.get("/api/v1/auth/me", Some(&token)).await.status, 200);
    let expired = eventually(Duration::from_secs(15), || {
        let api = api.clone();
        let token = token.clone();
        async move {
            let r = api.get("/api/v1/auth/me", Some(&token)).await;
            assert!(matches!(r.status, 200 | 401), "{r}");
            r.status == 401 && r.code() == "unauthenticated"
        }
    })
    .await;
    assert!(
        expired,
        "a session with a 2 s lifetime, polled, still works after 15 s"
    );
}

/// `http.session_idle_secs`: a login session unused for longer than that stops working;
/// one in use keeps working; CLI tokens have no idle timeout.
async fn idle_timeout(opts: HubOptions) {
    let hub = TestHub::spawn(opts.env("DXHUB_HTTP__SESSION_IDLE_SECS", "3"));
    add_user(&hub, TOWNSHIP, "sun.tech", "clinic_tech", PASSWORD);
    let api = Api::new(&hub);
    let r = api.login("sun.tech", PASSWORD, None).await;
    assert_eq!(r.status, 200, "{r}");
    let idle = r.json()["token"].as_str().expect("token").to_owned();
    let r = api.login("sun.tech", PASSWORD, None).await;
    assert_eq!(r.status, 200, "{r}");
    let busy = r.json()["token"].as_str().expect("token").to_owned();
    let cli = issue_token(&hub, "sun.tech", "1h");
    assert_eq!(api.get("/api/v1/auth/me", Some(&idle)).await.status, 200);
    // keep `busy` in use every second for 5 s while `idle` rests
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = api.get("/api/v1/auth/me", Some(&busy)).await;
        assert_eq!(r.status, 200, "a session in use does not time out: {r}");
    }
    let r = api.get("/api/v1/auth/me", Some(&idle)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unauthenticated"),
        "idle session: {r}"
    );
    let r = api.get("/api/v1/auth/me", Some(&cli)).await;
    assert_eq!(r.status, 200, "CLI tokens have no idle timeout: {r}");
}

/// A reader without TOTP gets a session limited to /auth/*; enrols and confirms; from
/// then on login needs the code.
async fn totp_enrolment_and_login(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    add_user(&hub, COUNTY, "chen.reader", "reader", PASSWORD);
    let api = Api::new(&hub);

    let r = api.login("chen.reader", PASSWORD, None).await;
    assert_eq!(r.status, 200, "first login before enrolment: {r}");
    let limited = r.json()["token"].as_str().expect("token").to_owned();
    let r = api.get("/api/v1/studies", Some(&limited)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "totp-enrollment-required"),
        "{r}"
    );
    let r = api.get("/api/v1/institutions", Some(&limited)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "totp-enrollment-required"),
        "{r}"
    );
    let me = api.get("/api/v1/auth/me", Some(&limited)).await;
    assert_eq!(me.status, 200, "{me}");
    assert_eq!(me.json()["totp_enrolled"], false);
    assert_eq!(me.json()["totp_required"], true);

    let r = api
        .post(
            "/api/v1/auth/totp/enroll",
            Some(&limited),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "enrol: {r}");
    let secret = r.json()["secret"].as_str().expect("secret").to_owned();
    let url = r.json()["otpauth_url"]
        .as_str()
        .expect("otpauth_url")
        .to_owned();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&secret), "{url}");

    let now = unix_now();
    let wrong = wrong_code(&secret, now);
    let r = api
        .post(
            "/api/v1/auth/totp/confirm",
            Some(&limited),
            &serde_json::json!({ "code": wrong }),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "invalid-totp"),
        "wrong confirm: {r}"
    );
    let r = api
        .post(
            "/api/v1/auth/totp/confirm",
            Some(&limited),
            &serde_json::json!({ "code": totp_at(&secret, unix_now()) }),
        )
        .await;
    assert_eq!(r.status, 204, "confirm: {r}");
    let me = api.get("/api/v1/auth/me", Some(&limited)).await;
    assert_eq!(me.json()["totp_enrolled"], true, "{me}");

    let r = api.login("chen.reader", PASSWORD, None).await;
    assert_eq!((r.status, r.code().as_str()), (401, "totp-required"), "{r}");
    assert!(r.json().get("token").is_none());
    let r = api
        .login(
            "chen.reader",
            PASSWORD,
            Some(&wrong_code(&secret, unix_now())),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "invalid-totp"), "{r}");
    // the next step's code is within ±1 step and was not used to confirm
    let r = api
        .login(
            "chen.reader",
            PASSWORD,
            Some(&totp_at(&secret, unix_now() + 30)),
        )
        .await;
    assert_eq!(r.status, 200, "login with the right code: {r}");
    let full = r.json()["token"].as_str().expect("token").to_owned();
    let r = api.get("/api/v1/studies", Some(&full)).await;
    assert_eq!(r.status, 200, "a TOTP session reads studies: {r}");
    // an enrolled user's session alone does not replace the second factor (a leaked
    // token): re-enrolment takes the password and a current code
    let r = api
        .post(
            "/api/v1/auth/totp/enroll",
            Some(&full),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "totp-required"), "{r}");
    let r = api
        .post(
            "/api/v1/auth/totp/enroll",
            Some(&full),
            &serde_json::json!({"password": "Wrong-password-1", "totp": totp_at(&secret, unix_now())}),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "invalid-credentials"),
        "{r}"
    );
    let r = api
        .post(
            "/api/v1/auth/totp/enroll",
            Some(&full),
            &serde_json::json!({"password": PASSWORD, "totp": totp_at(&secret, unix_now())}),
        )
        .await;
    assert_eq!(r.status, 200, "re-enrolment with both factors: {r}");
    assert_ne!(r.json()["secret"], secret.as_str(), "{r}");
    // and a wrong password with the right code is still refused
    let r = api
        .login(
            "chen.reader",
            "Wrong-password-1",
            Some(&totp_at(&secret, unix_now())),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "invalid-credentials"),
        "{r}"
    );
    // a lost phone: a group admin resets the TOTP; the reader's sessions end and the
    // next login enrols again
    add_user(&hub, COUNTY, "totp.admin", "group_admin", PASSWORD);
    let admin_token = issue_token(&hub, "totp.admin", "1h");
    let reader_id = me.json()["user"]["id"].as_i64().expect("user id");
    let r = api
        .post(
            &format!("/api/v1/users/{reader_id}/totp/reset"),
            Some(&full),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 403, "a reader does not reset TOTP: {r}");
    let r = api
        .post(
            &format!("/api/v1/users/{reader_id}/totp/reset"),
            Some(&admin_token),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "reset: {r}");
    let r = api.get("/api/v1/studies", Some(&full)).await;
    assert_eq!(r.status, 401, "the reader's sessions are revoked: {r}");
    let r = api.login("chen.reader", PASSWORD, None).await;
    assert_eq!(r.status, 200, "login without a code after the reset: {r}");
    let again = r.json()["token"].as_str().expect("token").to_owned();
    let me2 = api.get("/api/v1/auth/me", Some(&again)).await;
    assert_eq!(me2.json()["totp_enrolled"], false, "{me2}");
    let r = api.get("/api/v1/studies", Some(&again)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "totp-enrollment-required"),
        "{r}"
    );
    // CLI tokens are exempt from TOTP
    let cli = issue_token(&hub, "chen.reader", "1h");
    let r = api.get("/api/v1/studies", Some(&cli)).await;
    assert_eq!(
        r.status, 200,
        "CLI token of an unenrolled-at-issue reader: {r}"
    );
}

/// A 6-digit code valid in none of the steps around `now`.
fn wrong_code(secret: &str, now: u64) -> String {
    let valid: Vec<String> = (0..=4)
        .map(|i| totp_at(secret, now + i * 30 - 60))
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| !valid.contains(c))
        .expect("a wrong code")
}

/// A device token is refused everywhere in /api/v1 (no upload route yet); an unknown
/// device token is not authenticated at all.
async fn device_token_upload_only(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    let dev = add_device(&hub, TOWNSHIP, "ECG-0001");
    let api = Api::new(&hub);
    for path in [
        "/api/v1/studies",
        "/api/v1/auth/me",
        "/api/v1/institutions",
        "/api/v1/devices",
        "/api/v1/audit",
    ] {
        let r = api.get(path, Some(&dev)).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "device-token-upload-only"),
            "{path}: {r}"
        );
    }
    let r = api
        .post(
            "/api/v1/devices",
            Some(&dev),
            &serde_json::json!({ "institution": TOWNSHIP, "serial": "ECG-0002" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "device-token-upload-only"),
        "{r}"
    );
    let r = api
        .get("/api/v1/studies", Some("dxd_unknown-device-token"))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "unauthenticated"),
        "{r}"
    );
    let r = api.get("/healthz", Some(&dev)).await;
    assert_eq!(r.status, 200, "public routes stay public: {r}");
}

/// After logins (good and bad) and study reads, the auditor sees them with request ids;
/// CSV export has a header; a modified or deleted row makes `audit verify` exit 1.
async fn audit_trail_csv_and_tamper_detection(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    add_user(&hub, TOWNSHIP, "ma.doc", "clinic_doctor", PASSWORD);
    add_user(&hub, COUNTY, "audit.zhou", "auditor", PASSWORD);
    let study = store_study(&hub, "CLINIC", "AUD-P1");
    let api = Api::new(&hub);

    let r = api.login("ma.doc", "Wrong-password-1", None).await;
    assert_eq!(r.status, 401, "{r}");
    let r = api.login("ma.doc", PASSWORD, None).await;
    assert_eq!(r.status, 200, "{r}");
    let token = r.json()["token"].as_str().expect("token").to_owned();
    let read_rid = "e2e-study-read-0001";
    let r = send(
        api.req(
            Method::GET,
            &format!("/api/v1/studies/{study}"),
            Some(&token),
        )
        .header("x-request-id", read_rid),
    )
    .await;
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(
        r.header("x-request-id").as_deref(),
        Some(read_rid),
        "request id echoed"
    );
    let list_rid = "e2e-study-list-0001";
    let r = send(
        api.req(Method::GET, "/api/v1/studies", Some(&token))
            .header("x-request-id", list_rid),
    )
    .await;
    assert_eq!(r.status, 200, "{r}");
    assert!(r.body.contains(&study), "own study listed: {r}");
    // a read of an unknown study is audited too (404)
    let r = api
        .get(
            "/api/v1/studies/1.2.826.0.1.3680043.2.1143.999999",
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 404, "{r}");

    let auditor = issue_token(&hub, "audit.zhou", "1h");
    // the doctor may not read the audit log
    let r = api.get("/api/v1/audit", Some(&token)).await;
    assert_eq!(r.status, 403, "{r}");
    let r = api.get("/api/v1/audit?limit=500", Some(&auditor)).await;
    assert_eq!(r.status, 200, "auditor reads the audit log: {r}");
    let entries = audit_entries(&r.json());
    assert!(!entries.is_empty(), "{r}");
    let login_ok = entries.iter().any(|e| {
        e["action"].as_str().unwrap_or_default().contains("login")
            && e["actor"] == "ma.doc"
            && e["outcome"] == "success"
    });
    let login_failed = entries.iter().any(|e| {
        e["action"].as_str().unwrap_or_default().contains("login")
            && (e["actor"] == "ma.doc" || e["object_id"] == "ma.doc")
            && e["outcome"] == "failure"
    });
    assert!(login_ok, "login success audited: {entries:#?}");
    assert!(login_failed, "login failure audited: {entries:#?}");
    let read = entries
        .iter()
        .find(|e| e["action"] == "study-read" && e["object_id"] == study.as_str())
        .unwrap_or_else(|| panic!("study-read of {study} audited: {entries:#?}"));
    assert_eq!(read["request_id"], read_rid, "{read}");
    assert_eq!(read["actor"], "ma.doc", "{read}");
    assert_eq!(read["outcome"], "success", "{read}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "study-list" && e["request_id"] == list_rid),
        "study-list audited with its request id: {entries:#?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "dicom-store" && e["object_id"] == study.as_str()),
        "the C-STORE of the study is audited: {entries:#?}"
    );
    // audit entries never carry patient ids
    assert!(!r.body.contains("AUD-P1"), "patient id in the audit log");
    // filters
    let r = api
        .get(
            &format!("/api/v1/audit?object_id={study}&action=study-read"),
            Some(&auditor),
        )
        .await;
    assert_eq!(r.status, 200, "{r}");
    let filtered = audit_entries(&r.json());
    assert!(!filtered.is_empty());
    assert!(
        filtered
            .iter()
            .all(|e| e["action"] == "study-read" && e["object_id"] == study.as_str()),
        "{filtered:#?}"
    );

    // CSV
    let r = api.get("/api/v1/audit?format=csv", Some(&auditor)).await;
    assert_eq!(r.status, 200, "{r}");
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/csv"), "content type {ct}");
    let header = r.body.lines().next().unwrap_or_default().to_owned();
    for col in ["action", "actor", "outcome", "request_id"] {
        assert!(header.contains(col), "CSV header {header:?} lacks {col}");
    }
    assert!(r.body.lines().count() > 3, "CSV rows: {}", r.body);
    assert!(r.body.contains(read_rid), "CSV holds the study read");

    // the chain is intact …
    let out = hub.cli(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "intact chain: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // … the triggers refuse changes through SQL …
    let url = dxhub_e2e::api::database_url(&hub);
    let pg = url.starts_with("postgres");
    let refused = try_sql(
        &hub,
        "UPDATE audit_log SET outcome = 'success' WHERE outcome = 'failure'",
    )
    .await;
    assert!(
        refused.is_err(),
        "audit_log accepts UPDATE with its triggers in place"
    );
    // … an attacker with database access drops them and edits a row: verify exits 1
    let drop_triggers: &[&str] = if pg {
        &[
            "DROP TRIGGER audit_log_no_update_delete ON audit_log",
            "DROP TRIGGER audit_log_no_truncate ON audit_log",
        ]
    } else {
        &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ]
    };
    raw_sql(&hub, drop_triggers).await;
    let failed_login_row =
        "(SELECT MIN(id) FROM audit_log WHERE outcome = 'failure' AND action LIKE '%login%')";
    raw_sql(
        &hub,
        &[&format!(
            "UPDATE audit_log SET actor = actor || 'x' WHERE id = {failed_login_row}"
        )],
    )
    .await;
    let out = hub.cli(&["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a modified row: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // restore it: intact again (verify checks the content, not the triggers)
    raw_sql(
        &hub,
        &[&format!(
            "UPDATE audit_log SET actor = substr(actor, 1, length(actor) - 1) WHERE id = {failed_login_row}"
        )],
    )
    .await;
    let out = hub.cli(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "restored chain: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // delete a row in the middle of the chain: verify exits 1
    raw_sql(
        &hub,
        &["DELETE FROM audit_log WHERE id = (SELECT MIN(id) + 1 FROM audit_log)"],
    )
    .await;
    let out = hub.cli(&["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a deleted row: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn try_sql(hub: &TestHub, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let url = dxhub_e2e::api::database_url(hub);
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The entries of a `GET /api/v1/audit` answer: a JSON array, or the first array field of
/// an object (`{"entries":[…]}`, `{"items":[…]}` …).
fn audit_entries(v: &serde_json::Value) -> Vec<serde_json::Value> {
    if let Some(a) = v.as_array() {
        return a.clone();
    }
    v.as_object()
        .and_then(|o| o.values().find_map(|x| x.as_array().cloned()))
        .unwrap_or_default()
}

/// Creating users through the API: the password policy (422 `weak-password`), only a
/// superadmin creates superadmins, and a created user can log in.
async fn user_management_rules(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    add_user(&hub, COUNTY, "zhao.admin", "group_admin", PASSWORD);
    add_user(&hub, COUNTY, "root.admin", "superadmin", PASSWORD);
    let admin = issue_token(&hub, "zhao.admin", "1h");
    let root = issue_token(&hub, "root.admin", "1h");
    let api = Api::new(&hub);
    let body = |login: &str, role: &str, password: &str| serde_json::json!({ "institution": TOWNSHIP, "login": login, "role": role, "password": password });

    for weak in ["short1A!", "alllowercaseletters", "New.Doctor"] {
        let r = api
            .post(
                "/api/v1/users",
                Some(&admin),
                &body("new.doctor", "clinic_doctor", weak),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (422, "weak-password"),
            "{weak:?}: {r}"
        );
    }
    let r = api
        .post(
            "/api/v1/users",
            Some(&admin),
            &body("evil.root", "superadmin", PASSWORD),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "group_admin creating a superadmin: {r}"
    );
    let r = api
        .post(
            "/api/v1/users",
            Some(&root),
            &body("second.root", "superadmin", PASSWORD),
        )
        .await;
    assert_eq!(r.status, 201, "superadmin creating a superadmin: {r}");
    let second_root = r.json()["id"].as_i64().expect("id");

    let r = api
        .post(
            "/api/v1/users",
            Some(&admin),
            &body("new.doctor", "clinic_doctor", PASSWORD),
        )
        .await;
    assert_eq!(r.status, 201, "{r}");
    assert!(
        r.json().to_string().find("argon2").is_none(),
        "no password hash in the answer: {r}"
    );
    let doctor = r.json()["id"].as_i64().expect("id");
    let r = api
        .post(
            "/api/v1/users",
            Some(&admin),
            &body("new.doctor", "clinic_doctor", PASSWORD),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "conflict"),
        "login taken: {r}"
    );
    let r = api.login("new.doctor", PASSWORD, None).await;
    assert_eq!(r.status, 200, "the new user logs in: {r}");
    let doctor_session = r.json()["token"].as_str().expect("token").to_owned();
    let users = dxhub_e2e::api::admin_list(&hub, "user");
    assert!(
        !users.iter().any(|u| u["login"] == "evil.root"),
        "the refused superadmin was not created"
    );

    // --- POST /users/{id}/password: the password policy, lock-out reset, sessions revoked
    let password_of = |id: i64| format!("/api/v1/users/{id}/password");
    let role_of = |id: i64| format!("/api/v1/users/{id}/role");
    const NEW_PASSWORD: &str = "Another-horse-43";
    for weak in ["short1A!", "alllowercaseletters", "New.Doctor"] {
        let r = api
            .post(
                &password_of(doctor),
                Some(&admin),
                &serde_json::json!({ "password": weak }),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (422, "weak-password"),
            "set password {weak:?}: {r}"
        );
    }
    let me = api.get("/api/v1/auth/me", Some(&doctor_session)).await;
    assert_eq!(
        me.status, 200,
        "a refused password change keeps the session: {me}"
    );
    for _ in 0..5 {
        let r = api.login("new.doctor", "Wrong-horse-99", None).await;
        assert_eq!(r.status, 401, "{r}");
    }
    let r = api.login("new.doctor", PASSWORD, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (423, "account-locked"),
        "{r}"
    );
    let r = api
        .post(
            &password_of(second_root),
            Some(&admin),
            &serde_json::json!({ "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "group_admin setting a superadmin's password: {r}"
    );
    let r = api
        .post(
            &password_of(doctor),
            Some(&admin),
            &serde_json::json!({ "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 204, "set password: {r}");
    let me = api.get("/api/v1/auth/me", Some(&doctor_session)).await;
    assert_eq!(
        (me.status, me.code().as_str()),
        (401, "unauthenticated"),
        "a password change revokes the sessions: {me}"
    );
    let r = api.login("new.doctor", NEW_PASSWORD, None).await;
    assert_eq!(r.status, 200, "new password, lock-out cleared: {r}");
    let doctor_session = r.json()["token"].as_str().expect("token").to_owned();
    let r = api
        .post(
            &password_of(999_999),
            Some(&root),
            &serde_json::json!({ "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "not-found"), "{r}");

    // --- POST /users/{id}/role: only a superadmin grants or changes superadmin
    let set_role = |id: i64, token: &str, role: &str| {
        let (api, path, token) = (&api, role_of(id), token.to_owned());
        let body = serde_json::json!({ "role": role });
        async move { api.post(&path, Some(&token), &body).await }
    };
    let r = set_role(doctor, &admin, "superadmin").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "group_admin granting superadmin: {r}"
    );
    let r = set_role(second_root, &admin, "reader").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "group_admin demoting a superadmin: {r}"
    );
    let r = set_role(doctor, &admin, "no_such_role").await;
    assert_eq!((r.status, r.code().as_str()), (422, "invalid-json"), "{r}");
    let me = api.get("/api/v1/auth/me", Some(&doctor_session)).await;
    assert_eq!(
        me.status, 200,
        "refused role changes keep the session: {me}"
    );
    let r = set_role(doctor, &admin, "clinic_tech").await;
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.json()["role"], "clinic_tech", "{r}");
    assert!(!r.body.contains("argon2"), "no password hash: {r}");
    let me = api.get("/api/v1/auth/me", Some(&doctor_session)).await;
    assert_eq!(
        (me.status, me.code().as_str()),
        (401, "unauthenticated"),
        "a role change revokes the sessions: {me}"
    );
    let r = set_role(doctor, &root, "superadmin").await;
    assert_eq!(r.status, 200, "superadmin granting superadmin: {r}");
    let r = set_role(second_root, &root, "reader").await;
    assert_eq!(r.status, 200, "superadmin demoting a superadmin: {r}");
    let r = set_role(999_999, &root, "reader").await;
    assert_eq!((r.status, r.code().as_str()), (404, "not-found"), "{r}");
    let users = dxhub_e2e::api::admin_list(&hub, "user");
    let role = |login: &str| {
        users
            .iter()
            .find(|u| u["login"] == login)
            .map(|u| u["role"].clone())
    };
    assert_eq!(role("new.doctor"), Some("superadmin".into()));
    assert_eq!(role("second.root"), Some("reader".into()));
}

/// Wrong TOTP codes with the right password count as failures: 5 of them lock the account.
async fn invalid_totp_codes_count_toward_lockout(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    add_user(&hub, COUNTY, "sun.reader", "reader", PASSWORD);
    let api = Api::new(&hub);
    let r = api.login("sun.reader", PASSWORD, None).await;
    let limited = r.json()["token"].as_str().expect("token").to_owned();
    let r = api
        .post(
            "/api/v1/auth/totp/enroll",
            Some(&limited),
            &serde_json::json!({}),
        )
        .await;
    let secret = r.json()["secret"].as_str().expect("secret").to_owned();
    let r = api
        .post(
            "/api/v1/auth/totp/confirm",
            Some(&limited),
            &serde_json::json!({ "code": totp_at(&secret, unix_now()) }),
        )
        .await;
    assert_eq!(r.status, 204, "{r}");
    for i in 1..=5 {
        let r = api
            .login(
                "sun.reader",
                PASSWORD,
                Some(&wrong_code(&secret, unix_now())),
            )
            .await;
        assert!(
            matches!(
                (r.status, r.code().as_str()),
                (401, "invalid-totp") | (423, "account-locked")
            ),
            "wrong code {i}: {r}"
        );
    }
    let r = api
        .login("sun.reader", PASSWORD, Some(&totp_at(&secret, unix_now())))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (423, "account-locked"),
        "right code while locked: {r}"
    );
}

/// End to end through the real server: a body over `http.max_body_bytes` is refused with
/// 413 and the JSON error shape (and changes nothing); `/api/v1/studies` pages with
/// `limit` and `after_id` without gaps or repeats.
async fn body_limit_and_study_paging(opts: HubOptions) {
    let hub = TestHub::spawn(opts.env("DXHUB_HTTP__MAX_BODY_BYTES", "65536"));
    add_user(&hub, COUNTY, "admin.limits", "superadmin", PASSWORD);
    let token = issue_token(&hub, "admin.limits", "1h");
    let api = Api::new(&hub);
    let users_before = api.get("/api/v1/users", Some(&token)).await.json();
    let big = serde_json::json!({
        "institution": TOWNSHIP, "login": "x".repeat(70_000), "role": "clinic_tech",
        "password": PASSWORD,
    });
    // its own connection: the server closes it after refusing the unread body
    let r = send(
        reqwest::Client::new()
            .post(hub.http_url("/api/v1/users"))
            .bearer_auth(&token)
            .json(&big),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "payload-too-large"),
        "{r}"
    );
    assert_eq!(
        api.get("/api/v1/users", Some(&token)).await.json(),
        users_before
    );

    let mut stored = Vec::new();
    for i in 0..5 {
        stored.push(store_study(&hub, "CLINIC", &format!("PAGE{i}")));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/api/v1/studies?limit=2&after_id={a}"),
            None => "/api/v1/studies?limit=2".to_owned(),
        };
        let page = api.get(&path, Some(&token)).await;
        assert_eq!(page.status, 200, "{page}");
        let v = page.json();
        let studies = v["studies"].as_array().unwrap().clone();
        assert!(studies.len() <= 2);
        seen.extend(
            studies
                .iter()
                .map(|s| s["study_instance_uid"].as_str().unwrap().to_owned()),
        );
        match v["next_after_id"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut expected = stored.clone();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), seen.len(), "no study twice: {seen:?}");
    assert_eq!(got, expected);
}
