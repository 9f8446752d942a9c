//! Access policy: the one place that decides who may do what to which data. Every HTTP
//! handler and DICOM entry point asks [`authorize`]; none decides on its own.
//!
//! The rules (also in the README):
//!
//! - **clinic roles** (`clinic_tech`, `clinic_doctor`) read and store studies and read
//!   reports of their own institution and of the institutions it heads (a township health
//!   centre sees its village clinics' studies: [`Principal::institution_path`]); a
//!   `clinic_doctor` also reads, by its UID, any study of the alliance whose signed result
//!   is recognised (HR, 结果互认: [`TargetScope::Study`]`{ recognised }`) — what the
//!   recognition lookup links to — while lists stay narrowed to the institutions;
//! - **readers** (`reader`, `senior_reader`) read studies and reports and write and sign
//!   reports of their alliance, but read only the studies **routed to them** and those
//!   patients' priors: a study is routed to a reader when a work item of it, or of another
//!   study of the same patient (identity hash), is in a reader pool the reader is a member
//!   of or is held by the reader ([`TargetScope::Study`]`{ routed }`, resolved by the
//!   caller from the index; lists are narrowed the same way, see [`list_scope`]). They see
//!   the worklist and claim work items; the worklist handlers narrow that to the pools the
//!   reader is a member of. Only a `senior_reader` may amend a signed report and
//!   supervise work items (reassign, break a lock, cancel, re-prioritise);
//! - **`group_admin`** sees the alliance: reads its studies and reports and its indicators
//!   (aggregate statistics), manages its institutions, users, devices, routing (pools,
//!   rules, webhooks) and supervises the worklist; it does not store studies, claim work, sign reports or read the audit log
//!   (separation of duties);
//! - **`auditor`** reads the audit log of the alliance and nothing else;
//! - **devices** (ECG devices, clinic gateways) may only upload ECGs and store studies, for
//!   exactly the institution they are bound to (not the institutions it heads);
//! - **DICOM senders** (AE titles) may only store studies, for their institution;
//! - **`superadmin`** may do everything everywhere.
//!
//! Anything not listed is denied.

use crate::roles::Role;
use serde::Serialize;

/// Something a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Search, retrieve or view studies (metadata, instances, rendered images).
    ReadStudy,
    /// Store instances into a study (C-STORE, STOW-RS, import).
    WriteStudy,
    /// Upload an ECG recording.
    UploadEcg,
    ReadReport,
    /// Create or edit a draft report.
    WriteReport,
    /// Sign (finalise) a report.
    SignReport,
    /// Amend a signed report.
    AmendReport,
    /// Create or change institutions and AE titles.
    ManageInstitution,
    ManageUsers,
    /// Register, list and revoke device tokens.
    ManageDevices,
    /// Edit reader pools, routing rules and webhooks.
    ManageRouting,
    ReadAudit,
    /// See the worklist: items, their events and the patient's priors (readers: of their
    /// pools, checked by the handler against pool membership).
    ReadWorklist,
    /// Claim, renew, release work items (a member of the item's pool).
    ClaimWork,
    /// Reassign, break a lock, cancel or re-prioritise a work item (senior readers of the
    /// item's pool, group admins).
    SuperviseWork,
    /// Edit report templates, the exam catalogue and critical-value categories.
    ManageCatalogue,
    /// Acknowledge a critical value sent to one's institution.
    AcknowledgeCritical,
    /// Look up a patient's recognised (HR) results across the alliance.
    LookupRecognition,
    /// Read the alliance's indicators (`/api/v1/stats/…`: aggregate figures, no patient
    /// data).
    ReadStats,
    /// See the institutions' registered ECG devices and DICOM AE titles (clinics: their
    /// own and the villages they head; group admins: the alliance).
    ReadSetup,
}

impl Action {
    pub const ALL: [Action; 20] = [
        Self::ReadStudy,
        Self::WriteStudy,
        Self::UploadEcg,
        Self::ReadReport,
        Self::WriteReport,
        Self::SignReport,
        Self::AmendReport,
        Self::ManageInstitution,
        Self::ManageUsers,
        Self::ManageDevices,
        Self::ManageRouting,
        Self::ReadAudit,
        Self::ReadWorklist,
        Self::ClaimWork,
        Self::SuperviseWork,
        Self::ManageCatalogue,
        Self::AcknowledgeCritical,
        Self::LookupRecognition,
        Self::ReadStats,
        Self::ReadSetup,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadStudy => "read_study",
            Self::WriteStudy => "write_study",
            Self::UploadEcg => "upload_ecg",
            Self::ReadReport => "read_report",
            Self::WriteReport => "write_report",
            Self::SignReport => "sign_report",
            Self::AmendReport => "amend_report",
            Self::ManageInstitution => "manage_institution",
            Self::ManageUsers => "manage_users",
            Self::ManageDevices => "manage_devices",
            Self::ManageRouting => "manage_routing",
            Self::ReadAudit => "read_audit",
            Self::ReadWorklist => "read_worklist",
            Self::ClaimWork => "claim_work",
            Self::SuperviseWork => "supervise_work",
            Self::ManageCatalogue => "manage_catalogue",
            Self::AcknowledgeCritical => "acknowledge_critical",
            Self::LookupRecognition => "lookup_recognition",
            Self::ReadStats => "read_stats",
            Self::ReadSetup => "read_setup",
        }
    }
}

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A logged-in user (or a script holding a user's token).
    User { role: Role },
    /// An ECG device or clinic gateway holding a device token.
    Device,
    /// A DICOM peer, known by its calling AE title.
    Ae,
}

/// An authenticated actor and the tenancy it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub institution_id: i64,
    pub alliance_id: i64,
    /// The institution and every institution it heads, directly or not (see
    /// [`institution_subtree`]): what clinic roles may see.
    pub institution_path: Vec<i64>,
}

impl Principal {
    /// A principal of `institution_id`, its path computed from the `(id, parent_id)` pairs
    /// of the alliance's institutions.
    pub fn new(
        kind: PrincipalKind,
        institution_id: i64,
        alliance_id: i64,
        institutions: &[(i64, Option<i64>)],
    ) -> Self {
        Self {
            kind,
            institution_id,
            alliance_id,
            institution_path: institution_subtree(institution_id, institutions),
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self.kind {
            PrincipalKind::User { role } => Some(role),
            PrincipalKind::Device | PrincipalKind::Ae => None,
        }
    }
}

/// What an action is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum TargetScope {
    /// Data of one institution (a study, a report, a user or device of it, the
    /// institution itself).
    Institution {
        institution_id: i64,
        alliance_id: i64,
    },
    /// A study, or what belongs to it (its instances, ECG, report, critical values), of an
    /// institution. `routed`: the study is routed to the principal — a work item of it, or
    /// of another study of the same patient, is in one of the principal's reader pools or
    /// held by the principal. Only readers' reach depends on it (see [`needs_routing`]).
    /// `recognised`: the study's current signed result carries the HR mark (mutual
    /// recognition) now; only clinic doctors' reach depends on it (see
    /// [`needs_recognition`]). For everyone else a study is judged by its institution.
    Study {
        institution_id: i64,
        alliance_id: i64,
        routed: bool,
        recognised: bool,
    },
    /// The alliance as a whole (list its institutions, read its audit log, its routing).
    Alliance { alliance_id: i64 },
    /// The whole hub (create alliances, read the audit log of every alliance).
    Hub,
}

impl TargetScope {
    /// The same target without the recognition reach (`recognised: false`): what lists
    /// and the source institution's own business (a report's push-backs) are judged by.
    pub fn unrecognised(self) -> Self {
        match self {
            TargetScope::Study {
                institution_id,
                alliance_id,
                routed,
                ..
            } => TargetScope::Study {
                institution_id,
                alliance_id,
                routed,
                recognised: false,
            },
            other => other,
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// The principal may never do this action.
    ActionNotPermitted,
    /// The principal may do this action, but not on this target.
    OutOfScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", content = "reason", rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub const fn is_allowed(self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// How far a permitted action reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Exactly the principal's institution.
    OwnInstitution,
    /// The principal's institution and those it heads.
    Subtree,
    /// As `Subtree`, plus the studies of the alliance whose result is recognised
    /// (`TargetScope::Study { recognised: true }`); lists: as `Subtree`.
    SubtreeOrRecognised,
    /// The studies of the alliance routed to the principal and those patients' priors
    /// (`TargetScope::Study { routed: true }`), nothing else.
    Routed,
    /// Every institution of the alliance, and the alliance itself.
    Alliance,
    /// Everything.
    Hub,
}

/// How far `action` reaches for `kind`, or `None` if it is never permitted.
const fn reach(kind: PrincipalKind, action: Action) -> Option<Reach> {
    use Action as A;
    match kind {
        PrincipalKind::Device => match action {
            A::UploadEcg | A::WriteStudy => Some(Reach::OwnInstitution),
            _ => None,
        },
        PrincipalKind::Ae => match action {
            A::WriteStudy => Some(Reach::OwnInstitution),
            _ => None,
        },
        PrincipalKind::User { role } => match role {
            Role::Superadmin => Some(Reach::Hub),
            Role::ClinicTech => match action {
                A::ReadStudy
                | A::WriteStudy
                | A::UploadEcg
                | A::ReadReport
                | A::AcknowledgeCritical
                | A::ReadSetup => Some(Reach::Subtree),
                _ => None,
            },
            // Clinic doctors also look up a patient's recognised results alliance-wide, and
            // open them (images, report, PDF).
            Role::ClinicDoctor => match action {
                A::ReadStudy | A::ReadReport => Some(Reach::SubtreeOrRecognised),
                A::WriteStudy | A::UploadEcg | A::AcknowledgeCritical | A::ReadSetup => {
                    Some(Reach::Subtree)
                }
                A::LookupRecognition => Some(Reach::Alliance),
                _ => None,
            },
            // Readers read what is routed to them; the report and worklist stores check
            // that they hold the work item they write for.
            Role::Reader => match action {
                A::ReadStudy | A::ReadReport => Some(Reach::Routed),
                A::WriteReport
                | A::SignReport
                | A::ReadWorklist
                | A::ClaimWork
                | A::LookupRecognition => Some(Reach::Alliance),
                _ => None,
            },
            Role::SeniorReader => match action {
                A::ReadStudy | A::ReadReport => Some(Reach::Routed),
                A::WriteReport
                | A::SignReport
                | A::AmendReport
                | A::ReadWorklist
                | A::ClaimWork
                | A::SuperviseWork
                | A::LookupRecognition => Some(Reach::Alliance),
                _ => None,
            },
            Role::GroupAdmin => match action {
                A::ReadStudy
                | A::ReadReport
                | A::ManageInstitution
                | A::ManageUsers
                | A::ManageDevices
                | A::ManageRouting
                | A::ReadWorklist
                | A::SuperviseWork
                | A::ManageCatalogue
                | A::LookupRecognition
                | A::ReadStats
                | A::ReadSetup => Some(Reach::Alliance),
                _ => None,
            },
            Role::Auditor => match action {
                A::ReadAudit => Some(Reach::Alliance),
                _ => None,
            },
        },
    }
}

/// Whether `kind` may do `action` to anything at all: a route whose action the principal
/// never has is refused before its object is looked up, so the refusal says nothing of
/// whether the object exists.
pub const fn ever_permitted(kind: PrincipalKind, action: Action) -> bool {
    reach(kind, action).is_some()
}

/// Whether `principal` may know that `target` exists: what belongs to its own alliance
/// (institutions, users, devices, pools, rules, webhooks), a study (and its report,
/// ECG, work item, critical values) it may read. A refused request on an object the
/// principal may not see is answered as for an object that does not exist (404), so ids
/// and UIDs of other members cannot be probed.
pub fn visible(principal: &Principal, target: TargetScope) -> bool {
    match target {
        // hub-wide objects (a study of no institution): the superadmin's alone
        TargetScope::Hub => matches!(
            reach(principal.kind, Action::ManageInstitution),
            Some(Reach::Hub)
        ),
        TargetScope::Alliance { alliance_id } | TargetScope::Institution { alliance_id, .. } => {
            alliance_id == principal.alliance_id
                || matches!(
                    reach(principal.kind, Action::ManageInstitution),
                    Some(Reach::Hub)
                )
        }
        study @ TargetScope::Study { .. } => {
            authorize(principal, Action::ReadStudy, study).is_allowed()
                || authorize(principal, Action::ReadReport, study).is_allowed()
        }
    }
}

/// May `principal` do `action` to `target`? Pure: the caller resolves the principal
/// (from a session, device token or AE title) and the target's tenancy first.
pub fn authorize(principal: &Principal, action: Action, target: TargetScope) -> Decision {
    let Some(reach) = reach(principal.kind, action) else {
        return Decision::Deny(Denial::ActionNotPermitted);
    };
    // a study is judged by its institution, except by readers (routed or not)
    let in_scope = match (reach, target) {
        (Reach::Hub, _) => true,
        (_, TargetScope::Hub) => false,
        (
            Reach::Routed,
            TargetScope::Study {
                alliance_id,
                routed,
                ..
            },
        ) => routed && alliance_id == principal.alliance_id,
        // Routed reach covers studies only, never an institution or the alliance.
        (Reach::Routed, TargetScope::Institution { .. } | TargetScope::Alliance { .. }) => false,
        (Reach::Alliance, TargetScope::Alliance { alliance_id })
        | (
            Reach::Alliance,
            TargetScope::Institution { alliance_id, .. } | TargetScope::Study { alliance_id, .. },
        ) => alliance_id == principal.alliance_id,
        // Institution-bound principals never act on the alliance as a whole.
        (
            Reach::OwnInstitution | Reach::Subtree | Reach::SubtreeOrRecognised,
            TargetScope::Alliance { .. },
        ) => false,
        (
            Reach::SubtreeOrRecognised,
            TargetScope::Study {
                institution_id,
                alliance_id,
                recognised,
                ..
            },
        ) => {
            alliance_id == principal.alliance_id
                && (recognised
                    || institution_id == principal.institution_id
                    || principal.institution_path.contains(&institution_id))
        }
        (
            Reach::OwnInstitution,
            TargetScope::Institution {
                institution_id,
                alliance_id,
            }
            | TargetScope::Study {
                institution_id,
                alliance_id,
                ..
            },
        ) => institution_id == principal.institution_id && alliance_id == principal.alliance_id,
        (
            Reach::Subtree | Reach::SubtreeOrRecognised,
            TargetScope::Institution {
                institution_id,
                alliance_id,
            },
        )
        | (
            Reach::Subtree,
            TargetScope::Study {
                institution_id,
                alliance_id,
                ..
            },
        ) => {
            alliance_id == principal.alliance_id
                && (institution_id == principal.institution_id
                    || principal.institution_path.contains(&institution_id))
        }
    };
    if in_scope {
        Decision::Allow
    } else {
        Decision::Deny(Denial::OutOfScope)
    }
}

/// Whether `principal`'s reach for `action` depends on routing, so that the caller must
/// resolve [`TargetScope::Study`]`{ routed }` from the index (readers' study and report
/// reads). For everyone else `routed` is ignored and need not be looked up.
pub fn needs_routing(principal: &Principal, action: Action) -> bool {
    matches!(reach(principal.kind, action), Some(Reach::Routed))
}

/// Whether `principal`'s reach for `action` extends to recognised studies, so that the
/// caller must resolve [`TargetScope::Study`]`{ recognised }` (clinic doctors' study and
/// report reads of other institutions). For everyone else it need not be looked up.
pub fn needs_recognition(principal: &Principal, action: Action) -> bool {
    matches!(
        reach(principal.kind, action),
        Some(Reach::SubtreeOrRecognised)
    )
}

/// How a list of `action`'s objects (studies, reports, critical values) is narrowed for
/// `principal`: the same rule as [`authorize`] on each member, as a filter for the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum ListScope {
    /// The principal may not do `action` at all.
    Nothing,
    /// Objects of these institutions.
    Institutions { institution_ids: Vec<i64> },
    /// Objects of the institutions of this alliance.
    Alliance { alliance_id: i64 },
    /// Objects of this alliance's studies that are routed to the principal (see
    /// [`TargetScope::Study`]).
    RoutedInAlliance { alliance_id: i64 },
    /// Everything.
    Everything,
}

pub fn list_scope(principal: &Principal, action: Action) -> ListScope {
    match reach(principal.kind, action) {
        None => ListScope::Nothing,
        Some(Reach::OwnInstitution) => ListScope::Institutions {
            institution_ids: vec![principal.institution_id],
        },
        Some(Reach::Subtree | Reach::SubtreeOrRecognised) => ListScope::Institutions {
            institution_ids: principal.institution_path.clone(),
        },
        Some(Reach::Routed) => ListScope::RoutedInAlliance {
            alliance_id: principal.alliance_id,
        },
        Some(Reach::Alliance) => ListScope::Alliance {
            alliance_id: principal.alliance_id,
        },
        Some(Reach::Hub) => ListScope::Everything,
    }
}

/// `root` and every institution below it, given `(id, parent_id)` of the institutions of
/// its alliance. Cycles (which the catalog does not allow) cannot loop forever.
pub fn institution_subtree(root: i64, institutions: &[(i64, Option<i64>)]) -> Vec<i64> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for &(id, p) in institutions {
            if p == Some(parent) && !out.contains(&id) {
                out.push(id);
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;

    // Alliance 1: county 10 → township 20 → villages 30, 31; township 21 → village 32.
    // Alliance 2: county 90 → village 91.
    const TREE: [(i64, Option<i64>); 6] = [
        (10, None),
        (20, Some(10)),
        (30, Some(20)),
        (31, Some(20)),
        (21, Some(10)),
        (32, Some(21)),
    ];

    fn principal(kind: PrincipalKind, institution_id: i64) -> Principal {
        let alliance_id = if institution_id >= 90 { 2 } else { 1 };
        Principal::new(kind, institution_id, alliance_id, &TREE)
    }

    fn user(role: Role, institution_id: i64) -> Principal {
        principal(PrincipalKind::User { role }, institution_id)
    }

    fn inst(institution_id: i64) -> TargetScope {
        TargetScope::Institution {
            institution_id,
            alliance_id: if institution_id >= 90 { 2 } else { 1 },
        }
    }

    fn allowed(p: &Principal, a: Action, t: TargetScope) -> bool {
        authorize(p, a, t).is_allowed()
    }

    #[test]
    fn subtree_follows_parents() {
        let mut t = institution_subtree(20, &TREE);
        t.sort_unstable();
        assert_eq!(t, [20, 30, 31]);
        let mut c = institution_subtree(10, &TREE);
        c.sort_unstable();
        assert_eq!(c, [10, 20, 21, 30, 31, 32]);
        assert_eq!(institution_subtree(30, &TREE), [30]);
        // a cycle does not hang
        assert_eq!(
            institution_subtree(1, &[(1, Some(2)), (2, Some(1))]),
            [1, 2]
        );
    }

    #[test]
    fn clinic_roles_see_their_institution_and_the_clinics_it_heads() {
        for role in [Role::ClinicTech, Role::ClinicDoctor] {
            let village = user(role, 30);
            let township = user(role, 20);
            for action in [
                A::ReadStudy,
                A::WriteStudy,
                A::ReadReport,
                A::UploadEcg,
                A::ReadSetup,
            ] {
                assert!(allowed(&village, action, inst(30)), "{role} {action:?} own");
                assert!(
                    !allowed(&village, action, inst(31)),
                    "{role} sibling village"
                );
                assert!(
                    !allowed(&village, action, inst(20)),
                    "{role} parent township"
                );
                assert!(allowed(&township, action, inst(20)));
                assert!(
                    allowed(&township, action, inst(30)),
                    "township sees its villages"
                );
                assert!(allowed(&township, action, inst(31)));
                assert!(
                    !allowed(&township, action, inst(32)),
                    "not another township's"
                );
                assert!(!allowed(&township, action, inst(10)), "not the county's");
                assert!(
                    !allowed(&township, action, inst(91)),
                    "not another alliance"
                );
                assert_eq!(
                    authorize(&township, action, TargetScope::Alliance { alliance_id: 1 }),
                    Decision::Deny(Denial::OutOfScope)
                );
            }
            for action in [
                A::WriteReport,
                A::SignReport,
                A::AmendReport,
                A::ManageUsers,
                A::ManageInstitution,
                A::ManageDevices,
                A::ManageRouting,
                A::ReadAudit,
                A::ReadStats,
            ] {
                assert_eq!(
                    authorize(&township, action, inst(20)),
                    Decision::Deny(Denial::ActionNotPermitted),
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn readers_read_and_sign_within_their_alliance() {
        for role in [Role::Reader, Role::SeniorReader] {
            let r = user(role, 10);
            // reads: only studies routed to the reader (or priors of their patients)
            for action in [A::ReadStudy, A::ReadReport] {
                assert!(needs_routing(&r, action));
                for i in [10, 20, 30, 32] {
                    assert!(allowed(&r, action, study(i, true)), "{role} {action:?} {i}");
                    assert_eq!(
                        authorize(&r, action, study(i, false)),
                        Decision::Deny(Denial::OutOfScope),
                        "{role} {action:?} {i} not routed"
                    );
                    // an institution as such is never a reader's read target
                    assert!(!allowed(&r, action, inst(i)), "{role} {action:?} inst {i}");
                }
                assert!(!allowed(&r, action, study(91, true)), "other alliance");
                assert!(!allowed(
                    &r,
                    action,
                    TargetScope::Alliance { alliance_id: 1 }
                ));
                assert_eq!(
                    list_scope(&r, action),
                    ListScope::RoutedInAlliance { alliance_id: 1 }
                );
            }
            for action in [A::WriteReport, A::SignReport, A::ReadWorklist, A::ClaimWork] {
                for i in [10, 20, 30, 32] {
                    assert!(allowed(&r, action, inst(i)), "{role} {action:?} {i}");
                }
                assert_eq!(
                    authorize(&r, action, inst(91)),
                    Decision::Deny(Denial::OutOfScope)
                );
            }
            for action in [
                A::WriteStudy,
                A::UploadEcg,
                A::ManageUsers,
                A::ManageInstitution,
                A::ManageRouting,
                A::ManageDevices,
                A::ReadAudit,
                A::ReadStats,
                A::ReadSetup,
            ] {
                assert!(!allowed(&r, action, inst(10)), "{role} {action:?}");
            }
        }
        assert!(!allowed(&user(Role::Reader, 10), A::AmendReport, inst(30)));
        assert!(!allowed(
            &user(Role::Reader, 10),
            A::SuperviseWork,
            inst(30)
        ));
        assert!(allowed(
            &user(Role::SeniorReader, 10),
            A::SuperviseWork,
            inst(30)
        ));
        assert!(allowed(
            &user(Role::SeniorReader, 10),
            A::AmendReport,
            inst(30)
        ));
    }

    fn study(institution_id: i64, routed: bool) -> TargetScope {
        TargetScope::Study {
            institution_id,
            alliance_id: if institution_id >= 90 { 2 } else { 1 },
            routed,
            recognised: false,
        }
    }

    fn recognised(institution_id: i64) -> TargetScope {
        TargetScope::Study {
            institution_id,
            alliance_id: if institution_id >= 90 { 2 } else { 1 },
            routed: false,
            recognised: true,
        }
    }

    #[test]
    fn clinic_doctors_open_recognised_results_of_the_alliance() {
        let doctor = user(Role::ClinicDoctor, 20);
        let tech = user(Role::ClinicTech, 20);
        for a in [A::ReadStudy, A::ReadReport] {
            // another township's study: only when recognised, and only a doctor
            assert!(!allowed(&doctor, a, study(32, false)));
            assert!(allowed(&doctor, a, recognised(32)));
            assert!(!allowed(&tech, a, recognised(32)));
            // never another alliance's
            assert!(!allowed(&doctor, a, recognised(91)));
            // its own subtree as before
            assert!(allowed(&doctor, a, study(30, false)));
            assert!(needs_recognition(&doctor, a));
            assert!(!needs_recognition(&tech, a));
            assert!(!needs_routing(&doctor, a));
        }
        // nothing else widens: writing, acknowledging, lists
        assert!(!allowed(&doctor, A::WriteStudy, recognised(32)));
        assert!(!allowed(&doctor, A::AcknowledgeCritical, recognised(32)));
        assert!(!allowed(&doctor, A::ReadStudy, inst(32)));
        assert_eq!(
            list_scope(&doctor, A::ReadStudy),
            list_scope(&tech, A::ReadStudy)
        );
        for role in [
            Role::Reader,
            Role::SeniorReader,
            Role::GroupAdmin,
            Role::Auditor,
        ] {
            assert!(!needs_recognition(&user(role, 10), A::ReadStudy));
        }
    }

    #[test]
    fn a_study_is_judged_by_its_institution_except_by_readers() {
        let township = user(Role::ClinicDoctor, 20);
        let admin = user(Role::GroupAdmin, 10);
        for routed in [false, true] {
            assert!(allowed(&township, A::ReadStudy, study(30, routed)));
            assert!(!allowed(&township, A::ReadStudy, study(32, routed)));
            assert!(allowed(&admin, A::ReadStudy, study(32, routed)));
            assert!(!allowed(&admin, A::ReadStudy, study(91, routed)));
            assert!(!needs_routing(&township, A::ReadStudy));
            assert!(!needs_routing(&admin, A::ReadReport));
        }
        let mut path = list_scope(&township, A::ReadStudy);
        if let ListScope::Institutions { institution_ids } = &mut path {
            institution_ids.sort_unstable();
        }
        assert_eq!(
            path,
            ListScope::Institutions {
                institution_ids: vec![20, 30, 31]
            }
        );
        assert_eq!(
            list_scope(&admin, A::ReadStudy),
            ListScope::Alliance { alliance_id: 1 }
        );
        assert_eq!(
            list_scope(&user(Role::Auditor, 10), A::ReadStudy),
            ListScope::Nothing
        );
        assert_eq!(
            list_scope(&user(Role::Superadmin, 10), A::ReadReport),
            ListScope::Everything
        );
    }

    #[test]
    fn group_admin_sees_and_manages_the_alliance_only() {
        let g = user(Role::GroupAdmin, 10);
        for action in [
            A::ReadStudy,
            A::ReadReport,
            A::ManageInstitution,
            A::ManageUsers,
            A::ManageDevices,
            A::ManageRouting,
            A::ReadWorklist,
            A::SuperviseWork,
            A::ReadStats,
            A::ReadSetup,
        ] {
            assert!(allowed(&g, action, inst(32)));
            assert!(allowed(
                &g,
                action,
                TargetScope::Alliance { alliance_id: 1 }
            ));
            assert!(!allowed(
                &g,
                action,
                TargetScope::Alliance { alliance_id: 2 }
            ));
            assert!(!allowed(&g, action, inst(91)));
            assert!(!allowed(&g, action, TargetScope::Hub));
        }
        for action in [
            A::WriteStudy,
            A::UploadEcg,
            A::WriteReport,
            A::SignReport,
            A::AmendReport,
            A::ReadAudit,
            A::ClaimWork,
        ] {
            assert_eq!(
                authorize(&g, action, inst(10)),
                Decision::Deny(Denial::ActionNotPermitted)
            );
        }
    }

    #[test]
    fn auditor_reads_the_audit_log_only() {
        let a = user(Role::Auditor, 10);
        assert!(allowed(
            &a,
            A::ReadAudit,
            TargetScope::Alliance { alliance_id: 1 }
        ));
        assert!(allowed(&a, A::ReadAudit, inst(30)));
        assert!(!allowed(
            &a,
            A::ReadAudit,
            TargetScope::Alliance { alliance_id: 2 }
        ));
        assert!(!allowed(&a, A::ReadAudit, TargetScope::Hub));
        for action in Action::ALL.into_iter().filter(|x| *x != A::ReadAudit) {
            assert_eq!(
                authorize(&a, action, inst(10)),
                Decision::Deny(Denial::ActionNotPermitted),
                "{action:?}"
            );
        }
    }

    #[test]
    fn devices_and_ae_titles_only_store_for_their_own_institution() {
        let d = principal(PrincipalKind::Device, 20);
        assert!(allowed(&d, A::UploadEcg, inst(20)));
        assert!(allowed(&d, A::WriteStudy, inst(20)));
        assert_eq!(
            authorize(&d, A::UploadEcg, inst(30)),
            Decision::Deny(Denial::OutOfScope),
            "a township's device does not upload for its villages"
        );
        assert!(!allowed(&d, A::UploadEcg, inst(91)));
        let ae = principal(PrincipalKind::Ae, 30);
        assert!(allowed(&ae, A::WriteStudy, inst(30)));
        assert!(!allowed(&ae, A::WriteStudy, inst(31)));
        assert!(!allowed(&ae, A::UploadEcg, inst(30)));
        for action in Action::ALL
            .into_iter()
            .filter(|x| !matches!(x, A::UploadEcg | A::WriteStudy))
        {
            assert_eq!(
                authorize(&d, action, inst(20)),
                Decision::Deny(Denial::ActionNotPermitted),
                "device {action:?}"
            );
            assert!(!allowed(&ae, action, inst(30)), "AE {action:?}");
        }
    }

    #[test]
    fn superadmin_may_do_everything() {
        let s = user(Role::Superadmin, 10);
        for action in Action::ALL {
            for target in [
                inst(30),
                inst(91),
                TargetScope::Alliance { alliance_id: 2 },
                TargetScope::Hub,
            ] {
                assert!(allowed(&s, action, target), "{action:?} {target:?}");
            }
        }
    }

    #[test]
    fn only_superadmin_reaches_the_hub_scope() {
        for role in Role::ALL {
            for action in Action::ALL {
                let d = authorize(&user(role, 10), action, TargetScope::Hub);
                assert_eq!(
                    d.is_allowed(),
                    role == Role::Superadmin,
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn a_forged_path_does_not_cross_alliances() {
        let mut p = user(Role::ClinicDoctor, 20);
        p.institution_path.push(91);
        assert!(!allowed(&p, A::ReadStudy, inst(91)));
    }

    /// What a refused caller may learn exists: its own alliance's objects; a study only
    /// when it may read it. Everything else is answered as absent (404).
    #[test]
    fn visibility_hides_other_alliances_and_unreadable_studies() {
        let admin = user(Role::GroupAdmin, 10);
        assert!(visible(&admin, inst(32)));
        assert!(visible(&admin, TargetScope::Alliance { alliance_id: 1 }));
        assert!(!visible(&admin, inst(91)));
        assert!(!visible(&admin, TargetScope::Alliance { alliance_id: 2 }));
        assert!(visible(&admin, study(31, false)));
        assert!(!visible(&admin, study(91, false)));
        // a township's technician: its own subtree's studies, not a sibling township's
        let tech = user(Role::ClinicTech, 20);
        assert!(visible(&tech, study(30, false)));
        assert!(!visible(&tech, study(21, false)));
        assert!(!visible(&tech, study(32, false)));
        assert!(
            visible(&tech, inst(21)),
            "institutions of the alliance are listed"
        );
        // a reader: studies routed to it only
        let reader = user(Role::Reader, 10);
        assert!(visible(&reader, study(30, true)));
        assert!(!visible(&reader, study(30, false)));
        assert!(
            !visible(&reader, study(91, true)),
            "routed in another alliance"
        );
        // clinic doctors also see recognised results across the alliance
        assert!(visible(&user(Role::ClinicDoctor, 32), recognised(30)));
        // an auditor reads no study
        assert!(!visible(&user(Role::Auditor, 10), study(10, false)));
        // the superadmin sees everything, including what belongs to no institution
        let root = user(Role::Superadmin, 10);
        assert!(visible(&root, inst(91)) && visible(&root, study(91, false)));
        assert!(visible(&root, TargetScope::Hub));
        assert!(
            !visible(&admin, TargetScope::Hub),
            "a study of no institution"
        );
    }

    #[test]
    fn ever_permitted_follows_the_role_table() {
        let reader = PrincipalKind::User { role: Role::Reader };
        assert!(ever_permitted(reader, A::ClaimWork));
        assert!(!ever_permitted(reader, A::ManageRouting));
        assert!(ever_permitted(PrincipalKind::Device, A::UploadEcg));
        assert!(!ever_permitted(PrincipalKind::Device, A::ReadStudy));
        assert!(!ever_permitted(
            PrincipalKind::User {
                role: Role::Auditor
            },
            A::ReadStudy
        ));
    }
}
