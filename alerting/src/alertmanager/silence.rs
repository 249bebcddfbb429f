//! Silences: matchers and a time window during which matching alerts are not notified, with
//! Alertmanager's rules for creating, updating and expiring them (`silence/silence.go`).
//!
//! The set owns no I/O: every change returns, and [`Silences::snapshot`] gives, the records
//! the caller persists before answering, so that an acknowledged silence survives a crash.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use super::matchers::{MatchOp, Matcher, Matchers};

/// How long expired silences are kept (Alertmanager's `--data.retention`).
pub const RETENTION: ChronoDuration = ChronoDuration::hours(120);

/// A matcher as the API and the persisted state carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    /// Absent in requests from clients older than Alertmanager 0.22: then `true`.
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

impl ApiMatcher {
    /// Compiles the matcher; the error names it.
    pub fn to_matcher(&self) -> Result<Matcher, String> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        Matcher::new(&self.name, op, &self.value)
            .map_err(|e| format!("matcher {:?}: {e}", self.name))
    }
}

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<ApiMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// A silence's state at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

/// A silence that is set, with its matchers compiled.
#[derive(Debug, Clone)]
struct Entry {
    silence: Silence,
    matchers: Matchers,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceError {
    /// Bad input (HTTP 400).
    Invalid(String),
    /// No silence with that id (HTTP 404).
    NotFound(String),
}

impl std::fmt::Display for SilenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SilenceError::Invalid(m) => f.write_str(m),
            SilenceError::NotFound(id) => write!(f, "silence {id} not found"),
        }
    }
}

/// The set of silences of one tenant.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    entries: BTreeMap<String, Entry>,
}

impl Silences {
    /// Rebuilds the set from persisted records (later records of one id replace earlier
    /// ones); records that no longer compile are skipped and named.
    pub fn restore(records: impl IntoIterator<Item = Silence>) -> (Silences, Vec<String>) {
        let mut set = Silences::default();
        let mut problems = Vec::new();
        for silence in records {
            match compile(&silence.matchers) {
                Ok(matchers) => {
                    set.entries
                        .insert(silence.id.clone(), Entry { silence, matchers });
                }
                Err(e) => problems.push(format!("silence {}: {e}", silence.id)),
            }
        }
        (set, problems)
    }

    /// Creates or updates a silence as `POST /api/v2/silences` does and returns the
    /// silences to persist (the new one, and the old one if it was expired in its place)
    /// and the id to answer with.
    ///
    /// With an id of an existing silence it is updated in place when only its end,
    /// comment or author change (or it has not started yet); otherwise the old one is
    /// expired and a new one created, as Alertmanager does. `new_id` makes the id.
    pub fn set(
        &mut self,
        mut silence: Silence,
        now: DateTime<Utc>,
        new_id: impl FnOnce() -> String,
    ) -> Result<(String, Vec<Silence>), SilenceError> {
        let matchers = validate(&silence)?;
        silence.updated_at = now;
        let mut changed = Vec::new();
        if !silence.id.is_empty() {
            let Some(previous) = self.entries.get(&silence.id).map(|e| e.silence.clone()) else {
                return Err(SilenceError::NotFound(silence.id));
            };
            if can_update(&previous, &silence, now) {
                changed.push(silence.clone());
                let id = silence.id.clone();
                self.entries.insert(id.clone(), Entry { silence, matchers });
                return Ok((id, changed));
            }
            // Expire the old one (if it still mutes) and create a new one below.
            if previous.state(now) != SilenceState::Expired {
                let expired = self.expire_entry(&previous.id, now);
                changed.extend(expired);
            }
        }
        if silence.ends_at <= now {
            return Err(SilenceError::Invalid(
                "end time can't be in the past".to_owned(),
            ));
        }
        if silence.starts_at < now {
            silence.starts_at = now;
        }
        silence.id = new_id();
        changed.push(silence.clone());
        let id = silence.id.clone();
        self.entries.insert(id.clone(), Entry { silence, matchers });
        Ok((id, changed))
    }

    /// Expires a silence (`DELETE /api/v2/silence/{id}`) and returns it to persist.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
        let state = self
            .entries
            .get(id)
            .map(|e| e.silence.state(now))
            .ok_or_else(|| SilenceError::NotFound(id.to_owned()))?;
        if state == SilenceState::Expired {
            return Err(SilenceError::Invalid(format!(
                "silence {id} already expired"
            )));
        }
        self.expire_entry(id, now)
            .ok_or_else(|| SilenceError::NotFound(id.to_owned()))
    }

    fn expire_entry(&mut self, id: &str, now: DateTime<Utc>) -> Option<Silence> {
        let entry = self.entries.get_mut(id)?;
        let s = &mut entry.silence;
        // A pending silence ends before it starts; an active one ends now.
        if s.starts_at > now {
            s.starts_at = now;
        }
        s.ends_at = now;
        s.updated_at = now;
        Some(s.clone())
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.entries.get(id).map(|e| &e.silence)
    }

    /// Every silence, in Alertmanager's listing order: active by end, pending by start,
    /// expired most recently ended first.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<&Silence> {
        let mut all: Vec<&Silence> = self.entries.values().map(|e| &e.silence).collect();
        all.sort_by(|a, b| {
            let (sa, sb) = (a.state(now), b.state(now));
            sa.cmp(&sb).then_with(|| match sa {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
        });
        all
    }

    /// The ids of the active silences that mute an alert with these labels.
    pub fn mutes(&self, labels: &BTreeMap<String, String>, now: DateTime<Utc>) -> Vec<String> {
        self.entries
            .values()
            .filter(|e| e.silence.state(now) == SilenceState::Active && e.matchers.matches(labels))
            .map(|e| e.silence.id.clone())
            .collect()
    }

    /// Forgets silences expired longer than [`RETENTION`] ago; returns how many.
    pub fn gc(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| e.silence.ends_at + RETENTION > now);
        before - self.entries.len()
    }

    /// Every silence kept, to persist as a whole.
    pub fn snapshot(&self) -> Vec<Silence> {
        self.entries.values().map(|e| e.silence.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn compile(matchers: &[ApiMatcher]) -> Result<Matchers, String> {
    matchers
        .iter()
        .map(ApiMatcher::to_matcher)
        .collect::<Result<Vec<_>, _>>()
        .map(Matchers)
}

/// Alertmanager's `validateSilence`.
fn validate(silence: &Silence) -> Result<Matchers, SilenceError> {
    let invalid = |m: String| SilenceError::Invalid(m);
    if silence.matchers.is_empty() {
        return Err(invalid("at least one matcher required".to_owned()));
    }
    for m in &silence.matchers {
        if m.name.is_empty() {
            return Err(invalid(
                "invalid label matcher: empty label name".to_owned(),
            ));
        }
    }
    let matchers = compile(&silence.matchers).map_err(invalid)?;
    if matchers.0.iter().all(Matcher::matches_empty) {
        return Err(invalid(
            "at least one matcher must not match the empty string".to_owned(),
        ));
    }
    if silence.ends_at < silence.starts_at {
        return Err(invalid("end time must not be before start time".to_owned()));
    }
    Ok(matchers)
}

/// Alertmanager's `canUpdate`: whether `next` may replace `previous` under the same id.
fn can_update(previous: &Silence, next: &Silence, now: DateTime<Utc>) -> bool {
    if previous.matchers != next.matchers {
        return false;
    }
    match previous.state(now) {
        SilenceState::Pending => next.starts_at >= now,
        SilenceState::Active => next.starts_at == previous.starts_at && next.ends_at >= now,
        SilenceState::Expired => false,
    }
}

/// A random version-4 UUID, the form of Alertmanager's silence ids.
pub fn new_silence_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        format!("2026-12-07T{s}Z").parse().unwrap()
    }

    fn silence(matchers: &[(&str, &str, bool, bool)], start: &str, end: &str) -> Silence {
        Silence {
            id: String::new(),
            matchers: matchers
                .iter()
                .map(|(n, v, re, eq)| ApiMatcher {
                    name: n.to_string(),
                    value: v.to_string(),
                    is_regex: *re,
                    is_equal: *eq,
                })
                .collect(),
            starts_at: at(start),
            ends_at: at(end),
            updated_at: at(start),
            created_by: "me".to_owned(),
            comment: "maintenance".to_owned(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_silence_mutes_matching_alerts_only_while_active() {
        let mut set = Silences::default();
        let (id, changed) = set
            .set(
                silence(&[("job", "api", false, true)], "10:00:00", "11:00:00"),
                at("09:00:00"),
                new_silence_id,
            )
            .unwrap();
        assert_eq!(changed.len(), 1);
        let alert = labels(&[("job", "api")]);
        assert!(set.mutes(&alert, at("09:30:00")).is_empty(), "pending");
        assert_eq!(set.mutes(&alert, at("10:30:00")), vec![id.clone()]);
        assert!(
            set.mutes(&labels(&[("job", "web")]), at("10:30:00"))
                .is_empty()
        );
        assert!(set.mutes(&alert, at("11:00:00")).is_empty(), "expired");
        assert_eq!(
            set.get(&id).unwrap().state(at("11:00:00")),
            SilenceState::Expired
        );
    }

    #[test]
    fn bad_silences_are_refused_with_alertmanagers_reasons() {
        let mut set = Silences::default();
        let now = at("09:00:00");
        for (s, wanted) in [
            (silence(&[], "10:00:00", "11:00:00"), "at least one matcher"),
            (
                silence(&[("a", ".*", true, true)], "10:00:00", "11:00:00"),
                "empty string",
            ),
            (
                silence(&[("a", "(", true, true)], "10:00:00", "11:00:00"),
                "regular expression",
            ),
            (
                silence(&[("a", "1", false, true)], "10:00:00", "09:30:00"),
                "before start",
            ),
            (
                silence(&[("a", "1", false, true)], "08:00:00", "08:30:00"),
                "in the past",
            ),
        ] {
            let err = set.set(s, now, new_silence_id).unwrap_err();
            assert!(err.to_string().contains(wanted), "{err}");
        }
        let mut unknown = silence(&[("a", "1", false, true)], "10:00:00", "11:00:00");
        unknown.id = "nope".to_owned();
        assert!(matches!(
            set.set(unknown, now, new_silence_id),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn extending_an_active_silence_keeps_its_id_and_changing_matchers_replaces_it() {
        let mut set = Silences::default();
        let (id, _) = set
            .set(
                silence(&[("a", "1", false, true)], "10:00:00", "11:00:00"),
                at("10:00:00"),
                new_silence_id,
            )
            .unwrap();
        let mut longer = set.get(&id).unwrap().clone();
        longer.ends_at = at("12:00:00");
        let (same, _) = set.set(longer, at("10:30:00"), new_silence_id).unwrap();
        assert_eq!(same, id);
        let mut other = set.get(&id).unwrap().clone();
        other.matchers[0].value = "2".to_owned();
        let (new, changed) = set.set(other, at("10:40:00"), new_silence_id).unwrap();
        assert_ne!(new, id);
        assert_eq!(changed.len(), 2, "the old one expired, the new one set");
        assert_eq!(
            set.get(&id).unwrap().state(at("10:40:00")),
            SilenceState::Expired
        );
        assert_eq!(set.list(at("10:40:00"))[0].id, new);
    }

    #[test]
    fn expiring_ends_a_silence_now_and_gc_forgets_it_after_retention() {
        let mut set = Silences::default();
        let (id, _) = set
            .set(
                silence(&[("a", "1", false, true)], "10:00:00", "11:00:00"),
                at("10:00:00"),
                new_silence_id,
            )
            .unwrap();
        let expired = set.expire(&id, at("10:15:00")).unwrap();
        assert_eq!(expired.ends_at, at("10:15:00"));
        assert!(set.expire(&id, at("10:16:00")).is_err());
        let (restored, problems) = Silences::restore(set.snapshot());
        assert!(problems.is_empty());
        assert_eq!(restored.get(&id), set.get(&id));
        assert_eq!(set.gc(at("10:15:00") + RETENTION), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn silence_ids_are_version_4_uuids() {
        let id = new_silence_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_silence_id());
    }
}
