//! Tokenisation and variable masking: the first stage of mining, run on every line.
//!
//! A line is split on ASCII whitespace into tokens. Each token is then cut into segments at
//! in-token delimiters (`= : , ; ( ) [ ] { } " ' < > |`); a segment that a mask recognises as
//! a variable is replaced by `<*>`, the delimiters are kept. So `uid=0` becomes `uid=<*>`,
//! `[173.234.31.186]` becomes `[<*>]` and `blk_-6952295868487656571` becomes `<*>`. The
//! masked token is what the miner compares; a token whose masked form is exactly `<*>` is a
//! *wildcard* token that matches anything.
//!
//! ## Masks
//!
//! The mask list is configurable ([`MaskRule`]). The built-in classes are hand-written
//! byte scanners rather than regexes because they run on every segment of every line and a
//! regex pass per segment would cost most of the throughput budget; each is documented with
//! the regex it is equivalent to:
//!
//! * [`BuiltinMask::Digits`]: any segment holding a digit, `\S*\d\S*` within a segment. This
//!   one rule covers numbers, hex (`0x7fed806eb5d`), IPs, UUIDs, durations (`12ms`), sizes
//!   (`64KB`), versions, dates and times, and ids with a prefix (`blk_123`, `job_1445_0001`).
//!   A constant that holds a digit (`eth0`) is masked too; that only costs template text.
//! * [`BuiltinMask::Paths`]: a segment that starts with `/` (longer than one byte), holds a
//!   `\` or holds `://`: `^/.+|.*\\.*|.*://.*` — Unix and Windows paths and URLs.
//! * [`BuiltinMask::DottedNames`]: three or more non-empty parts joined by dots,
//!   `^[^.]+(\.[^.]+){2,}$` — host names, Java packages and classes, dotted keys.
//! * [`BuiltinMask::Booleans`]: `(?i)^(true|false|null)$` — values, never message words.
//! * [`BuiltinMask::TextDates`]: dates with month names, [`TEXT_DATE_REGEX`] (the only
//!   built-in that is a regex; it runs only on lines where a segment starts with a month
//!   stem, so other lines never pay for it).
//! * [`BuiltinMask::Units`]: a size or time unit token (`KB`, `MiB`, `ms`, …) right after a
//!   token ending in a variable, `(?<=<\*> )(B|KB|…|ms)\b` — the unit of a masked number.
//!
//! [`MaskRule::Regex`] adds any regex; its matches are found on the raw line before
//! tokenisation and each match becomes one wildcard token (a match may span whitespace, e.g.
//! `Sun Jul 10 03:55:10 2005`). Regex rules cost one regex scan per line.

use std::ops::Range;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::PatternsError;

/// The text that stands for a masked variable in templates.
pub const WILDCARD: &str = "<*>";

/// Hash of a token that is exactly [`WILDCARD`]; templates use it for variable positions.
pub(crate) const WILDCARD_HASH: u64 = 0;

/// Lines longer than this many tokens keep the rest as one trailing wildcard token, so a
/// pathological line cannot allocate a huge template.
pub(crate) const MAX_TOKENS: usize = 128;

/// One built-in variable class (see the module docs for the equivalent regexes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuiltinMask {
    /// Segments holding a digit: numbers, hex, IPs, UUIDs, durations, sizes, timestamps.
    Digits,
    /// Unix and Windows paths and URLs.
    Paths,
    /// Dotted names with three or more parts (hosts, packages, classes).
    DottedNames,
    /// The values `true`, `false` and `null`, in any case.
    Booleans,
    /// A size or time unit written as its own token after a masked number (`4.0 KB`,
    /// `12 ms`): the unit belongs to the value, so it varies with it.
    Units,
    /// Dates written with month names ([`TEXT_DATE_REGEX`]), each one wildcard token.
    TextDates,
}

/// Units recognised by [`BuiltinMask::Units`].
const UNITS: &[&[u8]] = &[
    b"B", b"KB", b"kB", b"kb", b"MB", b"mb", b"GB", b"gb", b"TB", b"PB", b"KiB", b"MiB", b"GiB",
    b"TiB", b"ms", b"us", b"ns", b"sec", b"secs", b"min", b"mins",
];

/// One entry of the configurable mask list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskRule {
    /// A built-in scanner.
    Builtin(BuiltinMask),
    /// A regex matched on the raw line; each match becomes one wildcard token.
    Regex {
        /// Name used in errors.
        name: String,
        /// The pattern, in `regex` crate syntax.
        pattern: String,
    },
}

/// Dates written with month names, with an optional weekday, year and time of day
/// (`Sun Jul 10 03:55:10 2005`, `Jul 10, 2005 3:55`): the one timestamp shape whose words
/// carry no digit, so [`BuiltinMask::Digits`] alone would split it into constant-looking
/// month and weekday words.
pub const TEXT_DATE_REGEX: &str = concat!(
    r"(?-u:\b)(?:(?:Mon(?:day)?|Tue(?:s(?:day)?)?|Wed(?:nesday)?|Thu(?:rs(?:day)?)?|Fri(?:day)?",
    r"|Sat(?:urday)?|Sun(?:day)?),?\s+)?",
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?",
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?\s+\d{1,2}",
    r"(?:,?\s+\d{4})?(?:,?\s+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:\s+\d{4})?(?-u:\b)",
);

/// The default mask list: every built-in class, no extra regex.
pub fn default_masks() -> Vec<MaskRule> {
    vec![
        MaskRule::Builtin(BuiltinMask::Digits),
        MaskRule::Builtin(BuiltinMask::Paths),
        MaskRule::Builtin(BuiltinMask::DottedNames),
        MaskRule::Builtin(BuiltinMask::Booleans),
        MaskRule::Builtin(BuiltinMask::Units),
        MaskRule::Builtin(BuiltinMask::TextDates),
    ]
}

/// One token of the current line, in the scratch buffers of [`Tokens`].
#[derive(Debug, Clone)]
pub(crate) struct TokenSpan {
    /// Byte range of the masked text in [`Tokens::masked`].
    pub masked: Range<usize>,
    /// Byte range of the raw token in the line.
    pub raw: Range<usize>,
    /// FNV-1a hash of the masked text; [`WILDCARD_HASH`] for a wildcard token.
    pub hash: u64,
    /// Whether a mask matched in the token (it is a wildcard or holds `<*>`).
    pub masked_any: bool,
}

/// Reusable scratch space for one line, so mining allocates nothing in the steady state.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    pub masked: String,
    pub spans: Vec<TokenSpan>,
    /// Raw byte ranges of masked segments inside non-wildcard tokens, with the token index.
    pub segment_vars: Vec<(usize, Range<usize>)>,
    regex_hits: Vec<Range<usize>>,
    /// Set while splitting when a segment starts with a month stem (`Jan` … `Dec`).
    month_seen: bool,
}

impl Tokens {
    pub fn masked_text(&self, index: usize) -> &str {
        &self.masked[self.spans[index].masked.clone()]
    }
}

/// The compiled mask list.
#[derive(Debug, Clone)]
pub(crate) struct Masker {
    digits: bool,
    paths: bool,
    dotted: bool,
    booleans: bool,
    units: bool,
    text_dates: Option<Regex>,
    regex: Option<Regex>,
}

impl Masker {
    pub fn new(rules: &[MaskRule]) -> Result<Self, PatternsError> {
        let mut masker = Masker {
            digits: false,
            paths: false,
            dotted: false,
            booleans: false,
            units: false,
            text_dates: None,
            regex: None,
        };
        let mut alternatives = Vec::new();
        let mut text_dates = false;
        for rule in rules {
            match rule {
                MaskRule::Builtin(BuiltinMask::Digits) => masker.digits = true,
                MaskRule::Builtin(BuiltinMask::Paths) => masker.paths = true,
                MaskRule::Builtin(BuiltinMask::DottedNames) => masker.dotted = true,
                MaskRule::Builtin(BuiltinMask::Booleans) => masker.booleans = true,
                MaskRule::Builtin(BuiltinMask::Units) => masker.units = true,
                MaskRule::Builtin(BuiltinMask::TextDates) => text_dates = true,
                MaskRule::Regex { name, pattern } => {
                    // Compile each alone first so an error names the rule at fault.
                    Regex::new(pattern).map_err(|source| PatternsError::InvalidMask {
                        name: name.clone(),
                        source: Box::new(source),
                    })?;
                    alternatives.push(format!("(?:{pattern})"));
                }
            }
        }
        if text_dates {
            masker.text_dates =
                Some(
                    Regex::new(TEXT_DATE_REGEX).map_err(|source| PatternsError::InvalidMask {
                        name: "text dates".to_owned(),
                        source: Box::new(source),
                    })?,
                );
        }
        if !alternatives.is_empty() {
            let combined = alternatives.join("|");
            masker.regex =
                Some(
                    Regex::new(&combined).map_err(|source| PatternsError::InvalidMask {
                        name: "combined".to_owned(),
                        source: Box::new(source),
                    })?,
                );
        }
        Ok(masker)
    }

    /// Splits and masks `line` into `out` (cleared first).
    pub fn tokenize(&self, line: &str, out: &mut Tokens) {
        out.regex_hits.clear();
        if let Some(regex) = &self.regex {
            out.regex_hits.extend(
                regex
                    .find_iter(line)
                    .filter(|m| !m.is_empty())
                    .map(|m| m.range()),
            );
        }
        out.month_seen = false;
        self.split(line, out);
        // The date regex runs only on lines with a month stem at a segment start (a
        // necessary condition for a match), so most lines never pay for it; a line with a
        // date is split a second time around the dates.
        if out.month_seen
            && let Some(dates) = &self.text_dates
        {
            let before = out.regex_hits.len();
            out.regex_hits.extend(
                dates
                    .find_iter(line)
                    .filter(|m| !m.is_empty())
                    .map(|m| m.range()),
            );
            if out.regex_hits.len() > before {
                out.regex_hits.sort_by_key(|r| r.start);
                let mut kept_end = 0;
                out.regex_hits.retain(|r| {
                    let keep = r.start >= kept_end;
                    if keep {
                        kept_end = r.end;
                    }
                    keep
                });
                self.split(line, out);
            }
        }
    }

    /// Splits `line` into masked tokens around the regex hits in `out.regex_hits`.
    fn split(&self, line: &str, out: &mut Tokens) {
        out.masked.clear();
        out.spans.clear();
        out.segment_vars.clear();
        let bytes = line.as_bytes();
        let mut hits = 0;
        let mut pos = 0;
        while pos < bytes.len() {
            if CLASS[bytes[pos] as usize] == SPACE {
                pos += 1;
                continue;
            }
            if out.spans.len() + 1 == MAX_TOKENS {
                let end = line.trim_end().len();
                self.push_wildcard(out, pos..end);
                return;
            }
            // A regex match is one wildcard token, whatever it contains.
            if let Some(hit) = out.regex_hits.get(hits)
                && hit.start <= pos
            {
                let range = pos.max(hit.start)..hit.end;
                hits += 1;
                if range.end > pos {
                    self.push_wildcard(out, range.clone());
                    pos = range.end;
                }
                continue;
            }
            let limit = out.regex_hits.get(hits).map_or(bytes.len(), |h| h.start);
            pos = self.push_token(line, pos, limit, out);
        }
    }

    fn push_wildcard(&self, out: &mut Tokens, raw: Range<usize>) {
        let start = out.masked.len();
        out.masked.push_str(WILDCARD);
        out.spans.push(TokenSpan {
            masked: start..out.masked.len(),
            raw,
            hash: WILDCARD_HASH,
            masked_any: true,
        });
    }

    /// Masks the token starting at `start` (up to whitespace or `limit`); returns its end.
    /// One pass over the bytes: segment properties are gathered while looking for the next
    /// delimiter.
    fn push_token(&self, line: &str, start: usize, limit: usize, out: &mut Tokens) -> usize {
        let bytes = line.as_bytes();
        let masked_start = out.masked.len();
        let index = out.spans.len();
        let vars_before = out.segment_vars.len();
        // The previous token ends in a variable (`12`, `(1.20`): a unit here is its unit.
        let after_number = self.units
            && out
                .spans
                .last()
                .is_some_and(|s| out.masked[s.masked.clone()].ends_with(WILDCARD));
        let mut segment = Segment::new(start);
        let mut end = start;
        let check_months = self.text_dates.is_some();
        out.month_seen |= check_months && is_month_stem(&bytes[start..limit]);
        loop {
            let class = if end < limit {
                CLASS[bytes[end] as usize]
            } else {
                SPACE
            };
            if class == SPACE || class == DELIMITER {
                if segment.start < end {
                    // Delimiters and spaces are ASCII, so these are char boundaries.
                    let text = &line[segment.start..end];
                    let unit =
                        after_number && segment.start == start && UNITS.contains(&text.as_bytes());
                    if unit || self.is_variable(&segment, text.as_bytes()) {
                        out.masked.push_str(WILDCARD);
                        out.segment_vars.push((index, segment.start..end));
                    } else {
                        out.masked.push_str(text);
                    }
                }
                if class == SPACE {
                    break;
                }
                out.masked.push(bytes[end] as char);
                segment = Segment::new(end + 1);
                out.month_seen |= check_months && is_month_stem(&bytes[end + 1..limit]);
            } else {
                segment.observe(class, bytes[end]);
            }
            end += 1;
        }
        let text = &out.masked[masked_start..];
        let masked_any = out.segment_vars.len() > vars_before;
        let hash = if text == WILDCARD {
            // The whole token is one variable: record it as a wildcard token instead.
            out.segment_vars.truncate(vars_before);
            WILDCARD_HASH
        } else {
            token_hash(text.as_bytes())
        };
        out.spans.push(TokenSpan {
            masked: masked_start..out.masked.len(),
            raw: start..end,
            hash,
            masked_any,
        });
        end
    }

    fn is_variable(&self, segment: &Segment, text: &[u8]) -> bool {
        if self.digits && segment.has_digit {
            return true;
        }
        if self.paths && ((text.len() > 1 && text[0] == b'/') || segment.has_backslash) {
            return true;
        }
        if self.dotted && segment.dots >= 2 && !segment.empty_part && segment.previous != b'.' {
            return true;
        }
        self.booleans
            && (4..=5).contains(&text.len())
            && (text.eq_ignore_ascii_case(b"true")
                || text.eq_ignore_ascii_case(b"false")
                || text.eq_ignore_ascii_case(b"null"))
    }
}

fn is_month_stem(bytes: &[u8]) -> bool {
    bytes.len() >= 3
        && matches!(
            &bytes[..3],
            b"Jan"
                | b"Feb"
                | b"Mar"
                | b"Apr"
                | b"May"
                | b"Jun"
                | b"Jul"
                | b"Aug"
                | b"Sep"
                | b"Oct"
                | b"Nov"
                | b"Dec"
        )
}

/// Properties of one segment, gathered byte by byte.
struct Segment {
    start: usize,
    has_digit: bool,
    has_backslash: bool,
    dots: usize,
    empty_part: bool,
    previous: u8,
}

impl Segment {
    fn new(start: usize) -> Self {
        Segment {
            start,
            has_digit: false,
            has_backslash: false,
            dots: 0,
            empty_part: false,
            // As if preceded by a dot, so a leading dot counts as an empty part.
            previous: b'.',
        }
    }

    fn observe(&mut self, class: u8, byte: u8) {
        match class {
            DIGIT => self.has_digit = true,
            DOT => {
                self.dots += 1;
                self.empty_part |= self.previous == b'.';
            }
            BACKSLASH => self.has_backslash = true,
            _ => {}
        }
        self.previous = byte;
    }
}

const OTHER: u8 = 0;
const SPACE: u8 = 1;
const DELIMITER: u8 = 2;
const DIGIT: u8 = 3;
const DOT: u8 = 4;
const BACKSLASH: u8 = 5;

/// Byte classes for the tokenizer: ASCII whitespace, in-token delimiters
/// (`= : , ; ( ) [ ] { } " ' < > |`), digits, dots and backslashes.
const CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let spaces = b" \t\n\x0b\x0c\r";
    let mut i = 0;
    while i < spaces.len() {
        table[spaces[i] as usize] = SPACE;
        i += 1;
    }
    let delimiters = b"=:,;()[]{}\"'<>|";
    let mut i = 0;
    while i < delimiters.len() {
        table[delimiters[i] as usize] = DELIMITER;
        i += 1;
    }
    let mut d = b'0';
    while d <= b'9' {
        table[d as usize] = DIGIT;
        d += 1;
    }
    table[b'.' as usize] = DOT;
    table[b'\\' as usize] = BACKSLASH;
    table
};

/// FNV-1a, never returning [`WILDCARD_HASH`] for a literal token.
pub(crate) fn token_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if hash == WILDCARD_HASH { 1 } else { hash }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(rules: &[MaskRule], line: &str) -> Vec<String> {
        let masker = Masker::new(rules).unwrap();
        let mut tokens = Tokens::default();
        masker.tokenize(line, &mut tokens);
        (0..tokens.spans.len())
            .map(|i| tokens.masked_text(i).to_owned())
            .collect()
    }

    fn default_masked(line: &str) -> String {
        masked(&default_masks(), line).join(" ")
    }

    #[test]
    fn masks_numbers_hex_ips_uuids_and_ids() {
        assert_eq!(default_masked("took 12 tries"), "took <*> tries");
        assert_eq!(default_masked("at 0x7fed806eb5d"), "at <*>");
        assert_eq!(
            default_masked("from 10.251.73.220:50010 ok"),
            "from <*>:<*> ok"
        );
        assert_eq!(
            default_masked("req 123e4567-e89b-12d3-a456-426614174000 done"),
            "req <*> done"
        );
        assert_eq!(
            default_masked("block blk_-6952295868487656571"),
            "block <*>"
        );
    }

    #[test]
    fn masks_units_after_numbers_only() {
        assert_eq!(
            default_masked("size 16.0 B, free 413.9 MB)"),
            "size <*> <*>, free <*> <*>)"
        );
        assert_eq!(default_masked("stored as B tree"), "stored as B tree");
        assert_eq!(default_masked("(1.20 KB) sent"), "(<*> <*>) sent");
    }

    #[test]
    fn masks_booleans_and_text_dates() {
        assert_eq!(
            default_masked("overlap:false ws=null ok=True"),
            "overlap:<*> ws=<*> ok=<*>"
        );
        assert_eq!(
            default_masked("connection at Sun Jul 10 03:55:10 2005 from x"),
            "connection at <*> from x"
        );
        assert_eq!(default_masked("started Jun 14 15:16:01"), "started <*>");
        // Month names inside words are words.
        assert_eq!(default_masked("Marked Junk 3"), "Marked Junk <*>");
    }

    #[test]
    fn masks_durations_sizes_and_timestamps() {
        assert_eq!(
            default_masked("took 12ms, wrote 64KB"),
            "took <*>, wrote <*>"
        );
        assert_eq!(
            default_masked("2015-10-18 18:01:47,978 start"),
            "<*> <*>:<*>:<*>,<*> start"
        );
    }

    #[test]
    fn masks_segments_inside_key_value_tokens() {
        assert_eq!(
            default_masked("uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4"),
            "uid=<*> euid=<*> tty=NODEVssh ruser= rhost=<*>"
        );
        assert_eq!(
            default_masked("[preauth] [173.234.31.186]"),
            "[preauth] [<*>]"
        );
    }

    #[test]
    fn masks_paths_urls_and_dotted_names() {
        assert_eq!(
            default_masked("open /var/log/messages failed"),
            "open <*> failed"
        );
        // The drive letter is cut off at the `:` delimiter.
        assert_eq!(default_masked(r"Core: C:\Windows\winsxs"), "Core: C:<*>");
        assert_eq!(default_masked("get https://example.org/x"), "get https:<*>");
        assert_eq!(
            default_masked("name=com.android.systemui host ns.example.com"),
            "name=<*> host <*>"
        );
        // Two parts, an ellipsis and a lone slash are not variables.
        assert_eq!(default_masked("file.txt ... / a..b"), "file.txt ... / a..b");
    }

    #[test]
    fn keeps_words_and_delimiters() {
        assert_eq!(
            default_masked("Registered signal handlers for [TERM, HUP, INT]"),
            "Registered signal handlers for [TERM, HUP, INT]"
        );
    }

    #[test]
    fn builtins_can_be_switched_off() {
        let only_digits = [MaskRule::Builtin(BuiltinMask::Digits)];
        assert_eq!(
            masked(&only_digits, "open /var/log a.b.c 7").join(" "),
            "open /var/log a.b.c <*>"
        );
        assert_eq!(masked(&[], "x=7").join(" "), "x=7");
    }

    #[test]
    fn regex_rules_mask_spans_across_whitespace() {
        let mut rules = default_masks();
        rules.push(MaskRule::Regex {
            name: "weekday date".into(),
            pattern: r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} +\d+ [\d:]+ \d{4}".into(),
        });
        assert_eq!(
            masked(&rules, "connection at Sun Jul 10 03:55:10 2005 closed").join(" "),
            "connection at <*> closed"
        );
    }

    #[test]
    fn text_date_regex_compiles_and_finds_dates_after_delimiters() {
        Regex::new(TEXT_DATE_REGEX).unwrap();
        // A regex match is a token of its own, so it also ends the token before it.
        assert_eq!(
            default_masked("expires=Jul 10, 2005 now"),
            "expires= <*> now"
        );
        assert_eq!(default_masked("Jul is a month"), "Jul is a month");
    }

    #[test]
    fn invalid_regex_names_the_rule() {
        let err = Masker::new(&[MaskRule::Regex {
            name: "broken".into(),
            pattern: "(".into(),
        }])
        .unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }

    #[test]
    fn long_lines_end_in_one_wildcard() {
        let line = (0..500).map(|i| format!("w{}", i % 7)).collect::<Vec<_>>();
        let tokens = masked(&[], &line.join(" "));
        assert_eq!(tokens.len(), MAX_TOKENS);
        assert_eq!(tokens.last().unwrap(), WILDCARD);
    }
}
