//! Prometheus relabelling (`relabel_configs`, `metric_relabel_configs`), with Prometheus's
//! semantics so that existing configurations behave the same:
//!
//! | action      | effect                                                                     |
//! |-------------|----------------------------------------------------------------------------|
//! | `replace`   | if `regex` matches the joined source values, set `target_label` (itself expanded) to `replacement` with `$1`, `${name}` expanded; an empty result deletes the label |
//! | `keep`      | drop the set unless `regex` matches the joined source values               |
//! | `drop`      | drop the set if `regex` matches                                            |
//! | `keepequal` | drop the set unless the joined source values equal `target_label`'s value  |
//! | `dropequal` | drop the set if they are equal                                             |
//! | `hashmod`   | set `target_label` to MD5(joined values) mod `modulus` (same numbers as Prometheus, so sharding agrees) |
//! | `labelmap`  | for every label whose *name* matches, copy its value to the name given by `replacement` |
//! | `labeldrop` | delete every label whose name matches                                      |
//! | `labelkeep` | delete every label whose name does not match                               |
//! | `lowercase` / `uppercase` | set `target_label` to the joined values in lower / upper case |
//!
//! Source values are joined with `separator` (default `;`), an absent label being the empty
//! string. Regexes are fully anchored (`^(?s:…)$`, as in Prometheus) and compiled when the
//! configuration is read, so a bad one is a configuration error. An empty label value is the
//! same as an absent label.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sightline_model::is_valid_label_name;

/// What a relabelling step does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl RelabelAction {
    fn name(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::KeepEqual => "keepequal",
            Self::DropEqual => "dropequal",
            Self::HashMod => "hashmod",
            Self::LabelMap => "labelmap",
            Self::LabelDrop => "labeldrop",
            Self::LabelKeep => "labelkeep",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
        }
    }
}

/// The default regex, which matches anything and captures it as `$1`.
pub const DEFAULT_REGEX: &str = "(.*)";

/// An anchored regex that keeps its source text (for printing and comparison).
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    regex: regex::Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored at both ends.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        sightline_model::check_fold_work(source).map_err(regex::Error::Syntax)?;
        let regex = regex::RegexBuilder::new(&format!("^(?s:{source})$"))
            .size_limit(1 << 22)
            .build()?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    /// The regex as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        Self::new(DEFAULT_REGEX).expect("the default regex compiles")
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

fn default_separator() -> String {
    ";".into()
}

fn default_replacement() -> String {
    "$1".into()
}

/// One relabelling step, with Prometheus's field names and defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined and matched against `regex`.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins the source values. Default `;`.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Anchored regex. Default `(.*)`.
    #[serde(default)]
    pub regex: RelabelRegex,
    /// Modulus of `hashmod`.
    #[serde(default)]
    pub modulus: u64,
    /// Label written by `replace`, `hashmod`, `lowercase`, `uppercase`; compared by
    /// `keepequal` / `dropequal`.
    #[serde(default)]
    pub target_label: String,
    /// Replacement of `replace` and `labelmap`, with `$1`-style references. Default `$1`.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// Default `replace`.
    #[serde(default)]
    pub action: RelabelAction,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: default_separator(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: default_replacement(),
            action: RelabelAction::Replace,
        }
    }
}

impl RelabelConfig {
    /// Checks the combination of fields, as Prometheus does when it loads a configuration.
    pub fn validate(&self) -> Result<(), String> {
        use RelabelAction::*;
        let action = self.action.name();
        if self.action == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            self.action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        let templated = self.action == Replace && self.target_label.contains('$');
        if needs_target && !templated && !is_valid_label_name(&self.target_label) {
            return Err(format!(
                "{:?} is invalid 'target_label' for {action} action",
                self.target_label
            ));
        }
        for l in &self.source_labels {
            if !is_valid_label_name(l) {
                return Err(format!(
                    "{l:?} is not a valid label name in 'source_labels'"
                ));
            }
        }
        if matches!(self.action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != default_separator()
                || self.replacement != default_replacement())
        {
            return Err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        if matches!(self.action, KeepEqual | DropEqual)
            && (self.regex.as_str() != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != default_separator()
                || self.replacement != default_replacement())
        {
            return Err(format!(
                "{action} action requires only 'source_labels' and 'target_label', and no other fields"
            ));
        }
        Ok(())
    }
}

/// A label set being relabelled: unsorted pairs, names unique, no empty values.
fn get<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Sets `name` to `value`; an empty value deletes the label.
pub(crate) fn set(labels: &mut Vec<(String, String)>, name: &str, value: String) {
    if value.is_empty() {
        del(labels, name);
        return;
    }
    match labels.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value,
        None => labels.push((name.to_string(), value)),
    }
}

fn del(labels: &mut Vec<(String, String)>, name: &str) {
    labels.retain(|(n, _)| n != name);
}

/// Applies `configs` in order to `labels` (pairs with unique names). Returns `false` when the
/// set is dropped; `labels` is then unspecified.
pub fn relabel(labels: &mut Vec<(String, String)>, configs: &[RelabelConfig]) -> bool {
    for cfg in configs {
        if !relabel_one(labels, cfg) {
            return false;
        }
    }
    true
}

fn relabel_one(labels: &mut Vec<(String, String)>, cfg: &RelabelConfig) -> bool {
    let joined = || {
        let mut out = String::new();
        for (i, name) in cfg.source_labels.iter().enumerate() {
            if i > 0 {
                out.push_str(&cfg.separator);
            }
            out.push_str(get(labels, name));
        }
        out
    };
    match cfg.action {
        RelabelAction::Keep => return cfg.regex.is_match(&joined()),
        RelabelAction::Drop => return !cfg.regex.is_match(&joined()),
        RelabelAction::KeepEqual => return joined() == get(labels, &cfg.target_label),
        RelabelAction::DropEqual => return joined() != get(labels, &cfg.target_label),
        RelabelAction::Replace => {
            let value = joined();
            if let Some(caps) = cfg.regex.regex.captures(&value) {
                let mut target = String::new();
                caps.expand(&cfg.target_label, &mut target);
                if is_valid_label_name(&target) {
                    let mut res = String::new();
                    caps.expand(&cfg.replacement, &mut res);
                    set(labels, &target, res);
                }
            }
        }
        RelabelAction::Lowercase => {
            let v = joined().to_lowercase();
            set(labels, &cfg.target_label, v);
        }
        RelabelAction::Uppercase => {
            let v = joined().to_uppercase();
            set(labels, &cfg.target_label, v);
        }
        RelabelAction::HashMod => {
            let digest = md5(joined().as_bytes());
            let sum = u64::from_be_bytes(digest[8..16].try_into().expect("8 bytes"));
            set(labels, &cfg.target_label, (sum % cfg.modulus).to_string());
        }
        RelabelAction::LabelMap => {
            let snapshot = labels.clone();
            for (name, value) in &snapshot {
                if let Some(caps) = cfg.regex.regex.captures(name) {
                    let mut target = String::new();
                    caps.expand(&cfg.replacement, &mut target);
                    set(labels, &target, value.clone());
                }
            }
        }
        RelabelAction::LabelDrop => labels.retain(|(n, _)| !cfg.regex.is_match(n)),
        RelabelAction::LabelKeep => labels.retain(|(n, _)| cfg.regex.is_match(n)),
    }
    true
}

/// MD5 (RFC 1321), only for `hashmod`: Prometheus shards with the low 64 bits of it, so the
/// same function is needed to agree with it. Not used for anything secret.
fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(K[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, word) in state.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sorted(mut l: Vec<(String, String)>) -> Vec<(String, String)> {
        l.sort();
        l
    }

    fn cfg(toml_text: &str) -> RelabelConfig {
        let c: RelabelConfig = toml::from_str(toml_text).unwrap();
        c.validate().unwrap();
        c
    }

    fn run(input: &[(&str, &str)], configs: &[RelabelConfig]) -> Option<Vec<(String, String)>> {
        let mut l = labels(input);
        relabel(&mut l, configs).then(|| sorted(l))
    }

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(hex(md5(&[b'a'; 1000])), "cabe45dcc9ae5b66ba86600cca6b8ba8");
    }

    #[test]
    fn replace_with_captures_and_templated_target() {
        let c = cfg(r#"
            source_labels = ["a", "b"]
            regex = "f(.*);(.*)r"
            target_label = "a_${2}"
            replacement = "${1}-$2"
        "#);
        assert_eq!(
            run(&[("a", "foo"), ("b", "bar")], std::slice::from_ref(&c)),
            Some(labels(&[("a", "foo"), ("a_ba", "oo-ba"), ("b", "bar")]))
        );
        // No match: nothing changes.
        assert_eq!(run(&[("a", "x")], &[c]), Some(labels(&[("a", "x")])));
        // Defaults: copy a label.
        let copy = cfg("source_labels = [\"__address__\"]\ntarget_label = \"instance\"");
        assert_eq!(
            run(&[("__address__", "h:1")], &[copy]),
            Some(labels(&[("__address__", "h:1"), ("instance", "h:1")]))
        );
        // An empty replacement deletes the target.
        let del = cfg("source_labels = [\"a\"]\ntarget_label = \"b\"\nreplacement = \"\"");
        assert_eq!(
            run(&[("a", "1"), ("b", "2")], &[del]),
            Some(labels(&[("a", "1")]))
        );
        // An anchored regex does not match a substring.
        let anchored = cfg("source_labels = [\"a\"]\nregex = \"o\"\ntarget_label = \"b\"");
        assert_eq!(
            run(&[("a", "foo")], &[anchored]),
            Some(labels(&[("a", "foo")]))
        );
    }

    #[test]
    fn keep_drop_and_equal() {
        let keep = cfg("source_labels = [\"job\"]\nregex = \"api|web\"\naction = \"keep\"");
        assert!(run(&[("job", "api")], std::slice::from_ref(&keep)).is_some());
        assert!(run(&[("job", "db")], std::slice::from_ref(&keep)).is_none());
        assert!(run(&[], &[keep]).is_none(), "absent is empty");
        let drop = cfg("source_labels = [\"__name__\"]\nregex = \"go_.*\"\naction = \"drop\"");
        assert!(run(&[("__name__", "go_gc")], std::slice::from_ref(&drop)).is_none());
        assert!(run(&[("__name__", "up")], &[drop]).is_some());
        let keq = cfg("source_labels = [\"a\"]\ntarget_label = \"b\"\naction = \"keepequal\"");
        assert!(run(&[("a", "1"), ("b", "1")], std::slice::from_ref(&keq)).is_some());
        assert!(run(&[("a", "1"), ("b", "2")], &[keq]).is_none());
        let deq = cfg("source_labels = [\"a\"]\ntarget_label = \"b\"\naction = \"dropequal\"");
        assert!(run(&[("a", "1"), ("b", "1")], &[deq]).is_none());
    }

    #[test]
    fn hashmod_agrees_with_prometheus() {
        // From Prometheus's relabel tests: "baz" mod 1000 is 976.
        let c = cfg(
            "source_labels = [\"c\"]\ntarget_label = \"d\"\naction = \"hashmod\"\nmodulus = 1000",
        );
        assert_eq!(
            run(&[("c", "baz")], &[c]),
            Some(labels(&[("c", "baz"), ("d", "976")]))
        );
    }

    #[test]
    fn label_name_actions() {
        let map = cfg("regex = \"__meta_(.+)\"\naction = \"labelmap\"");
        assert_eq!(
            run(&[("__meta_zone", "a"), ("x", "1")], &[map]),
            Some(labels(&[("__meta_zone", "a"), ("x", "1"), ("zone", "a")]))
        );
        let drop = cfg("regex = \"tmp_.*\"\naction = \"labeldrop\"");
        assert_eq!(
            run(&[("tmp_a", "1"), ("keep", "2")], &[drop]),
            Some(labels(&[("keep", "2")]))
        );
        let keep = cfg("regex = \"__name__|job\"\naction = \"labelkeep\"");
        assert_eq!(
            run(&[("__name__", "up"), ("job", "a"), ("pod", "p")], &[keep]),
            Some(labels(&[("__name__", "up"), ("job", "a")]))
        );
        let lower = cfg("source_labels = [\"a\"]\ntarget_label = \"b\"\naction = \"lowercase\"");
        let upper = cfg("source_labels = [\"a\"]\ntarget_label = \"c\"\naction = \"uppercase\"");
        assert_eq!(
            run(&[("a", "MiX")], &[lower, upper]),
            Some(labels(&[("a", "MiX"), ("b", "mix"), ("c", "MIX")]))
        );
    }

    #[test]
    fn invalid_configurations_are_named() {
        let bad = |text: &str| {
            toml::from_str::<RelabelConfig>(text)
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate())
                .unwrap_err()
        };
        assert!(bad("action = \"hashmod\"\ntarget_label = \"x\"").contains("non-zero modulus"));
        assert!(bad("action = \"replace\"").contains("requires 'target_label'"));
        assert!(bad("target_label = \"a-b\"").contains("invalid 'target_label'"));
        assert!(bad("regex = \"(\"\ntarget_label = \"a\"").contains("invalid regex \"(\""));
        assert!(
            bad("action = \"labeldrop\"\ntarget_label = \"a\"").contains("requires only 'regex'")
        );
        assert!(bad("action = \"explode\"").contains("unknown variant"));
        assert!(bad("sorce_labels = []").contains("unknown field"));
    }
}
