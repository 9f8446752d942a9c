//! One error type for every handler: a status, a stable kebab-case code and a message, as
//! `{"error":{"code":…,"message":…}}`. Causes of 5xx are logged once and not leaked.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The body is JSON but not of the expected shape (or a value is not acceptable).
    #[error("{0}")]
    InvalidJson(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    #[error("account locked after repeated failed logins; try again later")]
    AccountLocked,
    #[error("a TOTP code is required")]
    TotpRequired,
    #[error("invalid TOTP code")]
    InvalidTotp,
    #[error("missing or wrong X-CSRF-Token")]
    CsrfFailed,
    #[error("device tokens may only be used on upload routes")]
    DeviceTokenUploadOnly,
    #[error("enrol TOTP (POST /api/v1/auth/totp/enroll, then /confirm) before using the API")]
    TotpEnrollmentRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// None of the representations the client accepts can be produced (DICOMweb).
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    WeakPassword(String),
    #[error("too many requests; try again later")]
    TooManyRequests,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("request took too long")]
    Timeout,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A failure with its own status and stable code (ECG upload, resumable uploads).
    #[error("{message}")]
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidJson(_) | ApiError::WeakPassword(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::TotpRequired
            | ApiError::InvalidTotp => StatusCode::UNAUTHORIZED,
            ApiError::AccountLocked => StatusCode::LOCKED,
            ApiError::CsrfFailed
            | ApiError::DeviceTokenUploadOnly
            | ApiError::TotpEnrollmentRequired
            | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Coded { status, .. } => *status,
        }
    }

    /// Stable machine-readable code; never renamed once shipped.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not-found",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::InvalidJson(_) => "invalid-json",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid-credentials",
            ApiError::AccountLocked => "account-locked",
            ApiError::TotpRequired => "totp-required",
            ApiError::InvalidTotp => "invalid-totp",
            ApiError::CsrfFailed => "csrf-failed",
            ApiError::DeviceTokenUploadOnly => "device-token-upload-only",
            ApiError::TotpEnrollmentRequired => "totp-enrollment-required",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotAcceptable(_) => "not-acceptable",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::WeakPassword(_) => "weak-password",
            ApiError::TooManyRequests => "too-many-requests",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::Timeout => "timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::Coded { code, .. } => code,
        }
    }
}

impl From<dxhub_store::catalog::Error> for ApiError {
    fn from(e: dxhub_store::catalog::Error) -> Self {
        use dxhub_store::catalog::Error as E;
        match e {
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Invalid(m) => ApiError::InvalidJson(m),
            E::Forbidden(m) => ApiError::Forbidden(m),
            E::Unavailable(_) => ApiError::Unavailable("database unavailable".into()),
            other => {
                ApiError::Internal(format!("{other}: {:?}", std::error::Error::source(&other)))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "internal error".to_owned()
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "not ready");
                self.to_string()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error": { "code": self.code(), "message": message } });
        (self.status(), Json(body)).into_response()
    }
}
