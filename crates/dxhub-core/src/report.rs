//! Reports (issue #7), the pure part: the report state machine by role, the canonical
//! serialisation a signature covers, and SM2 signatures (GB/T 32918 with SM3, RustCrypto
//! `sm2`). Storage, the API and PDF rendering build on this; nothing here does I/O (keys
//! are generated from a caller's RNG).
//!
//! Lifecycle: `draft` (autosaved, every version kept) → `submitted` (the author) →
//! `signed` (a senior reader verifies; an author holding signing authority may sign their
//! own) or `returned` with a reason (back to the author: draft again). A signed version is
//! never changed: addenda are added (each signed), or a corrected version supersedes it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::roles::Role;

/// Where one report version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportState {
    Draft,
    Submitted,
    Signed,
    Returned,
    /// A signed version replaced by a corrected one.
    Superseded,
}

impl ReportState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Signed => "signed",
            Self::Returned => "returned",
            Self::Superseded => "superseded",
        }
    }
}

impl fmt::Display for ReportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What someone does to a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOp {
    /// Save (autosave) the draft: a new draft version.
    SaveDraft,
    Submit,
    /// Verify and sign.
    Sign,
    /// Send back to the author with a reason.
    Return,
    /// Add a signed addendum to a signed version.
    Addendum,
    /// Supersede a signed version with a corrected one (with a reason).
    Correct,
}

/// Who acts, relative to the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportActor {
    pub role: Role,
    /// The user wrote the report (holds its work item).
    pub is_author: bool,
    /// A reader granted the right to sign their own reports.
    pub signing_authority: bool,
}

/// Why an operation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportRefusal {
    /// Not possible in this state.
    WrongState,
    /// Only the author may do this.
    NotAuthor,
    /// This role may not do this (e.g. a reader without signing authority signing).
    NotPermitted,
    /// A verifier must not verify their own report unless they hold signing authority.
    OwnReport,
}

/// The state after `op` by `actor` on a version in `state`, or why not.
///
/// | op | from | who |
/// |---|---|---|
/// | save draft, submit | draft, returned | the author (reader or senior reader) |
/// | sign | submitted | a senior reader who is not the author; the author if they hold signing authority (or are a senior reader) |
/// | return | submitted | a senior reader who is not the author |
/// | addendum | signed (stays signed) | a senior reader, or the author holding signing authority |
/// | correct | signed → superseded | a senior reader |
pub fn apply(
    state: ReportState,
    op: ReportOp,
    actor: ReportActor,
) -> Result<ReportState, ReportRefusal> {
    use ReportOp as O;
    use ReportState as S;
    let reading = matches!(actor.role, Role::Reader | Role::SeniorReader);
    let senior = actor.role == Role::SeniorReader;
    if !reading {
        return Err(ReportRefusal::NotPermitted);
    }
    match (op, state) {
        (O::SaveDraft | O::Submit, S::Draft | S::Returned) => {
            if !actor.is_author {
                return Err(ReportRefusal::NotAuthor);
            }
            Ok(if op == O::Submit {
                S::Submitted
            } else {
                S::Draft
            })
        }
        (O::Sign, S::Submitted) => {
            if actor.is_author {
                if actor.signing_authority || senior {
                    Ok(S::Signed)
                } else {
                    Err(ReportRefusal::OwnReport)
                }
            } else if senior {
                Ok(S::Signed)
            } else {
                Err(ReportRefusal::NotPermitted)
            }
        }
        (O::Return, S::Submitted) => {
            if !senior {
                Err(ReportRefusal::NotPermitted)
            } else if actor.is_author {
                Err(ReportRefusal::OwnReport)
            } else {
                Ok(S::Returned)
            }
        }
        // An addendum is signed on its own, with no second reader: a junior's change to a
        // signed record goes through a senior (EMR rules), as their reports do.
        (O::Addendum, S::Signed) => {
            if senior || (actor.is_author && actor.signing_authority) {
                Ok(S::Signed)
            } else if actor.is_author {
                Err(ReportRefusal::OwnReport)
            } else {
                Err(ReportRefusal::NotPermitted)
            }
        }
        (O::Correct, S::Signed) => {
            if senior {
                Ok(S::Superseded)
            } else {
                Err(ReportRefusal::NotPermitted)
            }
        }
        _ => Err(ReportRefusal::WrongState),
    }
}

// ---- what a signature covers ----

/// Everything a report signature binds together. [`canonical_bytes`] turns it into the
/// exact bytes that are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedContent {
    pub report_id: i64,
    pub version: i64,
    pub study_instance_uid: String,
    pub source_institution: String,
    /// The patient-identity hash (hex) the worklist matches priors on.
    pub patient_identity_hash: String,
    pub author: String,
    pub verifier: String,
    /// Epoch µs UTC.
    pub written_at: i64,
    pub signed_at: i64,
    /// Report sections and structured fields by name (`findings`, `impression`,
    /// `recommendation`, `qc_grade`, `critical` …).
    pub body: BTreeMap<String, String>,
    /// `(SOP Instance UID, sha256 hex)` of every instance read.
    pub instances: Vec<(String, String)>,
}

/// The canonical serialisation: a format line, then one `name len:value` line per field in
/// a fixed order (`len` = the value's length in bytes, so no value can be confused with
/// the next field), body fields sorted by name, instances sorted by SOP Instance UID.
pub fn canonical_bytes(c: &SignedContent) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, name: &str, value: &str) {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(value.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    let mut out = b"dxhub-report-signature-v1\n".to_vec();
    field(&mut out, "report_id", &c.report_id.to_string());
    field(&mut out, "version", &c.version.to_string());
    field(&mut out, "study_instance_uid", &c.study_instance_uid);
    field(&mut out, "source_institution", &c.source_institution);
    field(&mut out, "patient_identity_hash", &c.patient_identity_hash);
    field(&mut out, "author", &c.author);
    field(&mut out, "verifier", &c.verifier);
    field(&mut out, "written_at", &c.written_at.to_string());
    field(&mut out, "signed_at", &c.signed_at.to_string());
    field(&mut out, "body_fields", &c.body.len().to_string());
    for (k, v) in &c.body {
        field(&mut out, "body.name", k);
        field(&mut out, "body.value", v);
    }
    let mut instances = c.instances.clone();
    instances.sort();
    field(&mut out, "instances", &instances.len().to_string());
    for (uid, sha) in &instances {
        field(&mut out, "instance.uid", uid);
        field(&mut out, "instance.sha256", sha);
    }
    out
}

// ---- SM2 ----

/// The distinguishing identifier of GB/T 32918 (its default `1234567812345678`).
pub const SM2_ID: &str = "1234567812345678";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("invalid SM2 key")]
    BadKey,
    #[error("invalid SM2 signature encoding")]
    BadSignature,
    #[error("the signature does not match the report")]
    Mismatch,
}

/// A signer's key pair.
pub struct SigningKey(sm2::dsa::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &hex(&self.public_key()))
            .finish_non_exhaustive()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl SigningKey {
    /// A new key from `rng` (the caller's CSPRNG).
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let secret = sm2::SecretKey::random(rng);
        Self(
            sm2::dsa::SigningKey::new(SM2_ID, &secret)
                .unwrap_or_else(|_| unreachable!("a random non-zero scalar is a valid SM2 key")),
        )
    }

    /// From the 32-byte secret scalar (as decrypted from storage).
    pub fn from_secret_bytes(secret: &[u8]) -> Result<Self, SignatureError> {
        let secret = sm2::SecretKey::from_slice(secret).map_err(|_| SignatureError::BadKey)?;
        sm2::dsa::SigningKey::new(SM2_ID, &secret)
            .map(Self)
            .map_err(|_| SignatureError::BadKey)
    }

    /// The 32-byte secret scalar (to be encrypted at rest).
    pub fn secret_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// The uncompressed SEC1 public key (65 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        self.0.verifying_key().to_sec1_bytes().to_vec()
    }

    /// The 64-byte `r‖s` signature of `message` (SM3 with the signer's Z value).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use sm2::dsa::signature::Signer;
        let sig: sm2::dsa::Signature = self.0.sign(message);
        sig.to_bytes().to_vec()
    }
}

/// Verify a 64-byte `r‖s` SM2 signature of `message` under an SEC1 public key.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    use sm2::dsa::signature::Verifier;
    let key = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_ID, public_key)
        .map_err(|_| SignatureError::BadKey)?;
    let sig =
        sm2::dsa::Signature::from_slice(signature).map_err(|_| SignatureError::BadSignature)?;
    key.verify(message, &sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// The SM3 fingerprint (hex) of a public key, as printed on reports.
pub fn fingerprint(public_key: &[u8]) -> String {
    use sm3::Digest;
    hex(&sm3::Sm3::digest(public_key))
}

// ---- exported signed reports, verified offline ----

/// The format tag of [`SignedReport`].
pub const SIGNED_REPORT_FORMAT: &str = "dxhub-signed-report-v1";

/// A signed report version as exported for offline verification (`dxhub verify FILE`):
/// the content, the signature over [`canonical_bytes`] of it, and the signer's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReport {
    /// [`SIGNED_REPORT_FORMAT`].
    pub format: String,
    pub content: SignedContent,
    /// Hex of the 64-byte `r‖s` SM2 signature.
    pub signature: String,
    /// Hex of the signer's SEC1 public key.
    pub public_key: String,
    /// `(SOP Instance UID, sha256 hex)` of instances the study received after signing:
    /// not covered by the signature, named so the reader knows (not part of the signed
    /// content; absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances_added: Vec<(String, String)>,
}

/// Public keys exported by the hub (`{"keys":[{"login","public_key","fingerprint"}]}`): the
/// keys an offline verifier trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKeys {
    pub keys: Vec<TrustedKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub login: String,
    /// Hex SEC1.
    pub public_key: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Epoch µs UTC when the key was revoked (replaced): it verifies what it signed
    /// before, not a signature dated after.
    #[serde(default)]
    pub revoked_at: Option<i64>,
}

/// Why an exported report does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("not a {SIGNED_REPORT_FORMAT} file (format {0:?})")]
    Format(String),
    #[error("{0} is not hex")]
    Hex(&'static str),
    #[error("the signing key is not among the trusted keys")]
    UntrustedKey,
    #[error("the trusted key of {login} does not belong to the verifier {verifier}")]
    WrongSigner { login: String, verifier: String },
    #[error(
        "the signing key of {login} was revoked at {revoked_at} µs, before the signing time {signed_at} µs"
    )]
    SignedAfterRevocation {
        login: String,
        revoked_at: i64,
        signed_at: i64,
    },
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// The note naming instances a study received after a version was signed (not covered
/// by its signature); `None` when there are none. Shared by the online and the offline
/// verification so that both say the same.
pub fn late_instances_note(added: &[(String, String)]) -> Option<String> {
    let uids = added
        .iter()
        .map(|(uid, _)| uid.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match added.len() {
        0 => None,
        1 => Some(format!(
            "1 instance arrived after signing and is not covered by this version: {uids}"
        )),
        n => Some(format!(
            "{n} instances arrived after signing and are not covered by this version: {uids}"
        )),
    }
}

/// Lower-case hex decoding (`None` for odd lengths or other characters).
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl SignedReport {
    /// Sign `content` with `key`.
    pub fn sign(content: SignedContent, key: &SigningKey) -> Self {
        let signature = hex(&key.sign(&canonical_bytes(&content)));
        Self {
            format: SIGNED_REPORT_FORMAT.to_owned(),
            content,
            signature,
            public_key: hex(&key.public_key()),
            instances_added: Vec::new(),
        }
    }

    /// Verify against the trusted keys: the embedded key must be one of them, belong to
    /// the verifier named in the content, not have been revoked before the signing time,
    /// and the signature must match the content. The matching trusted key on success.
    pub fn verify<'k>(&self, trusted: &'k TrustedKeys) -> Result<&'k TrustedKey, VerifyError> {
        if self.format != SIGNED_REPORT_FORMAT {
            return Err(VerifyError::Format(self.format.clone()));
        }
        let public = from_hex(&self.public_key).ok_or(VerifyError::Hex("public_key"))?;
        let signature = from_hex(&self.signature).ok_or(VerifyError::Hex("signature"))?;
        let key = trusted
            .keys
            .iter()
            .find(|k| from_hex(&k.public_key).is_some_and(|p| p == public))
            .ok_or(VerifyError::UntrustedKey)?;
        if key.login != self.content.verifier {
            return Err(VerifyError::WrongSigner {
                login: key.login.clone(),
                verifier: self.content.verifier.clone(),
            });
        }
        if let Some(revoked_at) = key.revoked_at.filter(|r| self.content.signed_at > *r) {
            return Err(VerifyError::SignedAfterRevocation {
                login: key.login.clone(),
                revoked_at,
                signed_at: self.content.signed_at,
            });
        }
        verify(&public, &canonical_bytes(&self.content), &signature)?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReportOp as O;
    use ReportState as S;

    fn who(role: Role, is_author: bool, signing_authority: bool) -> ReportActor {
        ReportActor {
            role,
            is_author,
            signing_authority,
        }
    }

    #[test]
    fn every_transition_by_role() {
        let author = who(Role::Reader, true, false);
        let author_auth = who(Role::Reader, true, true);
        let other_reader = who(Role::Reader, false, false);
        let senior = who(Role::SeniorReader, false, false);
        let senior_author = who(Role::SeniorReader, true, false);
        let ok = |s, o, a| apply(s, o, a);
        // author's steps
        assert_eq!(ok(S::Draft, O::SaveDraft, author), Ok(S::Draft));
        assert_eq!(ok(S::Draft, O::Submit, author), Ok(S::Submitted));
        assert_eq!(ok(S::Returned, O::SaveDraft, author), Ok(S::Draft));
        assert_eq!(ok(S::Returned, O::Submit, author), Ok(S::Submitted));
        assert_eq!(
            ok(S::Draft, O::Submit, other_reader),
            Err(ReportRefusal::NotAuthor)
        );
        assert_eq!(
            ok(S::Draft, O::SaveDraft, senior),
            Err(ReportRefusal::NotAuthor)
        );
        // signing
        assert_eq!(ok(S::Submitted, O::Sign, senior), Ok(S::Signed));
        assert_eq!(
            ok(S::Submitted, O::Sign, author),
            Err(ReportRefusal::OwnReport)
        );
        assert_eq!(ok(S::Submitted, O::Sign, author_auth), Ok(S::Signed));
        assert_eq!(ok(S::Submitted, O::Sign, senior_author), Ok(S::Signed));
        assert_eq!(
            ok(S::Submitted, O::Sign, other_reader),
            Err(ReportRefusal::NotPermitted)
        );
        assert_eq!(
            ok(S::Draft, O::Sign, senior),
            Err(ReportRefusal::WrongState)
        );
        // returning
        assert_eq!(ok(S::Submitted, O::Return, senior), Ok(S::Returned));
        assert_eq!(
            ok(S::Submitted, O::Return, senior_author),
            Err(ReportRefusal::OwnReport)
        );
        assert_eq!(
            ok(S::Submitted, O::Return, other_reader),
            Err(ReportRefusal::NotPermitted)
        );
        // after signing
        assert_eq!(
            ok(S::Signed, O::SaveDraft, author),
            Err(ReportRefusal::WrongState)
        );
        assert_eq!(
            ok(S::Signed, O::Submit, author),
            Err(ReportRefusal::WrongState)
        );
        // an addendum of a junior author goes through a senior
        assert_eq!(
            ok(S::Signed, O::Addendum, author),
            Err(ReportRefusal::OwnReport)
        );
        assert_eq!(ok(S::Signed, O::Addendum, author_auth), Ok(S::Signed));
        assert_eq!(ok(S::Signed, O::Addendum, senior), Ok(S::Signed));
        assert_eq!(
            ok(S::Signed, O::Addendum, other_reader),
            Err(ReportRefusal::NotPermitted)
        );
        assert_eq!(ok(S::Signed, O::Correct, senior), Ok(S::Superseded));
        assert_eq!(
            ok(S::Signed, O::Correct, author),
            Err(ReportRefusal::NotPermitted)
        );
        assert_eq!(
            ok(S::Superseded, O::Addendum, senior),
            Err(ReportRefusal::WrongState)
        );
        assert_eq!(
            ok(S::Superseded, O::Correct, senior),
            Err(ReportRefusal::WrongState)
        );
        // nobody else writes reports
        for role in [
            Role::ClinicTech,
            Role::ClinicDoctor,
            Role::GroupAdmin,
            Role::Auditor,
            Role::Superadmin,
        ] {
            for op in [
                O::SaveDraft,
                O::Submit,
                O::Sign,
                O::Return,
                O::Addendum,
                O::Correct,
            ] {
                for state in [S::Draft, S::Submitted, S::Signed, S::Returned] {
                    assert_eq!(
                        apply(state, op, who(role, true, true)),
                        Err(ReportRefusal::NotPermitted),
                        "{role} {op:?} {state}"
                    );
                }
            }
        }
    }

    /// Every (state, op, role, authorship, signing authority) — 5 × 6 × 7 × 2 × 2 = 840
    /// cases — against the allowed transitions written out one by one (the table of
    /// [`apply`]): exactly those succeed, with their next state; everything else is
    /// refused, and for the wrong state with `WrongState`.
    #[test]
    fn exhaustive_transition_table() {
        const STATES: [ReportState; 5] = [
            S::Draft,
            S::Submitted,
            S::Signed,
            S::Returned,
            S::Superseded,
        ];
        const OPS: [ReportOp; 6] = [
            O::SaveDraft,
            O::Submit,
            O::Sign,
            O::Return,
            O::Addendum,
            O::Correct,
        ];
        // (op, from, role, author, signing authority) → to; reader = R, senior = SR
        let (r, sr) = (Role::Reader, Role::SeniorReader);
        let mut allowed: Vec<(ReportOp, ReportState, Role, bool, bool, ReportState)> = Vec::new();
        for role in [r, sr] {
            for auth in [false, true] {
                for from in [S::Draft, S::Returned] {
                    allowed.push((O::SaveDraft, from, role, true, auth, S::Draft));
                    allowed.push((O::Submit, from, role, true, auth, S::Submitted));
                }
                // an addendum: any senior reader; a reader only to their own report and
                // with signing authority
                allowed.push((O::Addendum, S::Signed, sr, true, auth, S::Signed));
                allowed.push((O::Addendum, S::Signed, sr, false, auth, S::Signed));
                if auth {
                    allowed.push((O::Addendum, S::Signed, role, true, auth, S::Signed));
                }
                // signing and returning someone else's report: senior readers
                allowed.push((O::Sign, S::Submitted, sr, false, auth, S::Signed));
                allowed.push((O::Return, S::Submitted, sr, false, auth, S::Returned));
                // a correction: senior readers, author or not
                allowed.push((O::Correct, S::Signed, sr, true, auth, S::Superseded));
                allowed.push((O::Correct, S::Signed, sr, false, auth, S::Superseded));
            }
        }
        // signing one's own: a senior reader, or a reader holding signing authority
        allowed.push((O::Sign, S::Submitted, sr, true, false, S::Signed));
        allowed.push((O::Sign, S::Submitted, sr, true, true, S::Signed));
        allowed.push((O::Sign, S::Submitted, r, true, true, S::Signed));
        allowed.sort_by_key(|a| format!("{a:?}"));
        allowed.dedup();
        let from_states = |op: ReportOp| -> &[ReportState] {
            match op {
                O::SaveDraft | O::Submit => &[S::Draft, S::Returned],
                O::Sign | O::Return => &[S::Submitted],
                O::Addendum | O::Correct => &[S::Signed],
            }
        };
        let mut cases = 0;
        let mut successes = 0;
        for state in STATES {
            for op in OPS {
                for role in Role::ALL {
                    for author in [false, true] {
                        for authority in [false, true] {
                            cases += 1;
                            let got = apply(state, op, who(role, author, authority));
                            let want = allowed
                                .iter()
                                .find(|a| {
                                    (a.0, a.1, a.2, a.3, a.4)
                                        == (op, state, role, author, authority)
                                })
                                .map(|a| a.5);
                            let case = format!(
                                "{op:?} on {state} by {role} (author {author}, authority {authority})"
                            );
                            match want {
                                Some(to) => {
                                    successes += 1;
                                    assert_eq!(got, Ok(to), "{case}");
                                }
                                None => {
                                    assert!(got.is_err(), "{case}: allowed as {got:?}");
                                    let reading = matches!(role, Role::Reader | Role::SeniorReader);
                                    if reading && !from_states(op).contains(&state) {
                                        assert_eq!(got, Err(ReportRefusal::WrongState), "{case}");
                                    }
                                    if !reading {
                                        assert_eq!(got, Err(ReportRefusal::NotPermitted), "{case}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 5 * 6 * Role::ALL.len() * 2 * 2);
        assert_eq!(successes, allowed.len());
    }

    fn content() -> SignedContent {
        SignedContent {
            report_id: 7,
            version: 2,
            study_instance_uid: "1.2.3".into(),
            source_institution: "东风村卫生室".into(),
            patient_identity_hash: "ab".repeat(32),
            author: "r1".into(),
            verifier: "senior".into(),
            written_at: 1,
            signed_at: 2,
            body: BTreeMap::from([
                ("findings".into(), "窦性心律，下壁导联ST段抬高".into()),
                ("impression".into(), "急性下壁心肌梗死".into()),
            ]),
            instances: vec![
                ("1.2.3.2".into(), "cd".repeat(32)),
                ("1.2.3.1".into(), "ef".repeat(32)),
            ],
        }
    }

    #[test]
    fn canonical_bytes_are_deterministic_and_unambiguous() {
        let c = content();
        let mut reordered = c.clone();
        reordered.instances.reverse();
        assert_eq!(canonical_bytes(&c), canonical_bytes(&reordered));
        let text = String::from_utf8(canonical_bytes(&c)).unwrap();
        assert!(text.starts_with("dxhub-report-signature-v1\nreport_id 1:7\n"));
        assert!(text.contains("instance.uid 7:1.2.3.1\n"));
        // moving text between adjacent fields changes the bytes
        let mut a = c.clone();
        a.author = "r1s".into();
        a.verifier = "enior".into();
        assert_ne!(canonical_bytes(&a), canonical_bytes(&c));
    }

    #[test]
    fn sign_then_tamper_fails() {
        let mut rng = rand_core::OsRng;
        let key = SigningKey::generate(&mut rng);
        let public = key.public_key();
        assert_eq!(public.len(), 65);
        let c = content();
        let sig = key.sign(&canonical_bytes(&c));
        assert_eq!(sig.len(), 64);
        assert_eq!(verify(&public, &canonical_bytes(&c), &sig), Ok(()));

        // one byte of the report
        let mut body = c.clone();
        body.body
            .insert("impression".into(), "急性下壁心肌梗死。".into());
        assert_eq!(
            verify(&public, &canonical_bytes(&body), &sig),
            Err(SignatureError::Mismatch)
        );
        // one instance hash
        let mut inst = c.clone();
        inst.instances[0].1.replace_range(0..1, "0");
        assert_eq!(
            verify(&public, &canonical_bytes(&inst), &sig),
            Err(SignatureError::Mismatch)
        );
        // another key
        let other = SigningKey::generate(&mut rng).public_key();
        assert_eq!(
            verify(&other, &canonical_bytes(&c), &sig),
            Err(SignatureError::Mismatch)
        );
        // a flipped signature bit, a broken key
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(verify(&public, &canonical_bytes(&c), &bad).is_err());
        assert_eq!(
            verify(&public[..10], &canonical_bytes(&c), &sig),
            Err(SignatureError::BadKey)
        );
        // the secret round-trips (as stored encrypted)
        let again = SigningKey::from_secret_bytes(&key.secret_bytes()).unwrap();
        assert_eq!(again.public_key(), public);
        assert_eq!(fingerprint(&public).len(), 64);
        assert_ne!(fingerprint(&public), fingerprint(&other));
    }

    #[test]
    fn sm3_matches_the_standard_vector() {
        use sm3::Digest;
        // GB/T 32905 example 1: SM3("abc")
        assert_eq!(
            hex(&sm3::Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn exported_report_verifies_only_with_the_trusted_key_of_its_verifier() {
        let mut rng = rand_core::OsRng;
        let key = SigningKey::generate(&mut rng);
        let other = SigningKey::generate(&mut rng);
        let trusted = TrustedKeys {
            keys: vec![
                TrustedKey {
                    login: "senior".into(),
                    public_key: hex(&key.public_key()),
                    fingerprint: Some(fingerprint(&key.public_key())),
                    revoked_at: None,
                },
                TrustedKey {
                    login: "someone".into(),
                    public_key: hex(&other.public_key()),
                    fingerprint: None,
                    revoked_at: None,
                },
            ],
        };
        let signed = SignedReport::sign(content(), &key);
        assert_eq!(
            signed.verify(&trusted).map(|k| k.login.as_str()),
            Ok("senior")
        );
        let text = serde_json::to_string(&signed).unwrap();
        let back: SignedReport = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.verify(&trusted).map(|k| k.login.as_str()),
            Ok("senior")
        );

        let mut t = signed.clone();
        t.content
            .body
            .insert("findings".into(), "正常心电图".into());
        assert_eq!(
            t.verify(&trusted),
            Err(VerifyError::Signature(SignatureError::Mismatch))
        );
        let mut t = signed.clone();
        t.content.instances[1].1 = "00".repeat(32);
        assert_eq!(
            t.verify(&trusted),
            Err(VerifyError::Signature(SignatureError::Mismatch))
        );
        // signed by a trusted key that is not the named verifier's
        let forged = SignedReport::sign(content(), &other);
        assert!(matches!(
            forged.verify(&trusted),
            Err(VerifyError::WrongSigner { .. })
        ));
        // a key nobody trusts
        let stranger = SigningKey::generate(&mut rng);
        assert_eq!(
            SignedReport::sign(content(), &stranger).verify(&trusted),
            Err(VerifyError::UntrustedKey)
        );
        // a key revoked (replaced) after signing still verifies; before it, not
        let signed_at = signed.content.signed_at;
        let mut revoked = trusted.clone();
        revoked.keys[0].revoked_at = Some(signed_at);
        assert!(signed.verify(&revoked).is_ok());
        revoked.keys[0].revoked_at = Some(signed_at - 1);
        assert_eq!(
            signed.verify(&revoked),
            Err(VerifyError::SignedAfterRevocation {
                login: "senior".into(),
                revoked_at: signed_at - 1,
                signed_at
            })
        );
        // instances received after signing are outside the signed content
        let mut late = signed.clone();
        late.instances_added = vec![("1.2.9".into(), "ab".repeat(32))];
        assert!(late.verify(&trusted).is_ok());
        let back: SignedReport =
            serde_json::from_str(&serde_json::to_string(&late).unwrap()).unwrap();
        assert_eq!(back, late);
        assert!(
            !serde_json::to_string(&signed)
                .unwrap()
                .contains("instances_added")
        );
        let mut t = signed.clone();
        t.signature.push('0');
        assert_eq!(t.verify(&trusted), Err(VerifyError::Hex("signature")));
        assert_eq!(from_hex("0a1B"), Some(vec![10, 27]));
        assert_eq!(from_hex("0g"), None);
    }
}

// ---- private keys at rest ----

/// A server key-encryption key (KEK): 32 bytes, from configuration or the environment.
/// Private signing keys are stored sealed under it (AES-256-GCM); its id names which KEK
/// sealed a key, so KEKs can be rotated (new keys and re-sealing use the current one,
/// older ones stay configured until every key is re-sealed).
#[derive(Clone)]
pub struct Kek {
    key: [u8; 32],
    id: String,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("a key-encryption key must be 64 hexadecimal digits (32 bytes)")]
    BadKek,
    #[error("sealed key is malformed")]
    Malformed,
    #[error("sealed key does not open with this key-encryption key (wrong KEK or altered)")]
    Open,
    #[error("sealed under KEK {0}, which is not configured")]
    UnknownKek(String),
    #[error(
        "the signing key does not open with this password: it was created under an earlier \
         password (set by an administrator since); create a new signing key"
    )]
    Password,
}

impl Kek {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        use sm3::Digest;
        let mut h = sm3::Sm3::new();
        h.update(b"dxhub-kek-id-v1\0");
        h.update(key);
        let id = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { key, id }
    }

    /// From 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, SealError> {
        let bytes = from_hex(s.trim()).ok_or(SealError::BadKek)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKek)?;
        Ok(Self::from_bytes(key))
    }

    /// A short public name of the KEK (not secret: a hash of it).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(user_id: i64, public_key_hex: &str) -> Vec<u8> {
        format!("dxhub-signing-key-v1|{user_id}|{public_key_hex}").into_bytes()
    }

    /// Seal `secret` (a private scalar) of `user_id`'s key `public_key_hex`: base64 of
    /// nonce ‖ ciphertext. The user and public key are bound as associated data, so a
    /// sealed secret moved to another user's row does not open.
    pub fn seal(
        &self,
        secret: &[u8],
        user_id: i64,
        public_key_hex: &str,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> String {
        let aad = Self::aad(user_id, public_key_hex);
        base64_encode(&gcm_seal(&self.key, &aad, secret, rng))
    }

    /// Open what [`Kek::seal`] made.
    pub fn open(
        &self,
        sealed: &str,
        user_id: i64,
        public_key_hex: &str,
    ) -> Result<Vec<u8>, SealError> {
        let raw = base64_decode(sealed).ok_or(SealError::Malformed)?;
        let aad = Self::aad(user_id, public_key_hex);
        gcm_open(&self.key, &aad, &raw, SealError::Open)
    }
}

/// AES-256-GCM of `msg` under `key` with `aad`: nonce (12 random bytes) ‖ ciphertext.
fn gcm_seal(
    key: &[u8; 32],
    aad: &[u8],
    msg: &[u8],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let ct = aes_gcm::Aes256Gcm::new(key.into())
        .encrypt(&nonce.into(), Payload { msg, aad })
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out
}

/// Open what [`gcm_seal`] made; `wrong` when the key or `aad` does not match.
fn gcm_open(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
    wrong: SealError,
) -> Result<Vec<u8>, SealError> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    if sealed.len() < 12 + 16 {
        return Err(SealError::Malformed);
    }
    let (nonce, ct) = sealed.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Malformed)?;
    aes_gcm::Aes256Gcm::new(key.into())
        .decrypt(&nonce.into(), Payload { msg: ct, aad })
        .map_err(|_| wrong)
}

// ---- the signer's password: the second lock ----

/// What a KEK seals since the password layer: this magic, the Argon2id salt (16 bytes),
/// the nonce (12) and the AES-256-GCM ciphertext of the private scalar. Before it, the
/// KEK sealed the 32-byte scalar itself ("legacy"), which the KEK alone opened.
const PASSWORD_MAGIC: &[u8] = b"dxhub-pw-v1\0";

/// Wrap a private scalar under a key derived from its owner's password (Argon2id with a
/// random salt; the user and public key bound as associated data). The KEK then seals
/// the result, so opening a signing key takes the server's KEK *and* the signer's
/// password, which every signature asks for anyway (re-authentication): a copy of the
/// database and the configuration is not enough to sign as a reader.
pub fn wrap_with_password(
    secret: &[u8],
    password: &str,
    user_id: i64,
    public_key_hex: &str,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Vec<u8> {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let key = password_key(password, &salt);
    let aad = password_aad(user_id, public_key_hex);
    let mut out = PASSWORD_MAGIC.to_vec();
    out.extend_from_slice(&salt);
    out.extend_from_slice(&gcm_seal(&key, &aad, secret, rng));
    out
}

/// Whether what a KEK opened is password-wrapped ([`wrap_with_password`]) rather than a
/// legacy bare scalar.
pub fn is_password_wrapped(opened: &[u8]) -> bool {
    opened.starts_with(PASSWORD_MAGIC)
}

/// Open what [`wrap_with_password`] made: [`SealError::Password`] for another password.
pub fn unwrap_with_password(
    wrapped: &[u8],
    password: &str,
    user_id: i64,
    public_key_hex: &str,
) -> Result<Vec<u8>, SealError> {
    let rest = wrapped
        .strip_prefix(PASSWORD_MAGIC)
        .ok_or(SealError::Malformed)?;
    if rest.len() < 16 + 12 + 16 {
        return Err(SealError::Malformed);
    }
    let (salt, sealed) = rest.split_at(16);
    let key = password_key(password, salt);
    let aad = password_aad(user_id, public_key_hex);
    gcm_open(&key, &aad, sealed, SealError::Password)
}

/// Argon2id (the crate's defaults: 19 MiB, 2 passes) of the password with the salt.
fn password_key(password: &str, salt: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    // only fails for out-of-range parameters or salt sizes, which are fixed here
    let _ = argon2::Argon2::default().hash_password_into(password.as_bytes(), salt, &mut key);
    key
}

fn password_aad(user_id: i64, public_key_hex: &str) -> Vec<u8> {
    format!("dxhub-signing-key-password-v1|{user_id}|{public_key_hex}").into_bytes()
}

/// The configured KEKs: the current one and older ones still needed to open keys sealed
/// before a rotation.
#[derive(Debug, Clone)]
pub struct KekRing {
    pub current: Kek,
    pub previous: Vec<Kek>,
}

impl KekRing {
    pub fn get(&self, id: &str) -> Result<&Kek, SealError> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKek(id.to_owned()))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod seal_tests {
    use super::*;

    #[test]
    fn the_password_layer_opens_only_with_the_password_user_and_key() {
        let mut rng = rand_core::OsRng;
        let secret = [7u8; 32];
        let w = wrap_with_password(&secret, "Correct-horse-42", 5, "04ab", &mut rng);
        assert!(is_password_wrapped(&w));
        assert!(!is_password_wrapped(&secret), "a legacy scalar");
        assert!(
            !w.windows(32).any(|x| x == secret),
            "the scalar is not in the clear"
        );
        assert_eq!(
            unwrap_with_password(&w, "Correct-horse-42", 5, "04ab").unwrap(),
            secret
        );
        assert_eq!(
            unwrap_with_password(&w, "Another-horse-43", 5, "04ab"),
            Err(SealError::Password)
        );
        assert_eq!(
            unwrap_with_password(&w, "Correct-horse-42", 6, "04ab"),
            Err(SealError::Password),
            "another user's row"
        );
        assert_eq!(
            unwrap_with_password(&w[..20], "Correct-horse-42", 5, "04ab"),
            Err(SealError::Malformed)
        );
        // fresh salt and nonce each time
        let w2 = wrap_with_password(&secret, "Correct-horse-42", 5, "04ab", &mut rng);
        assert_ne!(w, w2);
        // the KEK seals the wrapped blob; the KEK alone yields only the blob
        let kek = Kek::from_bytes([9u8; 32]);
        let sealed = kek.seal(&w, 5, "04ab", &mut rng);
        let opened = kek.open(&sealed, 5, "04ab").unwrap();
        assert!(is_password_wrapped(&opened));
        assert_ne!(opened, secret);
    }

    #[test]
    fn seal_opens_only_with_its_kek_user_and_key() {
        let mut rng = rand_core::OsRng;
        let kek = Kek::from_bytes([7u8; 32]);
        let other = Kek::from_bytes([8u8; 32]);
        assert_ne!(kek.id(), other.id());
        let sk = SigningKey::generate(&mut rng);
        let pk = hex(&sk.public_key());
        let sealed = kek.seal(&sk.secret_bytes(), 5, &pk, &mut rng);
        assert_eq!(kek.open(&sealed, 5, &pk).expect("opens"), sk.secret_bytes());
        assert_eq!(other.open(&sealed, 5, &pk), Err(SealError::Open));
        assert_eq!(kek.open(&sealed, 6, &pk), Err(SealError::Open));
        let mut raw = base64_decode(&sealed).expect("b64");
        raw[20] ^= 1;
        assert_eq!(kek.open(&base64_encode(&raw), 5, &pk), Err(SealError::Open));
        assert_eq!(kek.open("!!", 5, &pk), Err(SealError::Malformed));
        let ring = KekRing {
            current: other.clone(),
            previous: vec![kek.clone()],
        };
        assert_eq!(ring.get(kek.id()).expect("found").id(), kek.id());
        assert!(ring.get("nope").is_err());
        assert!(Kek::from_hex("zz").is_err());
        assert_eq!(Kek::from_hex(&"07".repeat(32)).expect("hex").id(), kek.id());
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).expect("b64"), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }
}
