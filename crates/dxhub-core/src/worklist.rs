//! The worklist's pure rules: priorities, the work-item state machine, routing-rule
//! matching, on-duty schedules, turnaround clocks and the [`Clock`] every time-dependent
//! step takes (so tests move time instead of sleeping).
//!
//! Times are epoch microseconds in UTC. Local time (rule time windows, duty schedules) is
//! China Standard Time, UTC+8 all year (China has no daylight saving time), so no time
//! zone database is needed.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use crate::tenancy::InstitutionLevel;

/// Microseconds per second / minute / day.
pub const US_PER_S: i64 = 1_000_000;
pub const US_PER_MIN: i64 = 60 * US_PER_S;
const US_PER_DAY: i64 = 86_400 * US_PER_S;
/// Asia/Shanghai: UTC+8, no DST.
pub const SHANGHAI_OFFSET_US: i64 = 8 * 3_600 * US_PER_S;

// ---- clock ----

/// Where "now" comes from. Production uses [`SystemClock`]; tests inject a [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// Epoch microseconds, UTC.
    fn now_us(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_us: i64) -> Self {
        Self(AtomicI64::new(now_us))
    }
    pub fn set(&self, now_us: i64) {
        self.0.store(now_us, Ordering::SeqCst);
    }
    pub fn advance_s(&self, seconds: i64) {
        self.0.fetch_add(seconds * US_PER_S, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Weekday (1 = Monday … 7 = Sunday) and minute of the day in Asia/Shanghai.
pub fn shanghai_weekday_minute(at_us: i64) -> (u8, u16) {
    let local = at_us + SHANGHAI_OFFSET_US;
    let day = local.div_euclid(US_PER_DAY);
    let minute = local.rem_euclid(US_PER_DAY) / US_PER_MIN;
    // 1970-01-01 was a Thursday (4).
    let weekday = (day + 3).rem_euclid(7) + 1;
    (
        u8::try_from(weekday).unwrap_or(1),
        u16::try_from(minute).unwrap_or(0),
    )
}

// ---- priority ----

/// How urgently a study must be read. Ordered: `Stat` < `Urgent` < `Routine`, so the
/// smallest is the most urgent (and sorts first).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Stat,
    Urgent,
    #[default]
    Routine,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Self::Stat, Self::Urgent, Self::Routine];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stat => "stat",
            Self::Urgent => "urgent",
            Self::Routine => "routine",
        }
    }

    /// 0 (stat), 1 (urgent), 2 (routine): what the index sorts on.
    pub const fn rank(self) -> i64 {
        match self {
            Self::Stat => 0,
            Self::Urgent => 1,
            Self::Routine => 2,
        }
    }

    pub const fn from_rank(rank: i64) -> Self {
        match rank {
            0 => Self::Stat,
            1 => Self::Urgent,
            _ => Self::Routine,
        }
    }

    /// The more urgent of two.
    pub fn raise(self, other: Self) -> Self {
        self.min(other)
    }

    /// Maps the DICOM Requested Procedure / Scheduled Procedure Step priority values
    /// (`STAT`, `HIGH`, `ROUTINE`, `MEDIUM`, `LOW`) and the API's names.
    pub fn from_dicom(value: &str) -> Option<Self> {
        match value.trim().to_ascii_uppercase().as_str() {
            "STAT" => Some(Self::Stat),
            "HIGH" | "URGENT" => Some(Self::Urgent),
            "ROUTINE" | "MEDIUM" | "LOW" => Some(Self::Routine),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown priority {0:?} (expected stat, urgent or routine)")]
pub struct ParsePriorityError(pub String);

impl FromStr for Priority {
    type Err = ParsePriorityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stat" => Ok(Self::Stat),
            "urgent" => Ok(Self::Urgent),
            "routine" => Ok(Self::Routine),
            other => Err(ParsePriorityError(other.to_owned())),
        }
    }
}

// ---- work-item states ----

/// Where a work item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkState {
    /// Ready, waiting for a reader.
    Queued,
    /// Leased by one reader.
    Claimed,
    /// The reader saved a draft report.
    Drafted,
    /// The reader submitted the report for verification.
    Submitted,
    /// A senior verified and signed: done.
    Signed,
    /// A senior returned the report to its author with a reason.
    Returned,
    /// Withdrawn (wrong patient, duplicate exam …): done.
    Cancelled,
}

impl WorkState {
    pub const ALL: [WorkState; 7] = [
        Self::Queued,
        Self::Claimed,
        Self::Drafted,
        Self::Submitted,
        Self::Signed,
        Self::Returned,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Claimed => "claimed",
            Self::Drafted => "drafted",
            Self::Submitted => "submitted",
            Self::Signed => "signed",
            Self::Returned => "returned",
            Self::Cancelled => "cancelled",
        }
    }

    /// Held by a reader under a lease (counts towards the reader's maximum).
    pub const fn is_leased(self) -> bool {
        matches!(self, Self::Claimed | Self::Drafted | Self::Returned)
    }

    /// Still to be read or verified: on the clock.
    pub const fn is_open(self) -> bool {
        !matches!(self, Self::Signed | Self::Cancelled)
    }

    /// A report exists (submitted or signed): new images are flagged.
    pub const fn has_report(self) -> bool {
        matches!(self, Self::Submitted | Self::Signed)
    }

    /// Whether `self → to` is a transition of the state machine.
    ///
    /// ```text
    /// queued → claimed → drafted → submitted → signed
    ///            ↑  ↓        ↓          ↓
    ///          queued      queued    returned → drafted / submitted
    /// any open state → cancelled
    /// ```
    /// A lease that expires or is released or broken sends `claimed`/`drafted` back to
    /// `queued` (the draft stays with the report).
    pub const fn can_become(self, to: Self) -> bool {
        use WorkState as S;
        matches!(
            (self, to),
            (S::Queued, S::Claimed)
                | (S::Claimed, S::Queued)
                | (S::Claimed, S::Drafted)
                | (S::Claimed, S::Submitted)
                | (S::Drafted, S::Drafted)
                | (S::Drafted, S::Queued)
                | (S::Drafted, S::Submitted)
                | (S::Submitted, S::Signed)
                | (S::Submitted, S::Returned)
                | (S::Returned, S::Drafted)
                | (S::Returned, S::Submitted)
                | (S::Returned, S::Queued)
                | (
                    S::Queued | S::Claimed | S::Drafted | S::Submitted | S::Returned,
                    S::Cancelled
                )
        )
    }
}

impl fmt::Display for WorkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s.trim())
            .ok_or_else(|| format!("unknown work-item state {s:?}"))
    }
}

// ---- routing rules ----

/// A local time window `from`–`to` ("HH:MM", Asia/Shanghai). `from > to` wraps past
/// midnight (e.g. 18:00–08:00 is the night shift).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub from: String,
    pub to: String,
}

impl TimeWindow {
    fn minutes(&self) -> Result<(u16, u16), String> {
        Ok((parse_hhmm(&self.from)?, parse_hhmm(&self.to)?))
    }

    /// Whether the local minute of the day falls in the window (`from` inclusive, `to`
    /// exclusive).
    pub fn contains(&self, minute: u16) -> bool {
        match self.minutes() {
            Ok((from, to)) if from <= to => minute >= from && minute < to,
            Ok((from, to)) => minute >= from || minute < to,
            Err(_) => false,
        }
    }
}

fn parse_hhmm(s: &str) -> Result<u16, String> {
    let bad = || format!("time {s:?} is not HH:MM");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    // 24:00 is allowed as the end of a day
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The conditions of a routing rule. Every list that is not empty must contain the
/// study's value (any of its values, for modalities, body parts and SOP classes);
/// empty lists and absent fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleMatch {
    /// Source institutions (ids).
    pub institutions: Vec<i64>,
    /// Source institution levels.
    pub levels: Vec<InstitutionLevel>,
    /// Modalities (`CT`, `ECG` …), upper case.
    pub modalities: Vec<String>,
    /// Body Part Examined values (`CHEST`, `HEAD` …), upper case.
    pub body_parts: Vec<String>,
    /// SOP Class UIDs.
    pub sop_classes: Vec<String>,
    /// Procedure codes (Procedure Code Sequence code values) or the exam codes a sender
    /// gave.
    pub procedure_codes: Vec<String>,
    /// The priority the sender set.
    pub sender_priorities: Vec<Priority>,
    /// Local time of day the study became ready.
    pub time: Option<TimeWindow>,
    /// Local weekdays, 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
}

/// A routing rule as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: i64,
    /// Ascending: the first matching rule wins.
    pub position: i64,
    pub enabled: bool,
    pub matches: RuleMatch,
    pub pool_id: i64,
    pub priority: Priority,
    pub sla_minutes: i64,
}

/// What the router knows about a study when it becomes ready.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StudyFacts {
    pub institution_id: Option<i64>,
    pub level: Option<InstitutionLevel>,
    pub modalities: Vec<String>,
    pub body_parts: Vec<String>,
    pub sop_classes: Vec<String>,
    pub procedure_codes: Vec<String>,
    pub sender_priority: Option<Priority>,
    /// When the study became ready (epoch µs UTC).
    pub at_us: i64,
}

fn any_in(wanted: &[String], have: &[String]) -> bool {
    wanted.is_empty()
        || have
            .iter()
            .any(|h| wanted.iter().any(|w| w.eq_ignore_ascii_case(h.trim())))
}

impl RuleMatch {
    /// Whether a study with these facts matches.
    pub fn matches(&self, f: &StudyFacts) -> bool {
        let (weekday, minute) = shanghai_weekday_minute(f.at_us);
        (self.institutions.is_empty()
            || f.institution_id
                .is_some_and(|i| self.institutions.contains(&i)))
            && (self.levels.is_empty() || f.level.is_some_and(|l| self.levels.contains(&l)))
            && any_in(&self.modalities, &f.modalities)
            && any_in(&self.body_parts, &f.body_parts)
            && any_in(&self.sop_classes, &f.sop_classes)
            && any_in(&self.procedure_codes, &f.procedure_codes)
            && (self.sender_priorities.is_empty()
                || f.sender_priority
                    .is_some_and(|p| self.sender_priorities.contains(&p)))
            && self.time.as_ref().is_none_or(|w| w.contains(minute))
            && (self.weekdays.is_empty() || self.weekdays.contains(&weekday))
    }

    /// Reasons the conditions are unusable (empty: valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(w) = &self.time
            && let Err(e) = w.minutes()
        {
            out.push(format!("time: {e}"));
        }
        if let Some(d) = self.weekdays.iter().find(|d| !(1..=7).contains(*d)) {
            out.push(format!("weekdays: {d} is not 1 (Monday) … 7 (Sunday)"));
        }
        for (name, list) in [
            ("modalities", &self.modalities),
            ("body_parts", &self.body_parts),
            ("sop_classes", &self.sop_classes),
            ("procedure_codes", &self.procedure_codes),
        ] {
            if list.iter().any(|v| v.trim().is_empty() || v.len() > 64) {
                out.push(format!("{name}: values must be 1–64 characters"));
            }
        }
        out
    }
}

/// The first enabled rule (by position, then id) whose conditions the study meets.
pub fn route<'a>(rules: &'a [Rule], facts: &StudyFacts) -> Option<&'a Rule> {
    let mut ordered: Vec<&Rule> = rules.iter().filter(|r| r.enabled).collect();
    ordered.sort_by_key(|r| (r.position, r.id));
    ordered.into_iter().find(|r| r.matches.matches(facts))
}

/// The priority of a new work item: the rule's, raised by the sender's and by an ECG
/// critical flag (always STAT).
pub fn initial_priority(rule: Priority, sender: Option<Priority>, ecg_critical: bool) -> Priority {
    let p = sender.map_or(rule, |s| rule.raise(s));
    if ecg_critical { Priority::Stat } else { p }
}

/// Longest SLA accepted (30 days).
pub const MAX_SLA_MINUTES: i64 = 30 * 24 * 60;

/// `(warn_at, due_at)` of an item ready at `ready_us` with `sla_minutes`, warned at
/// `warn_fraction` of the SLA.
pub fn turnaround(ready_us: i64, sla_minutes: i64, warn_fraction: f64) -> (i64, i64) {
    let sla_us = sla_minutes.clamp(1, MAX_SLA_MINUTES) * US_PER_MIN;
    let fraction = if warn_fraction.is_finite() {
        warn_fraction.clamp(0.0, 1.0)
    } else {
        0.8
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let warn_us = (sla_us as f64 * fraction) as i64;
    (ready_us + warn_us, ready_us + sla_us)
}

/// The pools and routing rules every new alliance starts with, as `(pool name, pool
/// label, rule name, modalities, priority, SLA minutes)`: ECG → the ECG pool (critical
/// ECGs are raised to STAT); CR/DX/CT/MR/MG → radiology; US → ultrasound.
pub type DefaultRoute = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    Priority,
    i64,
);
pub const DEFAULT_ROUTES: [DefaultRoute; 3] = [
    (
        "ecg",
        "心电诊断组",
        "心电 → 心电诊断组",
        &["ECG"],
        Priority::Urgent,
        30,
    ),
    (
        "radiology",
        "影像诊断组",
        "放射 → 影像诊断组",
        &["CR", "DX", "CT", "MR", "MG"],
        Priority::Routine,
        240,
    ),
    (
        "ultrasound",
        "超声诊断组",
        "超声 → 超声诊断组",
        &["US"],
        Priority::Routine,
        240,
    ),
];

// ---- duty schedules ----

/// An on-duty schedule: `;`-separated entries `DAYS HH:MM-HH:MM`, where `DAYS` is a day
/// (`mon` … `sun`), a range (`mon-fri`) or `daily`, in Asia/Shanghai time; an end before
/// the start runs past midnight. Empty: always on duty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    entries: Vec<(Vec<u8>, TimeWindow)>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_number(s: &str) -> Result<u8, String> {
    DAYS.iter()
        .position(|d| *d == s)
        .and_then(|i| u8::try_from(i + 1).ok())
        .ok_or_else(|| format!("unknown day {s:?} (mon … sun)"))
}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut entries = Vec::new();
        for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (days, times) = entry
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("{entry:?}: expected DAYS HH:MM-HH:MM"))?;
            let days = days.trim().to_ascii_lowercase();
            let days: Vec<u8> = if days == "daily" {
                (1..=7).collect()
            } else if let Some((a, b)) = days.split_once('-') {
                let (a, b) = (day_number(a)?, day_number(b)?);
                if a <= b {
                    (a..=b).collect()
                } else {
                    (a..=7).chain(1..=b).collect()
                }
            } else {
                days.split(',').map(day_number).collect::<Result<_, _>>()?
            };
            let (from, to) = times
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("{entry:?}: expected HH:MM-HH:MM"))?;
            let window = TimeWindow {
                from: from.trim().to_owned(),
                to: to.trim().to_owned(),
            };
            window.minutes().map_err(|e| format!("{entry:?}: {e}"))?;
            entries.push((days, window));
        }
        Ok(Self { entries })
    }
}

impl Schedule {
    /// On duty at `at_us`. A window past midnight belongs to the day it starts on.
    pub fn on_duty(&self, at_us: i64) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let (weekday, minute) = shanghai_weekday_minute(at_us);
        let yesterday = if weekday == 1 { 7 } else { weekday - 1 };
        self.entries.iter().any(|(days, w)| {
            let Ok((from, to)) = w.minutes() else {
                return false;
            };
            if from <= to {
                days.contains(&weekday) && minute >= from && minute < to
            } else {
                (days.contains(&weekday) && minute >= from)
                    || (days.contains(&yesterday) && minute < to)
            }
        })
    }
}

/// Whether a schedule string is on duty at `at_us` (an unparsable schedule: never).
pub fn on_duty(schedule: Option<&str>, at_us: i64) -> bool {
    match schedule.map(str::trim).filter(|s| !s.is_empty()) {
        None => true,
        Some(s) => s.parse::<Schedule>().is_ok_and(|s| s.on_duty(at_us)),
    }
}

// ---- patient identity ----

/// Whether `id` is a valid 18-character PRC resident identity number (GB 11643: 17
/// digits and an ISO 7064 MOD 11-2 check character, `X` for 10).
pub fn is_cn_resident_id(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.trim().as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

/// The identity a patient is recognised by across the alliance, before hashing:
/// a resident identity number found in Patient ID or Other Patient IDs
/// (`cn-rid:…`); else, when the sender named an issuer (a health card, a regional
/// master patient index), `issuer:{issuer}|{id}`; else the patient is only known
/// inside the sending institution (`local:{patient key}`).
pub fn identity_basis(
    patient_id: &str,
    issuer: Option<&str>,
    other_ids: &[(String, Option<String>)],
    local_key: &str,
) -> String {
    if is_cn_resident_id(patient_id) {
        return format!("cn-rid:{}", patient_id.trim().to_ascii_uppercase());
    }
    if let Some((id, _)) = other_ids.iter().find(|(id, _)| is_cn_resident_id(id)) {
        return format!("cn-rid:{}", id.trim().to_ascii_uppercase());
    }
    match issuer.map(str::trim).filter(|i| !i.is_empty()) {
        Some(i) if !patient_id.trim().is_empty() => {
            format!("issuer:{i}|{}", patient_id.trim())
        }
        _ => format!("local:{local_key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23 is a Monday. 02:00 UTC = 10:00 Shanghai.
    const MON_10H: i64 = 1_795_399_200 * US_PER_S;

    fn facts(modality: &str) -> StudyFacts {
        StudyFacts {
            institution_id: Some(30),
            level: Some(InstitutionLevel::Village),
            modalities: vec![modality.to_owned()],
            at_us: MON_10H,
            ..StudyFacts::default()
        }
    }

    fn rule(id: i64, position: i64, matches: RuleMatch) -> Rule {
        Rule {
            id,
            position,
            enabled: true,
            matches,
            pool_id: id * 10,
            priority: Priority::Routine,
            sla_minutes: 60,
        }
    }

    #[test]
    fn shanghai_time_is_utc_plus_8() {
        assert_eq!(shanghai_weekday_minute(MON_10H), (1, 600));
        // 16:30 UTC Sunday = 00:30 Monday in Shanghai
        assert_eq!(
            shanghai_weekday_minute(
                MON_10H - 2 * 3_600 * US_PER_S - 8 * 3_600 * US_PER_S + 30 * US_PER_MIN
            ),
            (1, 30)
        );
        assert_eq!(
            shanghai_weekday_minute(MON_10H - 11 * 3_600 * US_PER_S),
            (7, 23 * 60)
        );
        assert_eq!(shanghai_weekday_minute(0), (4, 480));
    }

    #[test]
    fn priority_order_and_parsing() {
        assert!(Priority::Stat < Priority::Urgent && Priority::Urgent < Priority::Routine);
        assert_eq!(Priority::Routine.raise(Priority::Stat), Priority::Stat);
        assert_eq!(Priority::Stat.raise(Priority::Routine), Priority::Stat);
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
            assert_eq!(Priority::from_rank(p.rank()), p);
        }
        assert_eq!(Priority::from_dicom("HIGH"), Some(Priority::Urgent));
        assert_eq!(Priority::from_dicom("low"), Some(Priority::Routine));
        assert_eq!(Priority::from_dicom("x"), None);
        assert_eq!(
            initial_priority(Priority::Routine, None, false),
            Priority::Routine
        );
        assert_eq!(
            initial_priority(Priority::Routine, Some(Priority::Urgent), false),
            Priority::Urgent
        );
        assert_eq!(
            initial_priority(Priority::Urgent, Some(Priority::Routine), false),
            Priority::Urgent,
            "a sender cannot lower the rule's priority"
        );
        assert_eq!(
            initial_priority(Priority::Routine, None, true),
            Priority::Stat
        );
    }

    #[test]
    fn state_machine() {
        use WorkState as S;
        assert!(S::Queued.can_become(S::Claimed));
        assert!(S::Claimed.can_become(S::Queued));
        assert!(S::Claimed.can_become(S::Drafted));
        assert!(S::Drafted.can_become(S::Submitted));
        assert!(S::Submitted.can_become(S::Signed));
        assert!(S::Submitted.can_become(S::Returned));
        assert!(S::Returned.can_become(S::Drafted));
        assert!(!S::Queued.can_become(S::Signed));
        assert!(!S::Queued.can_become(S::Drafted));
        assert!(!S::Signed.can_become(S::Queued));
        assert!(!S::Signed.can_become(S::Cancelled));
        assert!(!S::Cancelled.can_become(S::Queued));
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>().unwrap(), s);
            assert_eq!(s.can_become(S::Cancelled), s.is_open(), "{s}");
        }
    }

    #[test]
    fn every_condition_of_a_rule() {
        let f = facts("CT");
        let cases: Vec<(RuleMatch, bool)> = vec![
            (RuleMatch::default(), true),
            (
                RuleMatch {
                    institutions: vec![30],
                    ..Default::default()
                },
                true,
            ),
            (
                RuleMatch {
                    institutions: vec![31],
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    levels: vec![InstitutionLevel::Village],
                    ..Default::default()
                },
                true,
            ),
            (
                RuleMatch {
                    levels: vec![InstitutionLevel::Township],
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    modalities: vec!["ct".into(), "MR".into()],
                    ..Default::default()
                },
                true,
            ),
            (
                RuleMatch {
                    modalities: vec!["US".into()],
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    body_parts: vec!["CHEST".into()],
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    sop_classes: vec!["1.2.840.10008.5.1.4.1.1.2".into()],
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    procedure_codes: vec!["CT-HEAD".into()],
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    sender_priorities: vec![Priority::Stat],
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    time: Some(TimeWindow {
                        from: "08:00".into(),
                        to: "18:00".into(),
                    }),
                    ..Default::default()
                },
                true,
            ),
            (
                RuleMatch {
                    time: Some(TimeWindow {
                        from: "18:00".into(),
                        to: "08:00".into(),
                    }),
                    ..Default::default()
                },
                false,
            ),
            (
                RuleMatch {
                    weekdays: vec![1, 2, 3, 4, 5],
                    ..Default::default()
                },
                true,
            ),
            (
                RuleMatch {
                    weekdays: vec![6, 7],
                    ..Default::default()
                },
                false,
            ),
        ];
        for (m, want) in &cases {
            assert_eq!(m.matches(&f), *want, "{m:?}");
        }
        let mut g = f.clone();
        g.body_parts = vec!["CHEST".into()];
        g.sop_classes = vec!["1.2.840.10008.5.1.4.1.1.2".into()];
        g.procedure_codes = vec!["CT-HEAD".into()];
        g.sender_priority = Some(Priority::Stat);
        for (m, _) in &cases[7..11] {
            assert!(m.matches(&g), "{m:?} with the value present");
        }
        // night shift window wraps midnight
        let night = TimeWindow {
            from: "18:00".into(),
            to: "08:00".into(),
        };
        assert!(night.contains(23 * 60) && night.contains(7 * 60) && !night.contains(8 * 60));
    }

    #[test]
    fn first_enabled_match_by_position_wins() {
        let ct = RuleMatch {
            modalities: vec!["CT".into()],
            ..Default::default()
        };
        let mut rules = vec![
            rule(1, 20, RuleMatch::default()),
            rule(2, 10, ct.clone()),
            rule(
                3,
                5,
                RuleMatch {
                    modalities: vec!["US".into()],
                    ..Default::default()
                },
            ),
        ];
        assert_eq!(route(&rules, &facts("CT")).map(|r| r.id), Some(2));
        assert_eq!(route(&rules, &facts("US")).map(|r| r.id), Some(3));
        assert_eq!(route(&rules, &facts("MG")).map(|r| r.id), Some(1));
        rules[1].enabled = false;
        assert_eq!(route(&rules, &facts("CT")).map(|r| r.id), Some(1));
        rules.remove(0);
        assert_eq!(route(&rules, &facts("CT")), None);
    }

    #[test]
    fn defaults_route_the_usual_modalities() {
        let rules: Vec<Rule> = DEFAULT_ROUTES
            .iter()
            .enumerate()
            .map(|(i, (_, _, _, mods, prio, sla))| Rule {
                id: i as i64,
                position: i as i64,
                enabled: true,
                matches: RuleMatch {
                    modalities: mods.iter().map(|m| (*m).to_owned()).collect(),
                    ..Default::default()
                },
                pool_id: i as i64,
                priority: *prio,
                sla_minutes: *sla,
            })
            .collect();
        for (m, pool) in [
            ("ECG", 0),
            ("CR", 1),
            ("DX", 1),
            ("CT", 1),
            ("MR", 1),
            ("MG", 1),
            ("US", 2),
        ] {
            assert_eq!(
                route(&rules, &facts(m)).map(|r| r.pool_id),
                Some(pool),
                "{m}"
            );
        }
        assert_eq!(route(&rules, &facts("OT")), None);
    }

    #[test]
    fn rule_validation() {
        assert!(RuleMatch::default().problems().is_empty());
        let bad = RuleMatch {
            time: Some(TimeWindow {
                from: "25:00".into(),
                to: "08:00".into(),
            }),
            weekdays: vec![0],
            modalities: vec![String::new()],
            ..Default::default()
        };
        assert_eq!(bad.problems().len(), 3, "{:?}", bad.problems());
    }

    #[test]
    fn turnaround_clock() {
        let (warn, due) = turnaround(1_000, 10, 0.8);
        assert_eq!(due, 1_000 + 10 * US_PER_MIN);
        assert_eq!(warn, 1_000 + 8 * US_PER_MIN);
    }

    #[test]
    fn schedules() {
        let s: Schedule = "mon-fri 08:00-17:30; sat 08:00-12:00".parse().unwrap();
        assert!(s.on_duty(MON_10H));
        assert!(!s.on_duty(MON_10H + 8 * 3_600 * US_PER_S), "18:00 Monday");
        assert!(s.on_duty(MON_10H + 5 * 86_400 * US_PER_S), "Saturday 10:00");
        assert!(!s.on_duty(MON_10H + 6 * 86_400 * US_PER_S), "Sunday");
        let night: Schedule = "sun 20:00-08:00".parse().unwrap();
        assert!(
            night.on_duty(MON_10H - 3 * 3_600 * US_PER_S),
            "Monday 07:00 from Sunday's shift"
        );
        assert!(!night.on_duty(MON_10H));
        assert!(on_duty(None, MON_10H) && on_duty(Some(""), MON_10H));
        assert!(!on_duty(Some("garbage"), MON_10H));
        assert!("mon 8-9".parse::<Schedule>().is_err());
        assert!(
            "fri-mon 00:00-24:00"
                .parse::<Schedule>()
                .unwrap()
                .on_duty(MON_10H)
        );
        assert!(
            "daily 00:00-24:00"
                .parse::<Schedule>()
                .unwrap()
                .on_duty(MON_10H)
        );
    }

    #[test]
    fn identity() {
        // a valid number from GB 11643's example
        assert!(is_cn_resident_id("11010519491231002X"));
        assert!(is_cn_resident_id("11010519491231002x"));
        assert!(!is_cn_resident_id("110105194912310021"));
        assert!(!is_cn_resident_id("1101051949123100"));
        assert_eq!(
            identity_basis("11010519491231002X", None, &[], "5|x|1"),
            "cn-rid:11010519491231002X"
        );
        assert_eq!(
            identity_basis("P1", None, &[("11010519491231002X".into(), None)], "5||P1"),
            "cn-rid:11010519491231002X"
        );
        assert_eq!(
            identity_basis("P1", Some("HC"), &[], "5|HC|P1"),
            "issuer:HC|P1"
        );
        assert_eq!(identity_basis("P1", None, &[], "5||P1"), "local:5||P1");
    }
}
