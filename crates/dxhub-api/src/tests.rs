//! Router-level tests over a temporary SQLite catalog: the policy registry against the
//! OpenAPI document, login, CSRF, TOTP enrolment and the login rate limit.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dxhub_core::InstitutionLevel;
use dxhub_core::roles::Role;
use dxhub_store::secrets::{hash_password, hash_token, new_device_token};
use dxhub_store::{Blobs, Catalog, CatalogOptions, NewDevice, NewInstitution, NewUser, SqlCatalog};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth::{base32_decode, totp_code, unix_now};
use crate::{ApiSettings, AppState, policy, router};

#[test]
fn every_openapi_operation_has_a_policy_and_vice_versa() {
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let rules: BTreeSet<_> = policy::route_rules()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        ops, rules,
        "OpenAPI operations and the route-policy registry differ"
    );
    assert_eq!(rules.len(), policy::ROUTES.len(), "no duplicate rules");
}

/// Whether `schema` (resolving one `$ref` into `components`) describes something more
/// specific than a free-form JSON object: an object with declared properties, an array of
/// such, or a non-object type.
fn is_typed(doc: &Value, schema: &Value, depth: u32) -> bool {
    assert!(depth < 8, "schema nesting too deep: {schema}");
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "dangling $ref {r}");
        return is_typed(doc, target, depth + 1);
    }
    if let Some(items) = schema.get("items") {
        return is_typed(doc, items, depth + 1);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            return !parts.is_empty() && parts.iter().all(|p| is_typed(doc, p, depth + 1));
        }
    }
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    let free_extra = matches!(schema.get("additionalProperties"), Some(Value::Bool(true)))
        || schema
            .get("additionalProperties")
            .is_some_and(|a| a.as_object().is_some_and(|o| o.is_empty()));
    match schema.get("type").and_then(Value::as_str) {
        Some("object") | None => props && !free_extra,
        Some(_) => true,
    }
}

#[test]
fn every_declared_error_response_has_the_error_schema() {
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, resp) in responses {
                if !status.starts_with('4') {
                    continue;
                }
                let schema = &resp["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema.as_str(),
                    Some("#/components/schemas/ErrorBody"),
                    "{method} {path} {status}: {resp}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 39, "only {checked} error responses checked");
    let props = &doc["components"]["schemas"]["ErrorDetail"]["properties"];
    assert!(props.get("code").is_some() && props.get("message").is_some());
}

#[test]
fn every_json_success_response_has_a_real_schema() {
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, resp) in responses {
                if !status.starts_with('2') {
                    continue;
                }
                let Some(content) = resp.get("content").and_then(Value::as_object) else {
                    continue;
                };
                for (media, body) in content {
                    if !media.contains("json") {
                        continue;
                    }
                    let schema = &body["schema"];
                    assert!(
                        schema.get("$ref").is_some() && is_typed(&doc, schema, 0),
                        "{method} {path} {status} {media}: free-form or untyped schema {schema}"
                    );
                    checked += 1;
                }
            }
        }
    }
    // every list/detail/create answer of /api/v1 besides the OpenAPI document itself
    assert!(checked >= 16, "only {checked} JSON responses checked");
    // no schema may carry secrets
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (name, s) in schemas {
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for secret in ["password_hash", "totp_secret", "token_hash"] {
                assert!(
                    !props.contains_key(secret),
                    "schema {name} exposes {secret}"
                );
            }
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    catalog: Arc<SqlCatalog>,
    app: axum::Router,
}

async fn fixture() -> Fixture {
    fixture_with(ApiSettings::default()).await
}

async fn fixture_with(settings: ApiSettings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/index.sqlite?mode=rwc", dir.path().display());
    let catalog = Arc::new(
        SqlCatalog::connect(&url, CatalogOptions::default())
            .await
            .unwrap(),
    );
    catalog.migrate().await.unwrap();
    catalog.add_alliance("A").await.unwrap();
    catalog
        .add_institution(&NewInstitution {
            alliance: "A".into(),
            name: "County".into(),
            level: InstitutionLevel::County,
            parent: None,
            population: None,
        })
        .await
        .unwrap();
    let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
    let state = AppState::new(
        catalog.clone(),
        blobs,
        Arc::new(prometheus_client::registry::Registry::default()),
        settings,
    );
    Fixture {
        app: router(state),
        catalog,
        _dir: dir,
    }
}

const PASSWORD: &str = "Correct-Horse-42";

async fn add_user(f: &Fixture, login: &str, role: Role) {
    f.catalog
        .add_user(&NewUser {
            institution: "County".into(),
            login: login.into(),
            role,
            password_hash: hash_password(PASSWORD).unwrap(),
        })
        .await
        .unwrap();
}

async fn call(f: &Fixture, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = f.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, v)
}

fn post_json(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get_bearer(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn login(
    f: &Fixture,
    login: &str,
    totp: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut body = json!({ "login": login, "password": PASSWORD });
    if let Some(t) = totp {
        body["totp"] = json!(t);
    }
    call(f, post_json("/api/v1/auth/login", body)).await
}

fn code_now(secret: &str) -> String {
    totp_code(&base32_decode(secret).unwrap(), unix_now() / 30)
}

#[tokio::test]
async fn login_me_and_cookie_csrf() {
    let f = fixture().await;
    add_user(&f, "tech", Role::ClinicTech).await;
    let (s, _, v) = call(
        &f,
        post_json(
            "/api/v1/auth/login",
            json!({"login":"tech","password":"wrong"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "invalid-credentials");
    let (s, _, v) = call(
        &f,
        post_json(
            "/api/v1/auth/login",
            json!({"login":"nobody","password":"wrong"}),
        ),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid-credentials"))
    );
    let (s, _, v) = call(&f, post_json("/api/v1/auth/login", json!({"login": 5}))).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid-json"))
    );
    let (s, _, v) = call(
        &f,
        Request::post("/api/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad-request"))
    );

    let (s, h, v) = login(&f, "tech", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(h.contains_key("x-request-id"));
    let token = v["token"].as_str().unwrap().to_owned();
    let csrf = v["csrf_token"].as_str().unwrap().to_owned();
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    let cookies: Vec<_> = h
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(cookies.iter().any(|c| c.starts_with("dxhub_session=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Strict")));
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("dxhub_csrf=") && !c.contains("HttpOnly"))
    );

    let (s, _, v) = call(&f, get_bearer("/api/v1/auth/me", &token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["user"]["login"], "tech");
    assert_eq!(v["user"]["role"], "clinic_tech");
    assert_eq!(v["totp_required"], false);

    // request ids are propagated
    let req = Request::get("/api/v1/auth/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("x-request-id", "req-123")
        .body(Body::empty())
        .unwrap();
    let (_, h, _) = call(&f, req).await;
    assert_eq!(h.get("x-request-id").unwrap(), "req-123");

    let cookie = format!("dxhub_session={token}; dxhub_csrf={csrf}");
    // cookie GET needs no CSRF token
    let (s, _, _) = call(
        &f,
        Request::get("/api/v1/auth/me")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // cookie POST without / with a wrong token: 403 csrf-failed
    for sent in [None, Some("nope")] {
        let mut r = Request::post("/api/v1/auth/logout").header(header::COOKIE, &cookie);
        if let Some(x) = sent {
            r = r.header("x-csrf-token", x);
        }
        let (s, _, v) = call(&f, r.body(Body::empty()).unwrap()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf-failed"))
        );
    }
    let (s, h, _) = call(
        &f,
        Request::post("/api/v1/auth/logout")
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        h.get_all(header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().contains("Max-Age=0"))
    );
    let (s, _, v) = call(&f, get_bearer("/api/v1/auth/me", &token)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );

    let audit = f.catalog.list_audit(&Default::default()).await.unwrap();
    let actions: Vec<_> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert!(actions.contains(&("auth.login", "success")), "{actions:?}");
    assert!(actions.contains(&("auth.login", "failure")));
    assert!(actions.contains(&("auth.logout", "success")));
    assert!(audit.iter().any(|e| e.request_id.is_some()));
}

#[tokio::test]
async fn totp_enrolment_gates_the_api_until_confirmed() {
    let f = fixture().await;
    add_user(&f, "doc", Role::Reader).await;
    let (s, _, v) = login(&f, "doc", None).await;
    assert_eq!(s, StatusCode::OK);
    let token = v["token"].as_str().unwrap().to_owned();
    let (s, _, v) = call(&f, get_bearer("/api/v1/studies", &token)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("totp-enrollment-required"))
    );
    let (s, _, v) = call(&f, get_bearer("/api/v1/auth/me", &token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["totp_required"].as_bool(), v["totp_enrolled"].as_bool()),
        (Some(true), Some(false))
    );

    let bearer_post = |path: &str, body: Value| {
        Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (s, _, v) = call(&f, bearer_post("/api/v1/auth/totp/enroll", json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(
        v["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let (s, _, v) = call(
        &f,
        bearer_post("/api/v1/auth/totp/confirm", json!({"code":"000000x"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid-totp"))
    );
    let (s, _, _) = call(
        &f,
        bearer_post(
            "/api/v1/auth/totp/confirm",
            json!({"code": code_now(&secret)}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let (s, _, v) = login(&f, "doc", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("totp-required"))
    );
    let (s, _, v) = login(&f, "doc", Some("123456x")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid-totp"))
    );
    let (s, _, v) = login(&f, "doc", Some(&code_now(&secret))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token2 = v["token"].as_str().unwrap().to_owned();
    let (s, _, v) = call(&f, get_bearer("/api/v1/studies", &token2)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["studies"].as_array().unwrap().is_empty());
    let audit = f.catalog.list_audit(&Default::default()).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "study-list" && e.outcome == "success")
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "auth.totp.confirm" && e.outcome == "success")
    );
}

#[tokio::test]
async fn login_is_rate_limited_and_devices_are_upload_only() {
    let f = fixture().await;
    add_user(&f, "tech", Role::ClinicTech).await;
    let token = new_device_token();
    f.catalog
        .add_device(&NewDevice {
            kind: None,
            institution: "County".into(),
            serial: "ECG-1".into(),
            model: None,
            token_hash: hash_token(&token),
        })
        .await
        .unwrap();
    let (s, _, v) = call(&f, get_bearer("/api/v1/auth/me", &token)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("device-token-upload-only"))
    );
    let (s, _, v) = call(&f, get_bearer("/api/v1/users", "dxs_unknown")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (s, _, _) = call(
        &f,
        Request::get("/api/v1/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let mut statuses = Vec::new();
    for _ in 0..11 {
        let (s, _, v) = call(
            &f,
            post_json(
                "/api/v1/auth/login",
                json!({"login":"nobody","password":"x"}),
            ),
        )
        .await;
        statuses.push((s, v["error"]["code"].as_str().map(str::to_owned)));
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|(s, _)| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        statuses[10],
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("too-many-requests".into())
        )
    );
}

#[tokio::test]
async fn metrics_need_an_admin_session() {
    let f = fixture().await;
    add_user(&f, "tech", Role::ClinicTech).await;
    let (s, _, _) = call(&f, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, _, v) = login(&f, "tech", None).await;
    let (s, _, v) = call(&f, get_bearer("/metrics", v["token"].as_str().unwrap())).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, _, _) = call(&f, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let f = fixture_with(ApiSettings {
        max_body_bytes: 1024,
        ..ApiSettings::default()
    })
    .await;
    let big = json!({ "login": "x".repeat(4096), "password": "y" });
    let (s, _, v) = call(&f, post_json("/api/v1/auth/login", big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "payload-too-large");
    let (s, _, v) = call(
        &f,
        post_json(
            "/api/v1/auth/login",
            json!({ "login": "x", "password": "y" }),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}

#[tokio::test]
async fn a_response_before_the_body_is_read_closes_the_connection() {
    use axum::routing::post;
    let app = axum::Router::new()
        .route("/ignore", post(|| async { StatusCode::LOCKED }))
        .route(
            "/read",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .route("/get", axum::routing::get(|| async { "ok" }))
        .layer(axum::middleware::from_fn(crate::close_if_body_unread));
    let send = |path: &'static str, body: Body| {
        let app = app.clone();
        async move {
            let method = if path == "/get" { "GET" } else { "POST" };
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(body)
                .unwrap();
            app.oneshot(req).await.unwrap()
        }
    };
    let ignored = send("/ignore", Body::from(vec![7u8; 4096])).await;
    assert_eq!(ignored.status(), StatusCode::LOCKED);
    assert_eq!(ignored.headers()[header::CONNECTION], "close");
    let read = send("/read", Body::from(vec![7u8; 4096])).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert!(read.headers().get(header::CONNECTION).is_none());
    let get = send("/get", Body::empty()).await;
    assert!(get.headers().get(header::CONNECTION).is_none());
    // an empty body needs no reading
    let empty = send("/ignore", Body::empty()).await;
    assert!(empty.headers().get(header::CONNECTION).is_none());
}
