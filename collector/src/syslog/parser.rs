//! One syslog message (bytes, without transport framing) to a [`ParsedSyslog`], and from
//! there to resource attributes and a [`LogRecord`].
//!
//! Both wire formats are accepted and told apart by what follows the PRI: RFC 5424 has a
//! version number and a space (`<34>1 `), anything else is read as RFC 3164 (BSD).
//!
//! RFC 5424 is parsed strictly, because its grammar is precise: a broken header or structured
//! data is an error that names the field and byte offset. RFC 3164 describes practice more
//! than it prescribes it, so its parser is lenient like rsyslog's `pmrfc3164`: the timestamp
//! may be missing or in RFC 3339 form, the hostname may be missing, and the TAG is optional.
//! In both formats a message without a valid `<PRI>` is an error, and invalid UTF-8 is
//! replaced lossily rather than rejected.
//!
//! The parser owns no clock: callers pass `now_ns`, used for RFC 3164's missing year and as
//! the observed time. It never panics, whatever the input (see the property tests).

use sightline_model::{LogRecord, SeverityNumber};

use super::timestamp::{parse_bsd, parse_rfc3339};

/// Why a syslog message (or frame) was refused. Positions are byte offsets in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    /// The message has no bytes at all.
    #[error("message is empty")]
    Empty,
    /// The `<PRI>` at the start is missing or malformed (RFC 5424 §6.2.1).
    #[error("invalid PRI at byte {position}: {reason}")]
    InvalidPri {
        position: usize,
        reason: &'static str,
    },
    /// The PRI value is above 191 (facility 23, severity 7).
    #[error("invalid PRI at byte {position}: {value} is above the maximum 191")]
    PriOutOfRange { position: usize, value: u32 },
    /// An RFC 5424 header field is missing or malformed.
    #[error("invalid {field} at byte {position}: {reason}")]
    InvalidField {
        field: &'static str,
        position: usize,
        reason: &'static str,
    },
    /// RFC 5424 STRUCTURED-DATA is malformed (§6.3).
    #[error("invalid STRUCTURED-DATA at byte {position}: {reason}")]
    InvalidStructuredData {
        position: usize,
        reason: &'static str,
    },
    /// A message longer than the configured limit (known length: octet counting or UDP).
    #[error("message is {len} bytes, the limit is {limit}")]
    MessageTooLong { len: usize, limit: usize },
    /// A newline-framed message that reached the limit without its trailer.
    #[error("message is at least {len} bytes without a line trailer, the limit is {limit}")]
    UnterminatedMessageTooLong { len: usize, limit: usize },
    /// A TCP connection closed in the middle of an octet-counted frame (RFC 6587 §3.4.1).
    #[error(
        "connection closed after {received} of the {expected} bytes announced by the octet count"
    )]
    TruncatedFrame { expected: usize, received: usize },
}

impl SyslogError {
    /// The `reason` label this error is counted under in `records_rejected`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MessageTooLong { .. } | Self::UnterminatedMessageTooLong { .. } => {
                "message_too_long"
            }
            Self::TruncatedFrame { .. } => "truncated_frame",
            _ => "parse_error",
        }
    }
}

/// Which RFC a message was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    /// RFC 5424, "The Syslog Protocol".
    Rfc5424,
    /// RFC 3164, "The BSD syslog Protocol" (and what real BSD-style senders emit).
    Rfc3164,
}

/// One RFC 5424 SD-ELEMENT (§6.3.1): an SD-ID and its parameters, in message order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdElement {
    /// SD-ID, e.g. `timeQuality` or `exampleSDID@32473` (§6.3.2).
    pub id: String,
    /// PARAM-NAME and unescaped PARAM-VALUE pairs; a name may repeat (§6.3.3).
    pub params: Vec<(String, String)>,
}

/// A parsed syslog message. Absent fields (NILVALUE `-` in RFC 5424, or not sent in RFC 3164)
/// are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSyslog {
    /// Which RFC the message follows.
    pub format: SyslogFormat,
    /// 0..=23 (RFC 5424 §6.2.1, Table 1).
    pub facility: u8,
    /// 0..=7 (RFC 5424 §6.2.1, Table 2).
    pub severity: u8,
    /// RFC 5424 VERSION; `None` for RFC 3164.
    pub version: Option<u32>,
    /// Event time in Unix nanoseconds, when the message carried a usable one.
    pub timestamp_ns: Option<i64>,
    /// HOSTNAME (RFC 5424 §6.2.4, RFC 3164 §4.1.2).
    pub hostname: Option<String>,
    /// RFC 5424 APP-NAME, or the program name of the RFC 3164 TAG.
    pub app_name: Option<String>,
    /// RFC 5424 PROCID, or the `[pid]` of the RFC 3164 TAG.
    pub procid: Option<String>,
    /// RFC 5424 MSGID (§6.2.7); RFC 3164 has none.
    pub msgid: Option<String>,
    /// RFC 5424 STRUCTURED-DATA elements in message order; empty for NILVALUE and RFC 3164.
    pub structured_data: Vec<SdElement>,
    /// MSG, without a leading BOM and without trailing CR, LF or NUL.
    pub message: String,
}

/// Facility names (RFC 5424 §6.2.1 Table 1), as rsyslog and `logger` spell them.
const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Severity names (RFC 5424 §6.2.1 Table 2), as rsyslog and `logger` spell them.
const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Syslog severity to OTLP severity number, indexed by severity; see [`severity_number`].
const SEVERITY_NUMBERS: [SeverityNumber; 8] = [21, 19, 18, 17, 13, 10, 9, 5];

/// The name of a facility code, `"unknown"` above 23.
pub fn facility_name(facility: u8) -> &'static str {
    FACILITY_NAMES
        .get(usize::from(facility))
        .copied()
        .unwrap_or("unknown")
}

/// The name of a severity code, `"unknown"` above 7.
pub fn severity_name(severity: u8) -> &'static str {
    SEVERITY_NAMES
        .get(usize::from(severity))
        .copied()
        .unwrap_or("unknown")
}

/// The OTLP severity number for a syslog severity; 0 (unspecified) above 7.
///
/// OTLP numbers run 1–24: TRACE 1, DEBUG 5, INFO 9, WARN 13,
/// ERROR 17, FATAL 21, each with three finer steps above it; syslog's three most severe
/// levels use those steps so they stay distinguishable:
///
/// | syslog      | OTLP            |
/// |-------------|-----------------|
/// | 0 emerg     | 21 FATAL        |
/// | 1 alert     | 19 ERROR3       |
/// | 2 crit      | 18 ERROR2       |
/// | 3 err       | 17 ERROR        |
/// | 4 warning   | 13 WARN         |
/// | 5 notice    | 10 INFO2        |
/// | 6 info      |  9 INFO         |
/// | 7 debug     |  5 DEBUG        |
pub fn severity_number(severity: u8) -> SeverityNumber {
    SEVERITY_NUMBERS
        .get(usize::from(severity))
        .copied()
        .unwrap_or(0)
}

/// RFC 5424 §6.2 NILVALUE.
const NILVALUE: &[u8] = b"-";
/// RFC 5424 §6.4: a MSG in UTF-8 may start with a byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses one message. `now_ns` (Unix nanoseconds) resolves the year of RFC 3164 timestamps.
pub fn parse(message: &[u8], now_ns: i64) -> Result<ParsedSyslog, SyslogError> {
    if message.is_empty() {
        return Err(SyslogError::Empty);
    }
    let (facility, severity, after_pri) = parse_pri(message)?;
    let rest = &message[after_pri..];
    if let Some(version_len) = rfc5424_version_len(rest) {
        parse_rfc5424(message, after_pri, version_len, facility, severity)
    } else {
        Ok(parse_rfc3164(
            message, after_pri, facility, severity, now_ns,
        ))
    }
}

/// RFC 5424 §6.2.1: PRI = "<" PRIVAL ">", PRIVAL = 1*3DIGIT in 0..=191. Returns facility,
/// severity and the offset after `>`. Leading zeros are tolerated (`<013>`), as rsyslog does.
fn parse_pri(message: &[u8]) -> Result<(u8, u8, usize), SyslogError> {
    if message.first() != Some(&b'<') {
        return Err(SyslogError::InvalidPri {
            position: 0,
            reason: "expected '<'",
        });
    }
    let mut value = 0u32;
    let mut pos = 1;
    while let Some(&b) = message.get(pos).filter(|b| b.is_ascii_digit()) {
        if pos == 4 {
            return Err(SyslogError::InvalidPri {
                position: pos,
                reason: "more than 3 digits",
            });
        }
        value = value * 10 + u32::from(b - b'0');
        pos += 1;
    }
    if pos == 1 {
        return Err(SyslogError::InvalidPri {
            position: pos,
            reason: "expected a digit",
        });
    }
    if message.get(pos) != Some(&b'>') {
        return Err(SyslogError::InvalidPri {
            position: pos,
            reason: "expected '>'",
        });
    }
    if value > 191 {
        return Err(SyslogError::PriOutOfRange { position: 1, value });
    }
    // Both fit in a u8: value <= 191.
    Ok(((value / 8) as u8, (value % 8) as u8, pos + 1))
}

/// RFC 5424 §6.2.2: VERSION = NONZERO-DIGIT 0*2DIGIT, followed by SP. Returns its length
/// when `rest` starts with one, which is what distinguishes RFC 5424 from RFC 3164.
fn rfc5424_version_len(rest: &[u8]) -> Option<usize> {
    let len = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let plausible = (1..=3).contains(&len) && rest[0] != b'0' && rest.get(len) == Some(&b' ');
    plausible.then_some(len)
}

/// A cursor over the message, for the space-separated RFC 5424 header.
struct Cursor<'a> {
    message: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.message.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.message.get(self.pos..).unwrap_or_default()
    }

    /// The next header field: 1 or more bytes up to the next SP (consumed too) or the end
    /// (RFC 5424 §6: fields are separated by exactly one SP).
    fn field(&mut self, field: &'static str) -> Result<(&'a [u8], usize), SyslogError> {
        let start = self.pos;
        let rest = self.rest();
        let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        if len == 0 {
            let reason = if rest.is_empty() {
                "message ends before this field"
            } else {
                "empty field (two spaces in a row)"
            };
            return Err(SyslogError::InvalidField {
                field,
                position: start,
                reason,
            });
        }
        self.pos += len;
        if self.peek() == Some(b' ') {
            self.pos += 1;
        }
        Ok((&rest[..len], start))
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A header field, `None` for NILVALUE.
fn optional_field(bytes: &[u8]) -> Option<String> {
    (bytes != NILVALUE).then(|| lossy(bytes))
}

/// MSG as text: BOM removed (RFC 5424 §6.4), trailing CR/LF/NUL removed (transport
/// trailers some senders leave in datagrams), invalid UTF-8 replaced.
fn message_text(msg: &[u8]) -> String {
    let msg = msg.strip_prefix(BOM).unwrap_or(msg);
    let end = msg
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    lossy(&msg[..end])
}

/// RFC 5424 §6: HEADER SP STRUCTURED-DATA [SP MSG], starting after the PRI.
fn parse_rfc5424(
    message: &[u8],
    after_pri: usize,
    version_len: usize,
    facility: u8,
    severity: u8,
) -> Result<ParsedSyslog, SyslogError> {
    let mut cur = Cursor {
        message,
        pos: after_pri,
    };
    let (version, _) = cur.field("VERSION")?;
    debug_assert_eq!(version.len(), version_len);
    let version = version
        .iter()
        .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));

    // §6.2.3: TIMESTAMP = NILVALUE / FULL-DATE "T" FULL-TIME
    let (timestamp, ts_pos) = cur.field("TIMESTAMP")?;
    let timestamp_ns = if timestamp == NILVALUE {
        None
    } else {
        let ns =
            parse_rfc3339(timestamp).map_err(|(offset, reason)| SyslogError::InvalidField {
                field: "TIMESTAMP",
                position: ts_pos + offset,
                reason,
            })?;
        Some(ns)
    };
    // §6.2.4–§6.2.7: HOSTNAME, APP-NAME, PROCID, MSGID; NILVALUE or PRINTUSASCII. Non-ASCII
    // is tolerated (lossily) and the RFC's length caps are not enforced: the message limit
    // already bounds them, and dropping a record over a long hostname helps nobody.
    let hostname = optional_field(cur.field("HOSTNAME")?.0);
    let app_name = optional_field(cur.field("APP-NAME")?.0);
    let procid = optional_field(cur.field("PROCID")?.0);
    let msgid = optional_field(cur.field("MSGID")?.0);
    let structured_data = parse_structured_data(&mut cur)?;

    // §6: [SP MSG]
    let msg = match cur.peek() {
        None => &[][..],
        Some(b' ') => &message[cur.pos + 1..],
        Some(_) => {
            return Err(SyslogError::InvalidStructuredData {
                position: cur.pos,
                reason: "expected a space before MSG",
            });
        }
    };
    Ok(ParsedSyslog {
        format: SyslogFormat::Rfc5424,
        facility,
        severity,
        version: Some(version),
        timestamp_ns,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        message: message_text(msg),
    })
}

/// RFC 5424 §6.3: STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT, leaving the cursor after it.
fn parse_structured_data(cur: &mut Cursor<'_>) -> Result<Vec<SdElement>, SyslogError> {
    let sd_error = |position, reason| SyslogError::InvalidStructuredData { position, reason };
    match cur.peek() {
        Some(b'-') => {
            cur.pos += 1;
            return Ok(Vec::new());
        }
        Some(b'[') => {}
        None => return Err(sd_error(cur.pos, "message ends before STRUCTURED-DATA")),
        Some(_) => return Err(sd_error(cur.pos, "expected '[' or '-'")),
    }
    let mut elements = Vec::new();
    // §6.3.1: SD-ELEMENT = "[" SD-ID *(SP SD-PARAM) "]"
    while cur.peek() == Some(b'[') {
        cur.pos += 1;
        let id = sd_name(cur).ok_or_else(|| sd_error(cur.pos, "expected an SD-ID"))?;
        let mut element = SdElement {
            id,
            params: Vec::new(),
        };
        loop {
            match cur.peek() {
                Some(b']') => {
                    cur.pos += 1;
                    break;
                }
                Some(b' ') => {
                    cur.pos += 1;
                    // §6.3.3: SD-PARAM = PARAM-NAME "=" %d34 PARAM-VALUE %d34
                    let name =
                        sd_name(cur).ok_or_else(|| sd_error(cur.pos, "expected a PARAM-NAME"))?;
                    if cur.peek() != Some(b'=') {
                        return Err(sd_error(cur.pos, "expected '=' after PARAM-NAME"));
                    }
                    cur.pos += 1;
                    if cur.peek() != Some(b'"') {
                        return Err(sd_error(cur.pos, "expected '\"' to open PARAM-VALUE"));
                    }
                    cur.pos += 1;
                    let value = sd_param_value(cur)?;
                    element.params.push((name, value));
                }
                None => return Err(sd_error(cur.pos, "message ends inside an SD-ELEMENT")),
                Some(_) => return Err(sd_error(cur.pos, "expected ' ' or ']' in an SD-ELEMENT")),
            }
        }
        elements.push(element);
    }
    Ok(elements)
}

/// §6.3.2/§6.3.3: SD-NAME = 1*32PRINTUSASCII except '=', SP, ']', '"'. The 32-byte cap is not
/// enforced (see the header fields). `None` when empty.
fn sd_name(cur: &mut Cursor<'_>) -> Option<String> {
    let rest = cur.rest();
    let len = rest
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
        .count();
    if len == 0 {
        return None;
    }
    cur.pos += len;
    Some(lossy(&rest[..len]))
}

/// §6.3.3: PARAM-VALUE is UTF-8 in which '"', '\' and ']' MUST be escaped with '\'; a '\'
/// before any other character is kept as a literal backslash. Consumes the closing '"'.
fn sd_param_value(cur: &mut Cursor<'_>) -> Result<String, SyslogError> {
    let start = cur.pos;
    let rest = cur.rest();
    let mut value: Vec<u8> = Vec::new();
    let mut i = 0;
    while let Some(&b) = rest.get(i) {
        match b {
            b'\\' => match rest.get(i + 1) {
                Some(&escaped @ (b'"' | b'\\' | b']')) => {
                    value.push(escaped);
                    i += 2;
                }
                _ => {
                    value.push(b'\\');
                    i += 1;
                }
            },
            b'"' => {
                cur.pos += i + 1;
                return Ok(String::from_utf8(value)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()));
            }
            _ => {
                value.push(b);
                i += 1;
            }
        }
    }
    Err(SyslogError::InvalidStructuredData {
        position: start - 1,
        reason: "PARAM-VALUE has no closing '\"'",
    })
}

/// RFC 3164 §4.1: PRI HEADER MSG, HEADER = TIMESTAMP SP HOSTNAME, MSG = TAG CONTENT — read
/// the way rsyslog's `pmrfc3164` does, since senders rarely follow §4.1 to the letter:
///
/// - TIMESTAMP is `Mmm dd hh:mm:ss` (§4.1.2, see [`parse_bsd`]) or an RFC 3339 timestamp;
///   when neither is there, the message has no timestamp *and no hostname*.
/// - HOSTNAME is the next word if it consists of letters, digits, `.`, `_` and `-` only and
///   ends in a letter or digit (§4.1.2). A word such as `sshd[42]:` or `su:` is the TAG of a
///   sender that omitted its hostname.
/// - TAG (§4.1.3) is the next word when it ends with `:` (`su:`, `sshd[42]:`) or has the form
///   `name[pid]`; unlike rsyslog, a plain word is not taken as a TAG, so free text after the
///   header stays in the message instead of becoming a bogus `service.name`.
fn parse_rfc3164(
    message: &[u8],
    after_pri: usize,
    facility: u8,
    severity: u8,
    now_ns: i64,
) -> ParsedSyslog {
    let mut pos = after_pri;
    let mut timestamp_ns = None;
    let mut have_timestamp = false;
    if let Some((ts, len)) = parse_bsd(&message[pos..]) {
        if matches!(message.get(pos + len), None | Some(b' ')) {
            have_timestamp = true;
            timestamp_ns = ts.to_unix_ns(now_ns);
            pos += len;
        }
    } else {
        let rest = &message[pos..];
        let token_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        if rest.first().is_some_and(u8::is_ascii_digit)
            && let Ok(ns) = parse_rfc3339(&rest[..token_len])
        {
            have_timestamp = true;
            timestamp_ns = Some(ns);
            pos += token_len;
        }
    }
    if have_timestamp {
        pos += message[pos..].iter().take_while(|&&b| b == b' ').count();
    }

    let mut hostname = None;
    if have_timestamp {
        let rest = &message[pos..];
        let len = rest
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            .count();
        let ends_word = matches!(rest.get(len), None | Some(b' '));
        if len > 0 && ends_word && rest[len - 1].is_ascii_alphanumeric() {
            hostname = Some(lossy(&rest[..len]));
            pos += len;
            pos += message[pos..].iter().take_while(|&&b| b == b' ').count();
        }
    }

    let (app_name, procid, tag_len) = parse_tag(&message[pos..]);
    pos += tag_len;

    ParsedSyslog {
        format: SyslogFormat::Rfc3164,
        facility,
        severity,
        version: None,
        timestamp_ns,
        hostname,
        app_name,
        procid,
        msgid: None,
        structured_data: Vec::new(),
        message: message_text(&message[pos..]),
    }
}

/// Longest word accepted as an RFC 3164 TAG. §4.1.3 says 32 characters; rsyslog and many
/// senders go beyond, so allow more, but not a whole sentence-less line.
const MAX_TAG_LEN: usize = 128;

/// RFC 3164 §4.1.3 TAG at the start of `rest`: program name, optional pid and the bytes
/// the TAG spans including its `:` and one following space. `(None, None, 0)` when absent.
fn parse_tag(rest: &[u8]) -> (Option<String>, Option<String>, usize) {
    let word_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let word = &rest[..word_len];
    // The tag ends at the first ':' in the word ("su:", "sshd[42]:", "app:msg-without-space").
    let (tag, mut consumed) = match word.iter().position(|&b| b == b':') {
        Some(colon) => (&word[..colon], colon + 1),
        None if word.ends_with(b"]") && word.contains(&b'[') => (word, word_len),
        None => return (None, None, 0),
    };
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return (None, None, 0);
    }
    let (name, pid) = match tag.iter().position(|&b| b == b'[') {
        Some(open) if tag.ends_with(b"]") => (&tag[..open], Some(&tag[open + 1..tag.len() - 1])),
        _ => (tag, None),
    };
    if name.is_empty() {
        return (None, None, 0);
    }
    if rest.get(consumed) == Some(&b' ') {
        consumed += 1;
    }
    let pid = pid.filter(|p| !p.is_empty()).map(lossy);
    (Some(lossy(name)), pid, consumed)
}

impl ParsedSyslog {
    /// Resource attributes: `service.name` from APP-NAME/TAG and `host.name` from HOSTNAME,
    /// each only when present.
    pub fn resource(&self) -> Vec<(String, String)> {
        let mut resource = Vec::with_capacity(2);
        if let Some(app) = &self.app_name {
            resource.push(("service.name".to_string(), app.clone()));
        }
        if let Some(host) = &self.hostname {
            resource.push(("host.name".to_string(), host.clone()));
        }
        resource
    }

    /// The resource attributes (see [`ParsedSyslog::resource`]) and the log record.
    ///
    /// The record's time is the message's, or `observed_ns` when it had none; its attributes
    /// are `syslog.facility`, `syslog.severity` (names), `syslog.version`, `syslog.procid`,
    /// `syslog.msgid` (when present) and one `syslog.sd.<SD-ID>.<PARAM-NAME>` per structured
    /// data parameter, names kept as sent.
    pub fn into_resource_and_record(self, observed_ns: i64) -> (Vec<(String, String)>, LogRecord) {
        let resource = self.resource();
        let mut attributes = Vec::with_capacity(
            5 + self
                .structured_data
                .iter()
                .map(|e| e.params.len())
                .sum::<usize>(),
        );
        attributes.push((
            "syslog.facility".to_string(),
            facility_name(self.facility).to_string(),
        ));
        attributes.push((
            "syslog.severity".to_string(),
            severity_name(self.severity).to_string(),
        ));
        if let Some(version) = self.version {
            attributes.push(("syslog.version".to_string(), version.to_string()));
        }
        if let Some(procid) = self.procid {
            attributes.push(("syslog.procid".to_string(), procid));
        }
        if let Some(msgid) = self.msgid {
            attributes.push(("syslog.msgid".to_string(), msgid));
        }
        for element in self.structured_data {
            for (name, value) in element.params {
                attributes.push((format!("syslog.sd.{}.{}", element.id, name), value));
            }
        }
        let record = LogRecord {
            timestamp_ns: self.timestamp_ns.unwrap_or(observed_ns),
            observed_timestamp_ns: observed_ns,
            severity_number: severity_number(self.severity),
            severity_text: severity_name(self.severity).to_string(),
            body: self.message,
            attributes,
            trace_id: String::new(),
            span_id: String::new(),
        };
        (resource, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1_000_000_000;
    /// 2025-03-04T05:06:07Z
    const NOW: i64 = 1_741_064_767 * NS;

    fn p(msg: &str) -> ParsedSyslog {
        parse(msg.as_bytes(), NOW).unwrap_or_else(|e| panic!("{msg:?}: {e}"))
    }

    fn err(msg: &[u8]) -> String {
        parse(msg, NOW).unwrap_err().to_string()
    }

    fn attr<'a>(record: &'a LogRecord, name: &str) -> Option<&'a str> {
        record
            .attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn rfc5424_example_1_no_structured_data() {
        // RFC 5424 §6.5, example 1 (with the BOM the RFC shows as "BOM").
        let m = p(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{FEFF}'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!(m.format, SyslogFormat::Rfc5424);
        assert_eq!((m.facility, m.severity), (4, 2));
        assert_eq!(m.version, Some(1));
        assert_eq!(m.timestamp_ns, Some(1_065_910_455 * NS + 3_000_000));
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.procid, None);
        assert_eq!(m.msgid.as_deref(), Some("ID47"));
        assert!(m.structured_data.is_empty());
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");

        let (resource, record) = m.into_resource_and_record(NOW);
        assert_eq!(
            resource,
            vec![
                ("service.name".to_string(), "su".to_string()),
                ("host.name".to_string(), "mymachine.example.com".to_string())
            ]
        );
        assert_eq!(record.severity_number, 18);
        assert_eq!(record.severity_text, "crit");
        assert_eq!(record.observed_timestamp_ns, NOW);
        assert_eq!(attr(&record, "syslog.facility"), Some("auth"));
        assert_eq!(attr(&record, "syslog.severity"), Some("crit"));
        assert_eq!(attr(&record, "syslog.msgid"), Some("ID47"));
        assert_eq!(attr(&record, "syslog.version"), Some("1"));
        assert_eq!(attr(&record, "syslog.procid"), None);
    }

    #[test]
    fn rfc5424_example_2_offset_and_procid() {
        // RFC 5424 §6.5, example 2.
        let m = p(
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        );
        assert_eq!((m.facility, m.severity), (20, 5));
        assert_eq!(m.timestamp_ns, Some(1_061_727_255 * NS + 3_000));
        assert_eq!(m.hostname.as_deref(), Some("192.0.2.1"));
        assert_eq!(m.procid.as_deref(), Some("8710"));
        assert_eq!(m.msgid, None);
        assert_eq!(m.message, "%% It's time to make the do-nuts.");
        let (_, record) = m.into_resource_and_record(NOW);
        assert_eq!(attr(&record, "syslog.facility"), Some("local4"));
        assert_eq!(
            (record.severity_number, record.severity_text.as_str()),
            (10, "notice")
        );
    }

    #[test]
    fn rfc5424_example_3_structured_data_and_bom() {
        // RFC 5424 §6.5, example 3.
        let m = p(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{FEFF}An application event log entry...",
        );
        assert_eq!(m.structured_data.len(), 1);
        assert_eq!(m.structured_data[0].id, "exampleSDID@32473");
        assert_eq!(m.message, "An application event log entry...");
        let (_, record) = m.into_resource_and_record(NOW);
        assert_eq!(attr(&record, "syslog.sd.exampleSDID@32473.iut"), Some("3"));
        assert_eq!(
            attr(&record, "syslog.sd.exampleSDID@32473.eventSource"),
            Some("Application")
        );
        assert_eq!(
            attr(&record, "syslog.sd.exampleSDID@32473.eventID"),
            Some("1011")
        );
    }

    #[test]
    fn rfc5424_example_4_two_elements_no_msg() {
        // RFC 5424 §6.5, example 4: structured data only, no MSG.
        let m = p(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        );
        assert_eq!(m.structured_data.len(), 2);
        assert_eq!(m.structured_data[1].id, "examplePriority@32473");
        assert_eq!(
            m.structured_data[1].params,
            vec![("class".to_string(), "high".to_string())]
        );
        assert_eq!(m.message, "");
    }

    #[test]
    fn rfc5424_all_nil_values_use_the_observed_time() {
        let m = p("<13>1 - - - - - -");
        assert_eq!(
            (m.timestamp_ns, &m.hostname, &m.app_name),
            (None, &None, &None)
        );
        assert_eq!((&m.procid, &m.msgid), (&None, &None));
        assert_eq!(m.message, "");
        let (resource, record) = m.into_resource_and_record(NOW);
        assert!(resource.is_empty());
        assert_eq!(record.timestamp_ns, NOW);
        assert_eq!(record.severity_number, 10);

        let m = p("<13>1 - - - - - - hello\r\n");
        assert_eq!(m.message, "hello");
    }

    #[test]
    fn rfc5424_param_value_escapes() {
        // RFC 5424 §6.3.3: '"', '\' and ']' escaped; other backslashes literal.
        let m = p(r#"<14>1 - h a - - [x@1 q="say \"hi\"" b="a\\b" r="[1\]" o="c:\temp" e=""] m"#);
        let params = &m.structured_data[0].params;
        assert_eq!(params[0], ("q".to_string(), r#"say "hi""#.to_string()));
        assert_eq!(params[1], ("b".to_string(), r"a\b".to_string()));
        assert_eq!(params[2], ("r".to_string(), "[1]".to_string()));
        assert_eq!(params[3], ("o".to_string(), r"c:\temp".to_string()));
        assert_eq!(params[4], ("e".to_string(), String::new()));
        assert_eq!(m.message, "m");
        // A ']' inside a value does not end the element, a ' ' does not end the value.
        let m = p(r#"<14>1 - h a - - [x@1 v="a ] b"][y@2] after"#);
        assert_eq!(m.structured_data[0].params[0].1, "a ] b");
        assert_eq!(
            m.structured_data[1],
            SdElement {
                id: "y@2".into(),
                params: vec![]
            }
        );
        assert_eq!(m.message, "after");
    }

    #[test]
    fn rfc5424_invalid_utf8_is_replaced() {
        let m = parse(
            b"<14>1 - h\xff a - - [x@1 v=\"\xfe\"] caf\xc3\xa9 \xff",
            NOW,
        )
        .unwrap();
        assert_eq!(m.hostname.as_deref(), Some("h\u{FFFD}"));
        assert_eq!(m.structured_data[0].params[0].1, "\u{FFFD}");
        assert_eq!(m.message, "café \u{FFFD}");
    }

    #[test]
    fn rfc5424_errors_name_field_and_byte() {
        assert_eq!(
            err(b"<34>1 2003-10-11 host app - - - msg"),
            "invalid TIMESTAMP at byte 16: expected 'T' between date and time"
        );
        assert_eq!(
            err(b"<34>1 - host app"),
            "invalid PROCID at byte 16: message ends before this field"
        );
        assert_eq!(
            err(b"<34>1 -  host app - - -"),
            "invalid HOSTNAME at byte 8: empty field (two spaces in a row)"
        );
        assert_eq!(
            err(b"<34>1 - h a p m"),
            "invalid STRUCTURED-DATA at byte 15: message ends before STRUCTURED-DATA"
        );
        assert_eq!(
            err(b"<34>1 - h a p m x"),
            "invalid STRUCTURED-DATA at byte 16: expected '[' or '-'"
        );
        assert_eq!(
            err(br#"<34>1 - h a p m [id k="v"#),
            "invalid STRUCTURED-DATA at byte 22: PARAM-VALUE has no closing '\"'"
        );
        assert_eq!(
            err(br#"<34>1 - h a p m [id k=v]"#),
            "invalid STRUCTURED-DATA at byte 22: expected '\"' to open PARAM-VALUE"
        );
        assert_eq!(
            err(br#"<34>1 - h a p m [id k]"#),
            "invalid STRUCTURED-DATA at byte 21: expected '=' after PARAM-NAME"
        );
        assert_eq!(
            err(br#"<34>1 - h a p m [ k="v"]"#),
            "invalid STRUCTURED-DATA at byte 17: expected an SD-ID"
        );
        assert_eq!(
            err(br#"<34>1 - h a p m [id"#),
            "invalid STRUCTURED-DATA at byte 19: message ends inside an SD-ELEMENT"
        );
        assert_eq!(
            err(br#"<34>1 - h a p m [id]msg"#),
            "invalid STRUCTURED-DATA at byte 20: expected a space before MSG"
        );
        assert_eq!(
            err(br#"<34>1 - h a p m -msg"#),
            "invalid STRUCTURED-DATA at byte 17: expected a space before MSG"
        );
    }

    #[test]
    fn pri_errors() {
        assert_eq!(err(b"hello"), "invalid PRI at byte 0: expected '<'");
        assert_eq!(
            err(b"<>1 - - - - - -"),
            "invalid PRI at byte 1: expected a digit"
        );
        assert_eq!(err(b"<12"), "invalid PRI at byte 3: expected '>'");
        assert_eq!(err(b"<1234>"), "invalid PRI at byte 4: more than 3 digits");
        assert_eq!(
            err(b"<192>1 - - - - - -"),
            "invalid PRI at byte 1: 192 is above the maximum 191"
        );
        assert_eq!(err(b""), "message is empty");
        assert_eq!(p("<0>1 - - - - - -").severity, 0);
        assert_eq!(p("<191>1 - - - - - -").facility, 23);
        assert_eq!(p("<013>hello").severity, 5);
        assert_eq!(
            SyslogError::MessageTooLong {
                len: 1_048_576,
                limit: 65_536
            }
            .to_string(),
            "message is 1048576 bytes, the limit is 65536"
        );
    }

    #[test]
    fn rfc3164_example_from_the_rfc() {
        // RFC 3164 §5.4, example 1.
        let m = p("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(m.format, SyslogFormat::Rfc3164);
        assert_eq!((m.facility, m.severity), (4, 2));
        // Oct 11 is after NOW's Mar 4: last year, read as UTC.
        assert_eq!(m.timestamp_ns, Some(1_728_684_855 * NS));
        assert_eq!(m.hostname.as_deref(), Some("mymachine"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.procid, None);
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");
        let (resource, record) = m.into_resource_and_record(NOW);
        assert_eq!(resource.len(), 2);
        assert_eq!(attr(&record, "syslog.version"), None);
        assert_eq!(attr(&record, "syslog.facility"), Some("auth"));
    }

    #[test]
    fn rfc3164_tag_with_pid_and_padded_day() {
        let m = p("<86>Mar  1 05:06:07 web-1.example sshd[4242]: Accepted publickey for root");
        assert_eq!(m.hostname.as_deref(), Some("web-1.example"));
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        assert_eq!(m.procid.as_deref(), Some("4242"));
        assert_eq!(m.message, "Accepted publickey for root");
        assert_eq!(m.timestamp_ns, Some(1_740_805_567 * NS));
        let (_, record) = m.into_resource_and_record(NOW);
        assert_eq!(attr(&record, "syslog.facility"), Some("authpriv"));
        assert_eq!(attr(&record, "syslog.procid"), Some("4242"));
        assert_eq!(record.severity_number, 9);
    }

    #[test]
    fn rfc3164_missing_hostname_like_rsyslog() {
        // The word after the timestamp ends with ':' or contains '[': it is the TAG.
        let m = p("<13>Mar  1 05:06:07 su: hello");
        assert_eq!(
            (m.hostname, m.app_name.as_deref(), m.message.as_str()),
            (None, Some("su"), "hello")
        );
        let m = p("<13>Mar  1 05:06:07 cron[12]: job done");
        assert_eq!(
            (m.hostname, m.app_name.as_deref(), m.procid.as_deref()),
            (None, Some("cron"), Some("12"))
        );
        assert_eq!(m.message, "job done");
        // `name[pid]` without a colon is still a tag.
        let m = p("<13>Mar  1 05:06:07 host prog[7] text");
        assert_eq!(
            (
                m.hostname.as_deref(),
                m.app_name.as_deref(),
                m.message.as_str()
            ),
            (Some("host"), Some("prog"), "text")
        );
        // A plain word after the hostname is not a tag.
        let m = p("<13>Mar  1 05:06:07 host just some text");
        assert_eq!(
            (m.hostname.as_deref(), m.app_name, m.message.as_str()),
            (Some("host"), None, "just some text")
        );
    }

    #[test]
    fn rfc3164_missing_or_iso_timestamp() {
        // No timestamp: observed time, no hostname.
        let m = p("<13>myapp: started");
        assert_eq!(
            (m.timestamp_ns, m.hostname.as_deref(), m.app_name.as_deref()),
            (None, None, Some("myapp"))
        );
        assert_eq!(m.message, "started");
        let (_, record) = m.into_resource_and_record(NOW);
        assert_eq!(record.timestamp_ns, NOW);
        let m = p("<13>just text");
        assert_eq!((m.app_name, m.message.as_str()), (None, "just text"));
        // RFC 3339 timestamp instead of a BSD one (rsyslog's high-precision template).
        let m = p("<13>2025-03-01T05:06:07.5+01:00 host app[1]: msg");
        assert_eq!(
            m.timestamp_ns,
            Some((1_740_805_567 - 3600) * NS + 500_000_000)
        );
        assert_eq!(
            (
                m.hostname.as_deref(),
                m.app_name.as_deref(),
                m.message.as_str()
            ),
            (Some("host"), Some("app"), "msg")
        );
        // Feb 30 is no date: observed time, but the rest still parses.
        let m = p("<13>Feb 30 05:06:07 host app: msg");
        assert_eq!(
            (m.timestamp_ns, m.hostname.as_deref()),
            (None, Some("host"))
        );
        // An empty message after PRI is fine in RFC 3164.
        let m = p("<13>");
        assert_eq!((m.message.as_str(), m.app_name), ("", None));
        // A message consisting of a hostname only (rsyslog: valid hostname, empty MSG).
        let m = p("<13>Mar  1 05:06:07 host");
        assert_eq!(
            (m.hostname.as_deref(), m.message.as_str()),
            (Some("host"), "")
        );
    }

    #[test]
    fn version_detection_is_not_fooled_by_digits() {
        // "<13>10 ..." would be RFC 5424 version 10; a 3164 message with a digit-led word
        // that is not followed by a space stays 3164.
        assert_eq!(p("<13>2025x hello").format, SyslogFormat::Rfc3164);
        assert_eq!(p("<13>0 hello").format, SyslogFormat::Rfc3164);
        assert_eq!(p("<13>1234 hello").format, SyslogFormat::Rfc3164);
        assert_eq!(p("<13>12 - - - - - -").version, Some(12));
    }

    #[test]
    fn severity_table() {
        let table: Vec<_> = (0..8)
            .map(|s| (severity_name(s), severity_number(s)))
            .collect();
        assert_eq!(
            table,
            vec![
                ("emerg", 21),
                ("alert", 19),
                ("crit", 18),
                ("err", 17),
                ("warning", 13),
                ("notice", 10),
                ("info", 9),
                ("debug", 5)
            ]
        );
        assert_eq!(facility_name(16), "local0");
        assert_eq!(facility_name(23), "local7");
        assert_eq!(facility_name(99), "unknown");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn field() -> impl Strategy<Value = String> {
            "[!-~]{1,20}".prop_filter("not NILVALUE", |s| s != "-")
        }

        fn sd_name() -> impl Strategy<Value = String> {
            "[!#-<>-\\\\^-~]{1,12}"
        }

        fn escape(v: &str) -> String {
            let mut out = String::new();
            for c in v.chars() {
                if matches!(c, '"' | '\\' | ']') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }

        proptest! {
            #[test]
            fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), now in any::<i64>()) {
                let _ = parse(&bytes, now);
            }

            #[test]
            fn never_panics_on_near_valid_input(
                prefix in prop::sample::select(vec!["<34>1 ", "<13>", "<13>Oct 11 22:14:15 ", "<0>1 2003-10-11T22:14:15.003Z h a p m ", "<13>1 - - - - - ["]),
                tail in "[ -~\\[\\]\"\\\\=]{0,80}",
                now in any::<i64>(),
            ) {
                if let Ok(m) = parse(format!("{prefix}{tail}").as_bytes(), now) {
                    let _ = m.into_resource_and_record(now);
                }
            }

            #[test]
            fn rfc5424_fields_round_trip(
                host in field(), app in field(), procid in field(), msgid in field(),
                sd in proptest::collection::vec((sd_name(), proptest::collection::vec((sd_name(), "\\PC{0,10}"), 0..3)), 0..3),
                msg in "\\PC{0,40}",
                pri in 0u8..192,
            ) {
                let mut text = format!("<{pri}>1 2003-10-11T22:14:15.003Z {host} {app} {procid} {msgid} ");
                if sd.is_empty() {
                    text.push('-');
                }
                for (id, params) in &sd {
                    text.push('[');
                    text.push_str(id);
                    for (name, value) in params {
                        text.push_str(&format!(" {name}=\"{}\"", escape(value)));
                    }
                    text.push(']');
                }
                text.push(' ');
                text.push_str(&msg);
                let m = parse(text.as_bytes(), 0).unwrap();
                prop_assert_eq!(m.facility * 8 + m.severity, pri);
                prop_assert_eq!(m.hostname.as_deref(), Some(host.as_str()));
                prop_assert_eq!(m.app_name.as_deref(), Some(app.as_str()));
                prop_assert_eq!(m.procid.as_deref(), Some(procid.as_str()));
                prop_assert_eq!(m.msgid.as_deref(), Some(msgid.as_str()));
                let got: Vec<_> = m.structured_data.iter().map(|e| (e.id.clone(), e.params.clone())).collect();
                prop_assert_eq!(got, sd);
                let expected_msg = msg.trim_end_matches(['\r', '\n', '\0']);
                prop_assert_eq!(m.message.as_str(), expected_msg);
            }
        }
    }
}
