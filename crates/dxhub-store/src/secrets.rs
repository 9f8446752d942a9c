//! Secrets as the catalog stores them: bearer tokens (random, shown once, stored as
//! sha256) and passwords (argon2id, default parameters, PHC strings).

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// Prefix of user session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "dxs_";
/// Prefix of device upload tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "dxd_";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("stored password hash is malformed: {0}")]
    MalformedHash(String),
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A new session token: `dxs_` + 64 hex digits (32 random bytes).
pub fn new_session_token() -> String {
    random_token(SESSION_TOKEN_PREFIX)
}

/// A new device upload token: `dxd_` + 64 hex digits (32 random bytes).
pub fn new_device_token() -> String {
    random_token(DEVICE_TOKEN_PREFIX)
}

/// What the catalog stores of a token: sha256 of its text, hex. Tokens carry 256 random
/// bits, so a fast hash suffices (no salt or stretching needed).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// argon2id with the crate's default parameters and a random salt, as a PHC string.
/// CPU-heavy (tens of ms): call from `spawn_blocking` in a server.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. CPU-heavy, as [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> Result<bool, Error> {
    let parsed = PasswordHash::new(phc).map_err(|e| Error::MalformedHash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let a = new_session_token();
        let b = new_session_token();
        assert!(a.starts_with("dxs_") && a.len() == 4 + 64);
        assert_ne!(a, b);
        assert!(new_device_token().starts_with("dxd_"));
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
        assert!(!hash_token(&a).contains(&a[4..]));
    }

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let phc = hash_password("Correct-horse1").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("Correct-horse1", &phc).expect("verify"));
        assert!(!verify_password("correct-horse1", &phc).expect("verify"));
        assert_ne!(
            phc,
            hash_password("Correct-horse1").expect("hash"),
            "salted"
        );
        assert!(verify_password("x", "not a phc string").is_err());
    }
}
