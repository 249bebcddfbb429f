//! The email integration: Alertmanager's `<email_config>` and the `smtp_*` keys of `global:`,
//! the default notification templates, rendering a notification into a message, and
//! delivering it over SMTP.
//!
//! It owns everything between a [`Data`] and a message accepted by the smarthost, and it
//! follows Alertmanager (`notify/email`) so that a configuration written for Alertmanager
//! behaves the same here:
//!
//! * Configuration: an entry's empty fields are filled from `global:` by
//!   [`EmailConfig::resolve`]; `require_tls` defaults to `true`, `hello` to `localhost`,
//!   `html` to `{{ template "email.default.html" . }}` and the `Subject`, `To` and `From`
//!   headers to the default subject and the entry's `to` and `from`. Every header value,
//!   `to`, `from`, `html` and `text` is a template.
//! * Templates: [`load_templates`] parses our `default.tmpl` (the template names
//!   Alertmanager users rely on) and then the configuration's `templates:` globs, whose
//!   `define`s replace ours. Missing map keys print as nothing (`missingkey=zero`).
//!   Alertmanager executes `html` with Go's `html/template`; our engine has no contextual
//!   escaping, so the HTML body is executed on a copy of the data whose strings are
//!   HTML-escaped, and whose URLs with a scheme other than http, https or mailto are
//!   replaced by `#ZgotmplZ` as `html/template` does in links.
//! * Transport: port 465 (or `force_implicit_tls: true`) means TLS from the first byte;
//!   otherwise `require_tls: true` means STARTTLS, and a server that does not advertise it
//!   is an error; `require_tls: false` means plain SMTP even if STARTTLS is offered. With
//!   an `auth_username`, and only if the server advertises `AUTH`, the first of the
//!   server's mechanisms we can serve is used: CRAM-MD5 (with `auth_secret`), PLAIN (with
//!   `auth_identity` as the authorization identity) or LOGIN. Unlike Alertmanager, which
//!   refuses only PLAIN, neither PLAIN nor LOGIN credentials are sent over an unencrypted
//!   connection unless the smarthost is the loopback host.
//! * Message: the rendered headers (lettre encodes non-ASCII and line breaks as RFC 2047
//!   words), Message-ID and Date as lettre makes them unless a header sets them,
//!   References and In-Reply-To when threading, and multipart/alternative (text, then
//!   HTML) when both bodies are set, else the one body alone (Alertmanager always wraps
//!   it in a multipart).
//! * Failures are a [`NotifyError`]: retryable (the server cannot be reached, the
//!   connection or TLS fails, a 4xx reply) or permanent (a template or an address is wrong,
//!   the configuration cannot be used, a 5xx reply), so the dispatcher retries only what
//!   a retry can fix. Alertmanager retries 5xx replies too.
//!
//! It never logs and never panics on input: every failure is returned to the caller, which
//! counts and logs it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lettre::Message;
use lettre::address::{Address, Envelope};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, Identity, TlsParameters, TlsVersion,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use serde::{Deserialize, Deserializer};

use super::data::Data;
use crate::template::{MissingKey, Template, alertmanager_funcs};

/// The default templates, parsed before the configuration's own.
pub const DEFAULT_TEMPLATES: &str = include_str!("default.tmpl");

/// The default `html` of an email config.
pub const DEFAULT_EMAIL_HTML: &str = r#"{{ template "email.default.html" . }}"#;

/// The default `Subject` header of an email config.
pub const DEFAULT_EMAIL_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;

/// How long one delivery (connect, TLS, authentication, message) may take by default.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The name the default templates are parsed under.
const DEFAULT_TEMPLATES_NAME: &str = "default.tmpl";

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// A password or other credential, kept out of `Debug` output.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Returns the credential itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Tells whether no credential is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Alertmanager prints `<secret>` for any set secret in its configuration dumps.
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("<secret>")
        }
    }
}

/// A `host:port` address, as `smarthost` and `smtp_smarthost` take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host name or IP address, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` or `[ipv6]:port` as Go's `net.SplitHostPort` does, with a port
    /// that must be a number.
    pub fn parse(text: &str) -> Result<HostPort, String> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("address {text:?}: missing ']' in address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("address {text:?}: missing port in address"))?;
            (host, port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| format!("address {text:?}: missing port in address"))?;
            if host.contains(':') {
                return Err(format!("address {text:?}: too many colons in address"));
            }
            (host, port)
        };
        if port.is_empty() {
            return Err(format!("address {text:?}: port cannot be empty"));
        }
        let port = port.parse::<u16>().map_err(|_| {
            format!("address {text:?}: port {port:?} is not a number from 0 to 65535")
        })?;
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Deserialises an optional `host:port`; the empty string means unset, as in Alertmanager.
fn deserialize_host_port<'de, D>(deserializer: D) -> Result<Option<HostPort>, D::Error>
where
    D: Deserializer<'de>,
{
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    if text.is_empty() {
        return Ok(None);
    }
    HostPort::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// A TLS protocol version as Prometheus's `tls_config` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsProtocolVersion {
    #[serde(rename = "TLS10")]
    Tls10,
    #[serde(rename = "TLS11")]
    Tls11,
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

/// Prometheus's `<tls_config>`, as `tls_config` and `smtp_tls_config` take it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The CA certificates (PEM) that verify the server; they replace the default roots.
    pub ca: String,
    pub ca_file: String,
    /// Secret-manager references: accepted so the error names them, never supported.
    pub ca_ref: String,
    /// The client certificate (PEM) presented to the server, with its key.
    pub cert: String,
    pub cert_file: String,
    pub cert_ref: String,
    pub key: Secret,
    pub key_file: String,
    pub key_ref: String,
    /// The name the server certificate must carry; the smarthost's host when empty.
    pub server_name: String,
    pub insecure_skip_verify: bool,
    pub min_version: Option<TlsProtocolVersion>,
    /// Accepted for compatibility; rustls always negotiates the highest common version.
    pub max_version: Option<TlsProtocolVersion>,
}

impl TlsConfig {
    /// Checks the rules of Prometheus's `TLSConfig.Validate`, plus what Sightline cannot do.
    fn validate(&self) -> Result<(), String> {
        for (field, reference) in [
            ("ca_ref", &self.ca_ref),
            ("cert_ref", &self.cert_ref),
            ("key_ref", &self.key_ref),
        ] {
            if !reference.is_empty() {
                return Err(format!(
                    "tls_config.{field} is not supported: give the PEM inline or as a file"
                ));
            }
        }
        if !self.ca.is_empty() && !self.ca_file.is_empty() {
            return Err("tls_config: at most one of ca and ca_file may be set".to_owned());
        }
        if !self.cert.is_empty() && !self.cert_file.is_empty() {
            return Err("tls_config: at most one of cert and cert_file may be set".to_owned());
        }
        if !self.key.is_empty() && !self.key_file.is_empty() {
            return Err("tls_config: at most one of key and key_file may be set".to_owned());
        }
        let has_cert = !self.cert.is_empty() || !self.cert_file.is_empty();
        let has_key = !self.key.is_empty() || !self.key_file.is_empty();
        if has_cert && !has_key {
            return Err(
                "tls_config: a client certificate (cert, cert_file) needs its key (key, key_file)"
                    .to_owned(),
            );
        }
        if has_key && !has_cert {
            return Err(
                "tls_config: a client key (key, key_file) needs its certificate (cert, cert_file)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// Mail threading: every notification of a group refers to one thread root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreadingConfig {
    pub enabled: bool,
    /// `daily` (a new thread every day) or `none` (one thread for the group's life).
    pub thread_by_date: String,
}

/// Alertmanager's `<email_config>`: one email integration of a receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Whether to notify about resolved alerts too; `false` by default for email.
    #[serde(default)]
    pub send_resolved: bool,
    /// The recipients: one or more comma-separated addresses (a template).
    #[serde(default)]
    pub to: String,
    /// The sender (a template); `smtp_from` when empty.
    #[serde(default)]
    pub from: String,
    /// The name sent with EHLO; `smtp_hello` when empty.
    #[serde(default)]
    pub hello: String,
    /// The SMTP server; `smtp_smarthost` when unset.
    #[serde(default, deserialize_with = "deserialize_host_port")]
    pub smarthost: Option<HostPort>,
    #[serde(default)]
    pub auth_username: String,
    /// The password for PLAIN and LOGIN.
    #[serde(default)]
    pub auth_password: Secret,
    /// A file holding the password (read at every delivery, surrounding space trimmed).
    #[serde(default)]
    pub auth_password_file: String,
    /// The secret for CRAM-MD5.
    #[serde(default)]
    pub auth_secret: Secret,
    /// A file holding the CRAM-MD5 secret (read at every delivery).
    #[serde(default)]
    pub auth_secret_file: String,
    /// The authorization identity of PLAIN; usually empty.
    #[serde(default)]
    pub auth_identity: String,
    /// Header name to value template; `Subject`, `To` and `From` have defaults.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The HTML body template; no HTML part when empty.
    #[serde(default = "default_html")]
    pub html: String,
    /// The plain-text body template; no text part when empty (the default).
    #[serde(default)]
    pub text: String,
    /// Whether STARTTLS is required; `smtp_require_tls` (default `true`) when unset.
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// How to verify the server and present a client certificate; `smtp_tls_config`
    /// when unset.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// `true`: TLS from the first byte; `false`: never; unset: only on port 465.
    #[serde(default)]
    pub force_implicit_tls: Option<bool>,
    #[serde(default)]
    pub threading: ThreadingConfig,
}

fn default_html() -> String {
    DEFAULT_EMAIL_HTML.to_owned()
}

fn default_hello() -> String {
    "localhost".to_owned()
}

fn default_true() -> bool {
    true
}

/// The `smtp_*` keys of Alertmanager's `global:` section, the defaults of every email
/// config.
///
/// Other keys are ignored rather than refused, so this deserialises from the whole
/// `global:` mapping (or sits flattened inside the type that reads it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SmtpGlobal {
    pub smtp_from: String,
    /// `localhost` by default.
    #[serde(default = "default_hello")]
    pub smtp_hello: String,
    #[serde(deserialize_with = "deserialize_host_port")]
    pub smtp_smarthost: Option<HostPort>,
    pub smtp_auth_username: String,
    pub smtp_auth_password: Secret,
    pub smtp_auth_password_file: String,
    pub smtp_auth_secret: Secret,
    pub smtp_auth_secret_file: String,
    pub smtp_auth_identity: String,
    /// `true` by default.
    #[serde(default = "default_true")]
    pub smtp_require_tls: bool,
    pub smtp_tls_config: Option<TlsConfig>,
    pub smtp_force_implicit_tls: Option<bool>,
}

impl Default for SmtpGlobal {
    fn default() -> Self {
        SmtpGlobal {
            smtp_from: String::new(),
            smtp_hello: default_hello(),
            smtp_smarthost: None,
            smtp_auth_username: String::new(),
            smtp_auth_password: Secret::default(),
            smtp_auth_password_file: String::new(),
            smtp_auth_secret: Secret::default(),
            smtp_auth_secret_file: String::new(),
            smtp_auth_identity: String::new(),
            smtp_require_tls: true,
            smtp_tls_config: None,
            smtp_force_implicit_tls: None,
        }
    }
}

impl SmtpGlobal {
    /// Checks the global keys on their own, as Alertmanager does when it loads `global:`
    /// whether or not any receiver sends email.
    pub fn validate(&self) -> Result<(), String> {
        if !self.smtp_auth_password.is_empty() && !self.smtp_auth_password_file.is_empty() {
            return Err(
                "global: at most one of smtp_auth_password and smtp_auth_password_file may be set"
                    .to_owned(),
            );
        }
        if !self.smtp_auth_secret.is_empty() && !self.smtp_auth_secret_file.is_empty() {
            return Err(
                "global: at most one of smtp_auth_secret and smtp_auth_secret_file may be set"
                    .to_owned(),
            );
        }
        if let Some(tls) = &self.smtp_tls_config {
            tls.validate().map_err(|e| format!("global: smtp_{e}"))?;
        }
        Ok(())
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            send_resolved: false,
            to: String::new(),
            from: String::new(),
            hello: String::new(),
            smarthost: None,
            auth_username: String::new(),
            auth_password: Secret::default(),
            auth_password_file: String::new(),
            auth_secret: Secret::default(),
            auth_secret_file: String::new(),
            auth_identity: String::new(),
            headers: BTreeMap::new(),
            html: default_html(),
            text: String::new(),
            require_tls: None,
            tls_config: None,
            force_implicit_tls: None,
            threading: ThreadingConfig::default(),
        }
    }
}

impl EmailConfig {
    /// Fills the entry's unset fields from `global` and checks the result as Alertmanager
    /// does when it loads the configuration; errors name the receiver and the field.
    ///
    /// Stricter than Alertmanager: an entry may not set both a password and a password
    /// file (or a secret and a secret file), where Alertmanager silently prefers the file,
    /// and the secret and its file are taken from `global` together, as the password is.
    pub fn resolve(&mut self, global: &SmtpGlobal, receiver: &str) -> Result<(), String> {
        let fail = |what: String| format!("receiver {receiver:?}: email config: {what}");
        global.validate().map_err(fail)?;

        if self.to.is_empty() {
            return Err(fail("missing to address (`to` is required)".to_owned()));
        }
        if self.smarthost.is_none() {
            self.smarthost = global.smtp_smarthost.clone();
        }
        if self.smarthost.is_none() {
            return Err(fail(
                "no smarthost: set `smarthost` or the global `smtp_smarthost`".to_owned(),
            ));
        }
        if self.from.is_empty() {
            self.from = global.smtp_from.clone();
        }
        if self.from.is_empty() {
            return Err(fail(
                "no from address: set `from` or the global `smtp_from`".to_owned(),
            ));
        }
        if self.hello.is_empty() {
            self.hello = global.smtp_hello.clone();
        }
        if self.auth_username.is_empty() {
            self.auth_username = global.smtp_auth_username.clone();
        }

        if !self.auth_password.is_empty() && !self.auth_password_file.is_empty() {
            return Err(fail(
                "at most one of auth_password and auth_password_file may be set".to_owned(),
            ));
        }
        if self.auth_password.is_empty() && self.auth_password_file.is_empty() {
            // The pair comes from one place, so an entry's file is never mixed with the
            // global password.
            self.auth_password = global.smtp_auth_password.clone();
            self.auth_password_file = global.smtp_auth_password_file.clone();
        }
        if !self.auth_secret.is_empty() && !self.auth_secret_file.is_empty() {
            return Err(fail(
                "at most one of auth_secret and auth_secret_file may be set".to_owned(),
            ));
        }
        if self.auth_secret.is_empty() && self.auth_secret_file.is_empty() {
            self.auth_secret = global.smtp_auth_secret.clone();
            self.auth_secret_file = global.smtp_auth_secret_file.clone();
        }
        if self.auth_identity.is_empty() {
            self.auth_identity = global.smtp_auth_identity.clone();
        }
        if self.require_tls.is_none() {
            self.require_tls = Some(global.smtp_require_tls);
        }
        if self.tls_config.is_none() {
            self.tls_config = global.smtp_tls_config.clone();
        }
        if let Some(tls) = &self.tls_config {
            tls.validate().map_err(fail)?;
        }
        if self.force_implicit_tls.is_none() {
            self.force_implicit_tls = global.smtp_force_implicit_tls;
        }

        // Header names are case-insensitive: keep one canonical spelling and refuse two
        // spellings of one name, as Alertmanager does.
        let mut headers = BTreeMap::new();
        for (name, value) in std::mem::take(&mut self.headers) {
            if HeaderName::new_from_ascii(name.clone()).is_err() || !is_header_token(&name) {
                return Err(fail(format!("headers: invalid header name {name:?}")));
            }
            let canonical = canonical_header_key(&name);
            if headers.insert(canonical.clone(), value).is_some() {
                return Err(fail(format!("headers: duplicate header {canonical:?}")));
            }
        }
        self.headers = headers;

        if self.threading.enabled {
            for header in ["References", "In-Reply-To"] {
                if self.headers.contains_key(header) {
                    return Err(fail(format!(
                        "threading.enabled conflicts with the custom {header} header"
                    )));
                }
            }
            if !matches!(self.threading.thread_by_date.as_str(), "none" | "daily") {
                return Err(fail(format!(
                    "threading.thread_by_date must be \"none\" or \"daily\", not {:?}",
                    self.threading.thread_by_date
                )));
            }
        }
        Ok(())
    }
}

/// Tells whether a header name is an RFC 5322 field name (printable ASCII but `:`).
fn is_header_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// Canonicalises a header name as Go's `textproto.CanonicalMIMEHeaderKey`: the first
/// letter and every letter after a hyphen upper case, the others lower case.
fn canonical_header_key(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// Loads the notification templates: Sightline's defaults, then every file matched by
/// each glob of the configuration's `templates:` in order (a glob matching nothing is
/// fine, as in Alertmanager). Each file is parsed under its base name; its `define`s
/// replace earlier ones of the same name.
pub fn load_templates(paths: &[PathBuf]) -> Result<Template, String> {
    let mut template = Template::parse(
        DEFAULT_TEMPLATES_NAME,
        DEFAULT_TEMPLATES,
        &alertmanager_funcs(),
    )
    .map_err(|e| format!("default templates: {e}"))?
    .with_missing_key(MissingKey::Zero);
    for pattern in paths {
        let pattern_text = pattern
            .to_str()
            .ok_or_else(|| format!("template path {} is not UTF-8", pattern.display()))?;
        let matches = glob::glob(pattern_text)
            .map_err(|e| format!("templates: invalid glob {pattern_text:?}: {e}"))?;
        let mut files = Vec::new();
        for entry in matches {
            let file = entry
                .map_err(|e| format!("templates: reading {}: {}", e.path().display(), e.error()))?;
            files.push(file);
        }
        // Go's filepath.Glob returns its matches sorted.
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("templates: reading {}: {e}", file.display()))?;
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(pattern_text)
                .to_owned();
            template
                .add_parse(&name, &text)
                .map_err(|e| format!("templates: {}: {e}", file.display()))?;
        }
    }
    Ok(template)
}

/// Escapes text for HTML as Go's `template.HTMLEscapeString`.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Replaces a URL whose scheme is not http, https or mailto by `#ZgotmplZ`, as Go's
/// `html/template` does in URL attributes, so a `javascript:` generator URL cannot run.
fn filter_url(url: &str) -> String {
    let scheme_end = url.find(':');
    let path_start = url.find(['/', '?', '#']);
    match scheme_end {
        Some(colon) if path_start.is_none_or(|p| colon < p) => {
            let scheme = url[..colon].to_ascii_lowercase();
            if matches!(scheme.as_str(), "http" | "https" | "mailto") {
                url.to_owned()
            } else {
                "#ZgotmplZ".to_owned()
            }
        }
        _ => url.to_owned(),
    }
}

/// Returns the data the HTML body is executed on: every string HTML-escaped, URLs filtered.
fn html_safe_data(data: &Data) -> Data {
    let escape_map = |map: &mut BTreeMap<String, String>| {
        for value in map.values_mut() {
            *value = html_escape(value);
        }
    };
    let mut safe = data.clone();
    safe.receiver = html_escape(&safe.receiver);
    safe.status = html_escape(&safe.status);
    safe.external_url = html_escape(&filter_url(&safe.external_url));
    escape_map(&mut safe.group_labels);
    escape_map(&mut safe.common_labels);
    escape_map(&mut safe.common_annotations);
    for alert in &mut safe.alerts {
        alert.status = html_escape(&alert.status);
        alert.generator_url = html_escape(&filter_url(&alert.generator_url));
        alert.fingerprint = html_escape(&alert.fingerprint);
        escape_map(&mut alert.labels);
        escape_map(&mut alert.annotations);
    }
    safe
}

// ---------------------------------------------------------------------------------------
// Notifier
// ---------------------------------------------------------------------------------------

/// Why a notification was not delivered, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying with backoff: the server could not be reached, the connection or
    /// TLS failed, the delivery timed out or the server answered 4xx.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help: a template or an address is wrong, the configuration cannot
    /// be used, or the server refused with a 5xx reply.
    #[error("{0}")]
    Permanent(String),
}

impl NotifyError {
    /// Tells whether the caller should try again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Retryable(_))
    }
}

/// Classifies an SMTP client error: 5xx and client-side refusals are permanent, the rest
/// (4xx, connection, network, TLS, timeouts) retryable.
fn smtp_error(step: &str, error: lettre::transport::smtp::Error) -> NotifyError {
    let message = format!("{step}: {error}");
    if error.is_permanent() || error.is_client() {
        NotifyError::Permanent(message)
    } else {
        NotifyError::Retryable(message)
    }
}

/// A notification rendered into what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// The envelope sender (`MAIL FROM`), from the rendered `from`.
    pub envelope_from: String,
    /// The envelope recipients (`RCPT TO`), from the rendered `to`.
    pub envelope_to: Vec<String>,
    /// The rendered headers, canonical names, in name order.
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl RenderedEmail {
    /// Returns the value of a rendered header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Names the configuration's own templates are parsed under inside the notifier's set.
const FROM_TEMPLATE: &str = "__email_config_from";
const TO_TEMPLATE: &str = "__email_config_to";
const HTML_TEMPLATE: &str = "__email_config_html";
const TEXT_TEMPLATE: &str = "__email_config_text";
const HEADER_TEMPLATE_PREFIX: &str = "__email_config_header_";

/// Sends the notifications of one email config.
#[derive(Debug, Clone)]
pub struct EmailNotifier {
    config: EmailConfig,
    smarthost: HostPort,
    /// Header name and the name of its template in `templates`.
    headers: Vec<(String, String)>,
    templates: Template,
    timeout: Duration,
}

impl EmailNotifier {
    /// Builds the notifier of a resolved config ([`EmailConfig::resolve`]) with the loaded
    /// templates ([`load_templates`]), parsing the config's own templates once so that a
    /// syntax error shows at load time rather than at the first alert.
    pub fn new(config: EmailConfig, templates: &Template) -> Result<EmailNotifier, String> {
        let smarthost = config
            .smarthost
            .clone()
            .ok_or("email config has no smarthost (resolve it against `global:` first)")?;
        let mut templates = templates.clone();
        let mut parse = |name: &str, field: &str, text: &str| {
            templates
                .add_parse(name, text)
                .map_err(|e| format!("email config: {field}: {e}"))
        };
        parse(FROM_TEMPLATE, "from", &config.from)?;
        parse(TO_TEMPLATE, "to", &config.to)?;
        parse(HTML_TEMPLATE, "html", &config.html)?;
        parse(TEXT_TEMPLATE, "text", &config.text)?;

        // As Alertmanager's `email.New`: Subject, To and From default to the subject
        // template and the config's own `to` and `from`.
        let mut header_texts = config.headers.clone();
        header_texts
            .entry("Subject".to_owned())
            .or_insert_with(|| DEFAULT_EMAIL_SUBJECT.to_owned());
        header_texts
            .entry("To".to_owned())
            .or_insert_with(|| config.to.clone());
        header_texts
            .entry("From".to_owned())
            .or_insert_with(|| config.from.clone());
        let mut headers = Vec::with_capacity(header_texts.len());
        for (name, text) in &header_texts {
            let template_name = format!("{HEADER_TEMPLATE_PREFIX}{name}");
            parse(&template_name, &format!("headers.{name}"), text)?;
            headers.push((name.clone(), template_name));
        }
        Ok(EmailNotifier {
            config,
            smarthost,
            headers,
            templates,
            timeout: DEFAULT_DELIVERY_TIMEOUT,
        })
    }

    /// Returns the notifier with another bound on one delivery.
    pub fn with_timeout(mut self, timeout: Duration) -> EmailNotifier {
        self.timeout = timeout;
        self
    }

    /// Returns the config the notifier sends with.
    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// Tells whether resolved notifications are sent (`send_resolved`).
    pub fn send_resolved(&self) -> bool {
        self.config.send_resolved
    }

    /// Renders the notification: headers, envelope and bodies. Every failure here is
    /// permanent, as the same data will fail the same way.
    pub fn render(&self, data: &Data) -> Result<RenderedEmail, NotifyError> {
        let value = data.to_value();
        let execute = |name: &str, field: &str, value| {
            self.templates
                .execute_template(name, value)
                .map_err(|e| NotifyError::Permanent(format!("execute {field} template: {e}")))
        };

        let from = execute(FROM_TEMPLATE, "'from'", &value)?;
        let from = parse_mailboxes("from", &from)?;
        if from.len() != 1 {
            return Err(NotifyError::Permanent(format!(
                "must be exactly one 'from' address (got: {})",
                from.len()
            )));
        }
        let to = execute(TO_TEMPLATE, "'to'", &value)?;
        let to = parse_mailboxes("to", &to)?;
        if to.is_empty() {
            return Err(NotifyError::Permanent(
                "parse 'to' addresses: no address".to_owned(),
            ));
        }

        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, template_name) in &self.headers {
            let rendered = execute(template_name, &format!("{name:?} header"), &value)?;
            headers.push((name.clone(), rendered));
        }
        let text = if self.config.text.is_empty() {
            None
        } else {
            Some(execute(TEXT_TEMPLATE, "text", &value)?)
        };
        let html = if self.config.html.is_empty() {
            None
        } else {
            let safe = html_safe_data(data).to_value();
            Some(execute(HTML_TEMPLATE, "html", &safe)?)
        };
        Ok(RenderedEmail {
            envelope_from: from[0].clone(),
            envelope_to: to,
            headers,
            text,
            html,
        })
    }

    /// Renders and delivers the notification for `data`. Threading, when enabled, keys
    /// the thread on the receiver and the group labels; use
    /// [`EmailNotifier::notify_group`] to key it on the dispatcher's group key.
    pub async fn notify(&self, data: &Data) -> Result<(), NotifyError> {
        let mut key = data.receiver.clone();
        for (name, value) in &data.group_labels {
            key.push_str(&format!("\u{0}{name}={value}"));
        }
        self.notify_group(data, &key).await
    }

    /// Renders and delivers the notification for `data`, sent for the aggregation group
    /// `group_key` (which keys the mail thread when threading is enabled).
    pub async fn notify_group(&self, data: &Data, group_key: &str) -> Result<(), NotifyError> {
        let rendered = self.render(data)?;
        let (envelope, message) = self.message(&rendered, group_key)?;
        match tokio::time::timeout(self.timeout, self.deliver(&envelope, &message)).await {
            Ok(result) => result,
            Err(_) => Err(NotifyError::Retryable(format!(
                "delivery to {} timed out after {:?}",
                self.smarthost, self.timeout
            ))),
        }
    }

    /// Builds the message bytes: rendered headers, Message-ID and Date as lettre makes
    /// them (unless a header sets them), threading headers, and the bodies.
    fn message(
        &self,
        rendered: &RenderedEmail,
        group_key: &str,
    ) -> Result<(Envelope, Vec<u8>), NotifyError> {
        let permanent = |what: String| NotifyError::Permanent(what);
        let mut builder = Message::builder();
        for (name, value) in &rendered.headers {
            let header_name = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| permanent(format!("invalid header name {name:?}")))?;
            // lettre encodes CR, LF and non-ASCII text as RFC 2047 words, so a rendered
            // value cannot inject headers.
            builder = builder.raw_header(HeaderValue::new(header_name, value.clone()));
        }
        if rendered.header("Message-Id").is_none() {
            builder = builder.message_id(None);
        }
        if self.config.threading.enabled {
            let date = if self.config.threading.thread_by_date == "daily" {
                chrono::Local::now().format("%Y-%m-%d").to_string()
            } else {
                String::new()
            };
            let root = format!("<alert-{:016x}-{date}@sightline>", fnv1a(group_key));
            builder = builder.references(root.clone()).in_reply_to(root);
        }
        let from = parse_address(&rendered.envelope_from)?;
        let to = rendered
            .envelope_to
            .iter()
            .map(|a| parse_address(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope =
            Envelope::new(Some(from), to).map_err(|e| permanent(format!("build envelope: {e}")))?;
        builder = builder.envelope(envelope.clone());

        let plain = |text: &str| SinglePart::plain(text.to_owned());
        let html = |text: &str| SinglePart::html(text.to_owned());
        let message = match (&rendered.text, &rendered.html) {
            // RFC 2046 §5.1.4: the preferred alternative (HTML) comes last.
            (Some(text), Some(body)) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(plain(text))
                    .singlepart(html(body)),
            ),
            (Some(text), None) => builder.singlepart(plain(text)),
            (None, Some(body)) => builder.singlepart(html(body)),
            (None, None) => builder.singlepart(plain("")),
        }
        .map_err(|e| match e {
            lettre::error::Error::MissingFrom => {
                permanent("build message: the From header is not a mail address".to_owned())
            }
            other => permanent(format!("build message: {other}")),
        })?;
        Ok((envelope, message.formatted()))
    }

    /// Opens a connection, secures and authenticates it as configured, and sends.
    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Result<(), NotifyError> {
        let implicit_tls = self
            .config
            .force_implicit_tls
            .unwrap_or(self.smarthost.port == 465);
        let require_tls = self.config.require_tls.unwrap_or(true);
        // Go's net/smtp says `localhost` when no hello name is configured.
        let hello = ClientId::Domain(if self.config.hello.is_empty() {
            "localhost".to_owned()
        } else {
            self.config.hello.clone()
        });
        let tls = if implicit_tls || require_tls {
            Some(self.tls_parameters().await?)
        } else {
            None
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (self.smarthost.host.as_str(), self.smarthost.port),
            Some(self.timeout),
            &hello,
            if implicit_tls { tls.clone() } else { None },
            None,
        )
        .await
        .map_err(|e| smtp_error(&format!("connect to {}", self.smarthost), e))?;

        if require_tls && !implicit_tls {
            if !connection.can_starttls() {
                connection.abort().await;
                return Err(NotifyError::Retryable(format!(
                    "'require_tls' is true (default) but {} does not advertise the STARTTLS extension",
                    self.smarthost
                )));
            }
            let tls = tls.ok_or_else(|| {
                NotifyError::Permanent("no TLS parameters for STARTTLS".to_owned())
            })?;
            // A failed upgrade leaves lettre without a stream, where its `abort` (QUIT)
            // panics: the connection is dropped instead.
            connection
                .starttls(tls, &hello)
                .await
                .map_err(|e| smtp_error("send STARTTLS command", e))?;
        }
        let result = self
            .session(&mut connection, &hello, envelope, message)
            .await;
        if result.is_ok() {
            // The message is accepted: a failed QUIT changes nothing.
            let _ = connection.quit().await;
        } else {
            connection.abort().await;
        }
        result
    }

    /// Authenticates if configured, then sends the envelope and the message.
    async fn session(
        &self,
        connection: &mut AsyncSmtpConnection,
        hello: &ClientId,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), NotifyError> {
        if !self.config.auth_username.is_empty() {
            self.authenticate(connection, hello).await?;
        }
        connection
            .send(envelope, message)
            .await
            .map_err(|e| smtp_error("send message", e))?;
        Ok(())
    }

    /// Authenticates with the first of the server's advertised mechanisms we can serve,
    /// in the server's order, as Alertmanager does; no `AUTH` advertised means none.
    async fn authenticate(
        &self,
        connection: &mut AsyncSmtpConnection,
        hello: &ClientId,
    ) -> Result<(), NotifyError> {
        // lettre keeps only the mechanisms it implements, in no order; ask again for the
        // list as the server gives it.
        let ehlo = connection
            .command(format!("EHLO {hello}\r\n"))
            .await
            .map_err(|e| smtp_error("send EHLO command", e))?;
        let mechanisms = advertised_auth_mechanisms(&ehlo);
        if mechanisms.is_empty() {
            return Ok(());
        }
        let username = &self.config.auth_username;
        let mut problems = Vec::new();
        let mut retryable = false;
        for mechanism in &mechanisms {
            match mechanism.as_str() {
                "CRAM-MD5" => match self.auth_secret().await {
                    Err(e) => {
                        retryable = true;
                        problems.push(e);
                    }
                    Ok(secret) if secret.is_empty() => {
                        problems.push("missing secret for CRAM-MD5 auth mechanism".to_owned());
                    }
                    Ok(secret) => return auth_cram_md5(connection, username, &secret).await,
                },
                "PLAIN" | "LOGIN" => match self.auth_password().await {
                    Err(e) => {
                        retryable = true;
                        problems.push(e);
                    }
                    Ok(password) if password.is_empty() => {
                        problems.push(format!("missing password for {mechanism} auth mechanism"));
                    }
                    Ok(password) => {
                        if !connection.is_encrypted() && !is_loopback_host(&self.smarthost.host) {
                            return Err(NotifyError::Permanent(format!(
                                "refusing to send {mechanism} credentials over an unencrypted \
                                 connection to {}: set require_tls or use implicit TLS",
                                self.smarthost
                            )));
                        }
                        return if mechanism == "PLAIN" {
                            auth_plain(connection, &self.config.auth_identity, username, &password)
                                .await
                        } else {
                            auth_login(connection, username, &password).await
                        };
                    }
                },
                other => problems.push(format!("unknown auth mechanism: {other}")),
            }
        }
        let message = format!("find auth mechanism: {}", problems.join("; "));
        Err(if retryable {
            NotifyError::Retryable(message)
        } else {
            NotifyError::Permanent(message)
        })
    }

    /// The password, read from its file at every delivery so a rotated file is seen.
    async fn auth_password(&self) -> Result<String, String> {
        if self.config.auth_password_file.is_empty() {
            return Ok(self.config.auth_password.expose().to_owned());
        }
        tokio::fs::read_to_string(&self.config.auth_password_file)
            .await
            .map(|p| p.trim().to_owned())
            .map_err(|e| format!("could not read {}: {e}", self.config.auth_password_file))
    }

    /// The CRAM-MD5 secret; unlike the password, its file is used as it is (Alertmanager).
    async fn auth_secret(&self) -> Result<String, String> {
        if self.config.auth_secret_file.is_empty() {
            return Ok(self.config.auth_secret.expose().to_owned());
        }
        tokio::fs::read_to_string(&self.config.auth_secret_file)
            .await
            .map_err(|e| format!("could not read {}: {e}", self.config.auth_secret_file))
    }

    /// Builds the TLS parameters from `tls_config`, reading its files now so renewed
    /// certificates are picked up. A file that cannot be read or parsed is permanent.
    async fn tls_parameters(&self) -> Result<TlsParameters, NotifyError> {
        let permanent = |what: String| NotifyError::Permanent(format!("tls_config: {what}"));
        let tls = self.config.tls_config.clone().unwrap_or_default();
        let read = |inline: String, file: String| async move {
            if !file.is_empty() {
                tokio::fs::read(&file)
                    .await
                    .map(Some)
                    .map_err(|e| format!("could not read {file}: {e}"))
            } else if !inline.is_empty() {
                Ok(Some(inline.into_bytes()))
            } else {
                Ok(None)
            }
        };
        let domain = if tls.server_name.is_empty() {
            self.smarthost.host.clone()
        } else {
            tls.server_name.clone()
        };
        let mut builder = TlsParameters::builder(domain);
        if let Some(ca) = read(tls.ca.clone(), tls.ca_file.clone())
            .await
            .map_err(permanent)?
        {
            // lettre accepts a text without any certificate, which would then trust
            // nothing; Go refuses it ("unable to use specified CA cert").
            if first_pem_certificate(&ca).is_none() {
                return Err(permanent("no CERTIFICATE block in the CA".to_owned()));
            }
            // As Go: a configured CA replaces the default roots rather than adding to them.
            let certificate = Certificate::from_pem(&ca)
                .map_err(|e| permanent(format!("invalid CA certificate: {e}")))?;
            builder = builder
                .certificate_store(CertificateStore::None)
                .add_root_certificate(certificate);
        }
        let cert = read(tls.cert.clone(), tls.cert_file.clone())
            .await
            .map_err(permanent)?;
        let key = read(tls.key.expose().to_owned(), tls.key_file.clone())
            .await
            .map_err(permanent)?;
        if let (Some(cert), Some(key)) = (cert, key) {
            // lettre's rustls backend takes the certificate bytes as DER despite the
            // method's name, so the PEM is decoded here.
            let der = first_pem_certificate(&cert).ok_or_else(|| {
                permanent("no CERTIFICATE block in the client certificate".into())
            })?;
            let identity = Identity::from_pem(&der, &key)
                .map_err(|e| permanent(format!("invalid client certificate or key: {e}")))?;
            builder = builder.identify_with(identity);
        }
        if tls.insecure_skip_verify {
            builder = builder
                .dangerous_accept_invalid_certs(true)
                .dangerous_accept_invalid_hostnames(true);
        }
        if tls.min_version == Some(TlsProtocolVersion::Tls13) {
            builder = builder.set_min_tls_version(TlsVersion::Tlsv13);
        } else {
            // rustls speaks TLS 1.2 and 1.3 only: TLS10 and TLS11 floors become TLS 1.2.
            builder = builder.set_min_tls_version(TlsVersion::Tlsv12);
        }
        builder
            .build_rustls()
            .map_err(|e| permanent(format!("build TLS parameters: {e}")))
    }
}

/// Parses a rendered address list (`a@b, Name <c@d>`) into bare addresses.
fn parse_mailboxes(field: &str, text: &str) -> Result<Vec<String>, NotifyError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mailboxes: Mailboxes = text
        .parse()
        .map_err(|e| NotifyError::Permanent(format!("parse '{field}' addresses {text:?}: {e}")))?;
    Ok(mailboxes.into_iter().map(|m| m.email.to_string()).collect())
}

fn parse_address(text: &str) -> Result<Address, NotifyError> {
    text.parse()
        .map_err(|e| NotifyError::Permanent(format!("invalid address {text:?}: {e}")))
}

/// Returns the AUTH mechanisms an EHLO reply advertises, upper case, in the server's
/// order (`AUTH PLAIN LOGIN`, or the older `AUTH=PLAIN LOGIN`).
fn advertised_auth_mechanisms(ehlo: &Response) -> Vec<String> {
    for line in ehlo.message() {
        let upper = line.trim().to_ascii_uppercase();
        let rest = upper
            .strip_prefix("AUTH ")
            .or_else(|| upper.strip_prefix("AUTH="));
        if let Some(rest) = rest {
            return rest.split_whitespace().map(str::to_owned).collect();
        }
    }
    Vec::new()
}

/// Tells whether a host is this machine, where credentials may travel unencrypted (Go's
/// `smtp.PlainAuth` allows `localhost`, `127.0.0.1` and `::1`).
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Expects the final reply of an AUTH exchange.
fn expect_authenticated(mechanism: &str, reply: Response) -> Result<(), NotifyError> {
    if reply.has_code(235) {
        Ok(())
    } else {
        Err(NotifyError::Permanent(format!(
            "{mechanism} auth: unexpected reply {} {}",
            reply.code(),
            reply.first_line().unwrap_or_default()
        )))
    }
}

/// RFC 4616: one message, `authzid NUL authcid NUL password`.
async fn auth_plain(
    connection: &mut AsyncSmtpConnection,
    identity: &str,
    username: &str,
    password: &str,
) -> Result<(), NotifyError> {
    let response = BASE64.encode(format!("{identity}\0{username}\0{password}"));
    let reply = connection
        .command(format!("AUTH PLAIN {response}\r\n"))
        .await
        .map_err(|e| smtp_error("PLAIN auth", e))?;
    expect_authenticated("PLAIN", reply)
}

/// The LOGIN mechanism: the server asks `Username:` then `Password:`.
async fn auth_login(
    connection: &mut AsyncSmtpConnection,
    username: &str,
    password: &str,
) -> Result<(), NotifyError> {
    let mut reply = connection
        .command("AUTH LOGIN\r\n")
        .await
        .map_err(|e| smtp_error("LOGIN auth", e))?;
    // Two challenges are expected; a few more are tolerated, never an endless loop.
    for _ in 0..4 {
        if !reply.has_code(334) {
            break;
        }
        let challenge = decode_challenge(&reply)?;
        let answer = match challenge.to_ascii_lowercase().as_str() {
            "username:" => username,
            "password:" => password,
            _ => {
                return Err(NotifyError::Permanent(format!(
                    "LOGIN auth: unexpected server challenge {challenge:?}"
                )));
            }
        };
        reply = connection
            .command(format!("{}\r\n", BASE64.encode(answer)))
            .await
            .map_err(|e| smtp_error("LOGIN auth", e))?;
    }
    expect_authenticated("LOGIN", reply)
}

/// RFC 2195: answer the challenge with `username hex(HMAC-MD5(secret, challenge))`.
async fn auth_cram_md5(
    connection: &mut AsyncSmtpConnection,
    username: &str,
    secret: &str,
) -> Result<(), NotifyError> {
    let reply = connection
        .command("AUTH CRAM-MD5\r\n")
        .await
        .map_err(|e| smtp_error("CRAM-MD5 auth", e))?;
    if !reply.has_code(334) {
        return expect_authenticated("CRAM-MD5", reply);
    }
    let challenge = decode_challenge(&reply)?;
    let answer = cram_md5_response(username, secret, challenge.as_bytes());
    let reply = connection
        .command(format!("{}\r\n", BASE64.encode(answer)))
        .await
        .map_err(|e| smtp_error("CRAM-MD5 auth", e))?;
    expect_authenticated("CRAM-MD5", reply)
}

fn decode_challenge(reply: &Response) -> Result<String, NotifyError> {
    let text = reply.first_line().unwrap_or_default().trim();
    BASE64
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            NotifyError::Permanent(format!("auth: server challenge {text:?} is not base64"))
        })
}

fn cram_md5_response(username: &str, secret: &str, challenge: &[u8]) -> String {
    let digest = hmac_md5(secret.as_bytes(), challenge);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{username} {hex}")
}

/// Returns the DER bytes of the first `CERTIFICATE` block of a PEM text.
fn first_pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin)? + begin.len();
    let end = text[start..].find("-----END CERTIFICATE-----")? + start;
    let body: String = text[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64.decode(body).ok()
}

/// FNV-1a, 64 bits: a stable key for a mail thread's root Message-ID.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// HMAC (RFC 2104) over MD5, for CRAM-MD5 only (MD5 is broken as a hash, but CRAM-MD5
/// is defined on it).
fn hmac_md5(key: &[u8], message: &[u8]) -> [u8; 16] {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<md5::Md5>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Stdio;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::alertmanager::data::{AlertData, go_zero_time};

    // ---- fixtures ------------------------------------------------------------------

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn alert(status: &str, instance: &str, annotations: &[(&str, &str)]) -> AlertData {
        AlertData {
            status: status.to_owned(),
            labels: map(&[
                ("alertname", "HighLatency"),
                ("env", "prod"),
                ("service", "api"),
                ("instance", instance),
            ]),
            annotations: map(annotations),
            starts_at: "2026-03-01T10:00:00Z".parse().unwrap(),
            ends_at: if status == "resolved" {
                "2026-03-01T10:30:00Z".parse().unwrap()
            } else {
                go_zero_time()
            },
            generator_url: format!("http://prometheus:9090/graph?g0.expr=up&i={instance}"),
            fingerprint: "00000000000000ab".to_owned(),
        }
    }

    /// One firing and one resolved alert of a group keyed on `alertname`.
    fn sample_data() -> Data {
        Data::new(
            "oncall",
            map(&[("alertname", "HighLatency")]),
            vec![
                alert(
                    "firing",
                    "10.0.0.1:9090",
                    &[
                        ("summary", "p99 latency above 2s"),
                        ("description", "Latency is <b>high</b> & rising"),
                    ],
                ),
                alert(
                    "resolved",
                    "10.0.0.2:9090",
                    &[("summary", "p99 latency back to normal")],
                ),
            ],
            "http://sightline.example:7070",
        )
    }

    fn parse(yaml: &str) -> Result<EmailConfig, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    fn resolved(yaml: &str) -> EmailConfig {
        let mut config = parse(yaml).unwrap();
        config.resolve(&SmtpGlobal::default(), "team-api").unwrap();
        config
    }

    fn notifier(yaml: &str) -> EmailNotifier {
        EmailNotifier::new(resolved(yaml), &load_templates(&[]).unwrap()).unwrap()
    }

    const MINIMAL: &str =
        "to: team@example.org\nfrom: alerts@example.org\nsmarthost: 'smtp.example.org:587'\n";

    /// A configuration file reduced to what the email integration reads.
    #[derive(Deserialize)]
    struct ConfigFile {
        #[serde(default)]
        global: Option<SmtpGlobal>,
        #[serde(default)]
        receivers: Vec<ReceiverFile>,
    }

    #[derive(Deserialize)]
    struct ReceiverFile {
        name: String,
        #[serde(default)]
        email_configs: Vec<EmailConfig>,
    }

    fn resolve_file(yaml: &str) -> Result<Vec<EmailConfig>, String> {
        let file: ConfigFile = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        let global = file.global.unwrap_or_default();
        global.validate()?;
        let mut configs = Vec::new();
        for receiver in file.receivers {
            for mut config in receiver.email_configs {
                config.resolve(&global, &receiver.name)?;
                configs.push(config);
            }
        }
        Ok(configs)
    }

    /// A directory under the system's temporary directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "sightline-email-{tag}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    // ---- configuration -------------------------------------------------------------

    #[test]
    fn every_email_config_field_parses() {
        let config = parse(
            r#"
send_resolved: true
to: 'team@example.org, Oncall <oncall@example.org>'
from: 'Sightline <alerts@example.org>'
hello: sightline.example.org
smarthost: 'smtp.example.org:587'
auth_username: alerts
auth_password: hunter2
auth_secret: s3cret
auth_identity: ops
headers:
  X-Team: '{{ .CommonLabels.service }}'
html: '<b>{{ .Status }}</b>'
text: '{{ .Status }}'
require_tls: false
tls_config:
  ca_file: /etc/ssl/ca.pem
  server_name: smtp.internal
  insecure_skip_verify: true
  min_version: TLS13
force_implicit_tls: false
threading:
  enabled: true
  thread_by_date: daily
"#,
        )
        .unwrap();
        assert!(config.send_resolved);
        assert_eq!(config.to, "team@example.org, Oncall <oncall@example.org>");
        assert_eq!(config.from, "Sightline <alerts@example.org>");
        assert_eq!(config.hello, "sightline.example.org");
        assert_eq!(
            config.smarthost,
            Some(HostPort {
                host: "smtp.example.org".to_owned(),
                port: 587
            })
        );
        assert_eq!(config.auth_username, "alerts");
        assert_eq!(config.auth_password.expose(), "hunter2");
        assert_eq!(config.auth_secret.expose(), "s3cret");
        assert_eq!(config.auth_identity, "ops");
        assert_eq!(config.headers["X-Team"], "{{ .CommonLabels.service }}");
        assert_eq!(config.html, "<b>{{ .Status }}</b>");
        assert_eq!(config.text, "{{ .Status }}");
        assert_eq!(config.require_tls, Some(false));
        let tls = config.tls_config.clone().unwrap();
        assert_eq!(tls.ca_file, "/etc/ssl/ca.pem");
        assert_eq!(tls.server_name, "smtp.internal");
        assert!(tls.insecure_skip_verify);
        assert_eq!(tls.min_version, Some(TlsProtocolVersion::Tls13));
        assert_eq!(config.force_implicit_tls, Some(false));
        assert!(config.threading.enabled);
        assert_eq!(config.threading.thread_by_date, "daily");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("s3cret"),
            "{debug}"
        );
    }

    #[test]
    fn unknown_email_config_fields_are_refused() {
        let err = parse("to: a@example.org\nsmtp_from: b@example.org\n").unwrap_err();
        assert!(err.contains("unknown field `smtp_from`"), "{err}");
        let err = parse("to: a@example.org\ntls_config:\n  ca_filez: x\n").unwrap_err();
        assert!(err.contains("unknown field `ca_filez`"), "{err}");
    }

    #[test]
    fn defaults_are_alertmanagers() {
        let config = parse("to: a@example.org\n").unwrap();
        assert!(!config.send_resolved);
        assert_eq!(config.html, r#"{{ template "email.default.html" . }}"#);
        assert_eq!(config.text, "");
        assert_eq!(config.require_tls, None);
        assert!(config.headers.is_empty());
        assert_eq!(
            config,
            EmailConfig {
                to: "a@example.org".to_owned(),
                ..EmailConfig::default()
            }
        );

        let global: SmtpGlobal = serde_yaml_ng::from_str("smtp_from: a@example.org\n").unwrap();
        assert_eq!(global.smtp_hello, "localhost");
        assert!(global.smtp_require_tls);
        // Go's YAML reads any scalar into a string field; so do we.
        let config = parse("to: a@example.org\nauth_password: 123456\nhello: 42\n").unwrap();
        assert_eq!(config.auth_password.expose(), "123456");
        assert_eq!(config.hello, "42");

        let global: SmtpGlobal = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(global, SmtpGlobal::default());

        // Subject, To and From headers default to the subject template, `to` and `from`.
        let rendered = notifier(MINIMAL).render(&sample_data()).unwrap();
        assert_eq!(rendered.header("To"), Some("team@example.org"));
        assert_eq!(rendered.header("From"), Some("alerts@example.org"));
        assert_eq!(
            rendered.header("Subject"),
            Some("[FIRING:1] HighLatency (prod api)")
        );
        assert!(rendered.text.is_none());
        assert!(rendered.html.is_some());
    }

    #[test]
    fn smarthost_is_host_and_port() {
        let host = |yaml: &str| parse(yaml).map(|c| c.smarthost);
        assert_eq!(
            host("smarthost: '[::1]:2525'\n").unwrap(),
            Some(HostPort {
                host: "::1".to_owned(),
                port: 2525
            })
        );
        assert_eq!(host("smarthost: ''\n").unwrap(), None);
        for (text, error) in [
            ("smtp.example.org", "missing port in address"),
            ("smtp.example.org:", "port cannot be empty"),
            ("smtp.example.org:smtp", "is not a number"),
            ("::1:25", "too many colons"),
        ] {
            let err = host(&format!("smarthost: '{text}'\n")).unwrap_err();
            assert!(err.contains(error), "{text}: {err}");
        }
        assert_eq!(HostPort::parse("[::1]:25").unwrap().to_string(), "[::1]:25");
    }

    #[test]
    fn to_is_required_and_errors_name_the_receiver() {
        let mut config = parse("from: a@example.org\nsmarthost: 'h:25'\n").unwrap();
        let err = config
            .resolve(&SmtpGlobal::default(), "team-X-mails")
            .unwrap_err();
        assert!(err.contains("\"team-X-mails\""), "{err}");
        assert!(err.contains("`to`"), "{err}");
    }

    #[test]
    fn smarthost_and_from_come_from_the_entry_or_global() {
        let global = SmtpGlobal {
            smtp_from: "global@example.org".to_owned(),
            smtp_smarthost: Some(HostPort::parse("global.example.org:25").unwrap()),
            ..SmtpGlobal::default()
        };
        let mut config = parse("to: a@example.org\n").unwrap();
        config.resolve(&global, "r").unwrap();
        assert_eq!(config.from, "global@example.org");
        assert_eq!(config.smarthost, global.smtp_smarthost);

        let mut config =
            parse("to: a@example.org\nfrom: own@example.org\nsmarthost: 'own:587'\n").unwrap();
        config.resolve(&global, "r").unwrap();
        assert_eq!(config.from, "own@example.org");
        assert_eq!(config.smarthost.unwrap().host, "own");

        let err = parse("to: a@example.org\nfrom: a@example.org\n")
            .unwrap()
            .resolve(&SmtpGlobal::default(), "r")
            .unwrap_err();
        assert!(
            err.contains("smtp_smarthost") && err.contains("\"r\""),
            "{err}"
        );
        let err = parse("to: a@example.org\nsmarthost: 'h:25'\n")
            .unwrap()
            .resolve(&SmtpGlobal::default(), "r")
            .unwrap_err();
        assert!(err.contains("smtp_from") && err.contains("\"r\""), "{err}");
    }

    #[test]
    fn unset_entry_fields_take_the_global_values_and_set_ones_win() {
        let global = SmtpGlobal {
            smtp_hello: "global-hello".to_owned(),
            smtp_auth_username: "global-user".to_owned(),
            smtp_auth_password: Secret::new("global-password"),
            smtp_auth_secret: Secret::new("global-secret"),
            smtp_auth_identity: "global-identity".to_owned(),
            smtp_require_tls: false,
            smtp_tls_config: Some(TlsConfig {
                server_name: "global-name".to_owned(),
                ..TlsConfig::default()
            }),
            smtp_force_implicit_tls: Some(true),
            ..SmtpGlobal::default()
        };
        let mut config = parse(MINIMAL).unwrap();
        config.resolve(&global, "r").unwrap();
        assert_eq!(config.hello, "global-hello");
        assert_eq!(config.auth_username, "global-user");
        assert_eq!(config.auth_password.expose(), "global-password");
        assert_eq!(config.auth_secret.expose(), "global-secret");
        assert_eq!(config.auth_identity, "global-identity");
        assert_eq!(config.require_tls, Some(false));
        assert_eq!(config.tls_config.unwrap().server_name, "global-name");
        assert_eq!(config.force_implicit_tls, Some(true));

        let mut config = parse(&format!(
            "{MINIMAL}hello: own\nauth_username: own\nauth_password_file: /run/own\n\
             require_tls: true\ntls_config: {{server_name: own}}\nforce_implicit_tls: false\n"
        ))
        .unwrap();
        config.resolve(&global, "r").unwrap();
        assert_eq!(config.hello, "own");
        assert_eq!(config.auth_username, "own");
        // The password comes with its file from one place: the entry's file, no password.
        assert_eq!(config.auth_password_file, "/run/own");
        assert!(config.auth_password.is_empty());
        assert_eq!(config.require_tls, Some(true));
        assert_eq!(config.tls_config.unwrap().server_name, "own");
        assert_eq!(config.force_implicit_tls, Some(false));
    }

    #[test]
    fn require_tls_defaults_to_true_and_hello_to_localhost() {
        let config = resolved(MINIMAL);
        assert_eq!(config.require_tls, Some(true));
        assert_eq!(config.hello, "localhost");
    }

    #[test]
    fn a_password_and_a_password_file_are_exclusive() {
        let err = parse(&format!(
            "{MINIMAL}auth_password: a\nauth_password_file: /run/b\n"
        ))
        .unwrap()
        .resolve(&SmtpGlobal::default(), "r")
        .unwrap_err();
        assert!(
            err.contains("auth_password and auth_password_file"),
            "{err}"
        );

        let err = parse(&format!(
            "{MINIMAL}auth_secret: a\nauth_secret_file: /run/b\n"
        ))
        .unwrap()
        .resolve(&SmtpGlobal::default(), "r")
        .unwrap_err();
        assert!(err.contains("auth_secret and auth_secret_file"), "{err}");

        let global = SmtpGlobal {
            smtp_auth_password: Secret::new("a"),
            smtp_auth_password_file: "/run/b".to_owned(),
            ..SmtpGlobal::default()
        };
        let err = global.validate().unwrap_err();
        assert!(
            err.contains("smtp_auth_password and smtp_auth_password_file"),
            "{err}"
        );
        let err = parse(MINIMAL).unwrap().resolve(&global, "r").unwrap_err();
        assert!(
            err.contains("\"r\"") && err.contains("smtp_auth_password_file"),
            "{err}"
        );
    }

    #[test]
    fn header_names_are_canonical_and_unique() {
        let config = resolved(&format!(
            "{MINIMAL}headers:\n  subject: s\n  x-team-NAME: t\n  message-id: m\n"
        ));
        let names: Vec<&str> = config.headers.keys().map(String::as_str).collect();
        assert_eq!(names, ["Message-Id", "Subject", "X-Team-Name"]);

        let err = parse(&format!("{MINIMAL}headers:\n  Subject: a\n  SUBJECT: b\n"))
            .unwrap()
            .resolve(&SmtpGlobal::default(), "r")
            .unwrap_err();
        assert!(err.contains("duplicate header \"Subject\""), "{err}");
        for bad in ["'Bad Name'", "'Bad:Name'", "''", "'Ünicode'"] {
            let err = parse(&format!("{MINIMAL}headers:\n  {bad}: v\n"))
                .unwrap()
                .resolve(&SmtpGlobal::default(), "r")
                .unwrap_err();
            assert!(err.contains("invalid header name"), "{bad}: {err}");
        }
    }

    #[test]
    fn threading_needs_a_valid_date_mode_and_no_custom_thread_headers() {
        resolved(&format!(
            "{MINIMAL}threading: {{enabled: true, thread_by_date: none}}\n"
        ));
        // Disabled threading is not checked, as in Alertmanager.
        resolved(&format!(
            "{MINIMAL}threading: {{enabled: false, thread_by_date: weekly}}\n"
        ));
        for (extra, error) in [
            ("threading: {enabled: true}\n", "thread_by_date"),
            (
                "threading: {enabled: true, thread_by_date: weekly}\n",
                "\"weekly\"",
            ),
            (
                "threading: {enabled: true, thread_by_date: daily}\nheaders: {references: x}\n",
                "References",
            ),
            (
                "threading: {enabled: true, thread_by_date: daily}\nheaders: {In-Reply-To: x}\n",
                "In-Reply-To",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{extra}"))
                .unwrap()
                .resolve(&SmtpGlobal::default(), "r")
                .unwrap_err();
            assert!(err.contains(error), "{extra}: {err}");
        }
    }

    #[test]
    fn tls_config_is_checked_as_prometheus_checks_it() {
        for (tls, error) in [
            ("{cert_file: /c.pem}", "needs its key"),
            ("{key_file: /k.pem}", "needs its certificate"),
            ("{ca: x, ca_file: /ca.pem}", "ca and ca_file"),
            ("{ca_ref: vault}", "ca_ref is not supported"),
        ] {
            let err = parse(&format!("{MINIMAL}tls_config: {tls}\n"))
                .unwrap()
                .resolve(&SmtpGlobal::default(), "r")
                .unwrap_err();
            assert!(err.contains(error), "{tls}: {err}");
        }
        resolved(&format!(
            "{MINIMAL}tls_config: {{cert_file: /c.pem, key_file: /k.pem, min_version: TLS10}}\n"
        ));
        let err = parse(&format!("{MINIMAL}tls_config: {{min_version: TLS99}}\n")).unwrap_err();
        assert!(err.contains("TLS99"), "{err}");
    }

    #[test]
    fn alertmanager_configuration_files_are_judged_the_same_way() {
        // The cases of Alertmanager's config/testdata, written out here.
        let both = "global:\n  smtp_smarthost: 'localhost:25'\n  smtp_from: 'am@example.org'\n  \
                    smtp_auth_username: am\n  smtp_auth_password: \"multiline\\nsecret\"\n  \
                    smtp_auth_password_file: /tmp/global\nreceivers:\n- name: mails\n  \
                    email_configs:\n  - to: one@example.org\n";
        let err = resolve_file(both).unwrap_err();
        assert!(err.contains("smtp_auth_password_file"), "{err}");

        let no_auth = "global:\n  smtp_smarthost: 'localhost:25'\n  smtp_from: 'am@example.org'\n  \
                       smtp_hello: host.example.org\nreceivers:\n- name: mails\n  \
                       email_configs:\n  - to: one@example.org\n";
        let configs = resolve_file(no_auth).unwrap();
        assert_eq!(configs[0].hello, "host.example.org");
        assert!(configs[0].auth_username.is_empty());

        let empty = "global:\n  smtp_smarthost: 'localhost:25'\n  smtp_from: 'am@example.org'\n  \
                     smtp_auth_username: ''\n  smtp_auth_password: ''\n  smtp_hello: ''\n  \
                     slack_api_url: 'https://slack.com/webhook'\nreceivers:\n- name: team-X\n  \
                     email_configs:\n  - to: 'team-X+alerts@example.org'\n";
        let configs = resolve_file(empty).unwrap();
        assert_eq!(configs[0].hello, "");
        assert_eq!(configs[0].require_tls, Some(true));

        let no_global = "receivers:\n- name: mails\n  email_configs:\n  - to: one@example.org\n";
        let err = resolve_file(no_global).unwrap_err();
        assert!(
            err.contains("\"mails\"") && err.contains("smtp_smarthost"),
            "{err}"
        );
    }

    #[test]
    fn alertmanagers_own_testdata_files_when_present() {
        let dir = Path::new("/work/shared/datasets/alerting/alertmanager/config/testdata");
        if !dir.is_dir() {
            eprintln!("skipped: {} is not here", dir.display());
            return;
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let err = resolve_file(&read("conf.smtp-both-password-and-file.yml")).unwrap_err();
        assert!(err.contains("smtp_auth_password_file"), "{err}");
        resolve_file(&read("conf.smtp-no-username-or-password.yml")).unwrap();
        resolve_file(&read("conf.empty-fields.yml")).unwrap();
        let good = resolve_file(&read("conf.good.yml")).unwrap();
        assert!(good.iter().all(|c| c.hello == "host.example.org"));
    }

    // ---- templates and rendering ---------------------------------------------------

    fn render_default(name: &str, data: &Data) -> String {
        load_templates(&[])
            .unwrap()
            .execute_template(name, &data.to_value())
            .unwrap()
    }

    #[test]
    fn the_subject_carries_the_status_count_and_the_group() {
        let data = sample_data();
        assert_eq!(
            render_default("email.default.subject", &data),
            "[FIRING:1] HighLatency (prod api)"
        );
        let mut all_resolved = data.clone();
        all_resolved.alerts.retain(|a| a.status == "resolved");
        let all_resolved = Data::new(
            "oncall",
            all_resolved.group_labels.clone(),
            all_resolved.alerts,
            "",
        );
        assert_eq!(
            render_default("__subject", &all_resolved),
            "[RESOLVED] HighLatency (prod 10.0.0.2:9090 api)"
        );
        // As Alertmanager: a space stays where the other common labels would be.
        let mut grouped_by_all = data.clone();
        grouped_by_all.group_labels = grouped_by_all.common_labels.clone();
        assert_eq!(
            render_default("__subject", &grouped_by_all),
            "[FIRING:1] HighLatency prod api "
        );
    }

    #[test]
    fn the_text_alert_list_has_alertmanagers_layout() {
        let data = sample_data();
        let mut template = load_templates(&[]).unwrap();
        template
            .add_parse("t", r#"{{ template "__text_alert_list" .Alerts.Firing }}"#)
            .unwrap();
        assert_eq!(
            template.execute_template("t", &data.to_value()).unwrap(),
            "Labels:\n - alertname = HighLatency\n - env = prod\n - instance = 10.0.0.1:9090\n \
             - service = api\nAnnotations:\n - description = Latency is <b>high</b> & rising\n \
             - summary = p99 latency above 2s\nSource: \
             http://prometheus:9090/graph?g0.expr=up&i=10.0.0.1:9090\n"
        );
        assert_eq!(render_default("__description", &data), "");
        assert_eq!(render_default("__alertmanager", &data), "Sightline");
        assert_eq!(
            render_default("__alertmanagerURL", &data),
            "http://sightline.example:7070/#/alerts?receiver=oncall"
        );
    }

    #[test]
    fn the_html_body_lists_firing_then_resolved_alerts_with_labels_and_annotations() {
        let html = notifier(MINIMAL)
            .render(&sample_data())
            .unwrap()
            .html
            .unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.trim_end().ends_with("</html>"), "{html}");
        let at = |needle: &str| {
            html.find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing from {html}"))
        };
        assert!(at(">Firing<") < at("10.0.0.1:9090"));
        assert!(at("10.0.0.1:9090") < at(">Resolved<"));
        assert!(at(">Resolved<") < at("10.0.0.2:9090"));
        for needle in [
            "[FIRING:1] HighLatency (prod api)",
            ">alertname<",
            ">HighLatency<",
            ">service<",
            ">api<",
            ">summary<",
            "p99 latency above 2s",
            "p99 latency back to normal",
            // Values are escaped as html/template escapes them.
            "Latency is &lt;b&gt;high&lt;/b&gt; &amp; rising",
            "href=\"http://prometheus:9090/graph?g0.expr=up&amp;i=10.0.0.1:9090\"",
            "href=\"http://sightline.example:7070/#/alerts?receiver=oncall\"",
            "Started 2026-03-01 10:00:00 UTC",
            "resolved 2026-03-01 10:30:00 UTC",
        ] {
            at(needle);
        }
        assert!(!html.contains("<b>high</b>"), "{html}");
        assert!(!html.contains("<no value>"), "{html}");
    }

    #[test]
    fn links_with_a_script_scheme_are_neutralised_in_html() {
        let mut data = sample_data();
        data.alerts[0].generator_url = "javascript:alert(1)".to_owned();
        let html = notifier(MINIMAL).render(&data).unwrap().html.unwrap();
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"#ZgotmplZ\""), "{html}");
        assert_eq!(filter_url("https://x/y"), "https://x/y");
        assert_eq!(filter_url("MAILTO:a@b"), "MAILTO:a@b");
        assert_eq!(filter_url("/relative?a=b:c"), "/relative?a=b:c");
        assert_eq!(filter_url("data:text/html,x"), "#ZgotmplZ");
    }

    #[test]
    fn the_text_body_is_optional_and_lists_the_alerts() {
        let rendered = notifier(&format!(
            "{MINIMAL}text: '{{{{ template \"email.default.text\" . }}}}'\n"
        ))
        .render(&sample_data())
        .unwrap();
        let text = rendered.text.unwrap();
        assert!(
            text.starts_with("[FIRING:1] HighLatency (prod api)\n"),
            "{text}"
        );
        let firing = text.find("Firing (1):").expect("firing section");
        let resolved = text.find("Resolved (1):").expect("resolved section");
        assert!(firing < text.find(" - instance = 10.0.0.1:9090").unwrap());
        assert!(resolved < text.find(" - instance = 10.0.0.2:9090").unwrap());
        assert!(firing < resolved);
        assert!(
            text.contains(" - description = Latency is <b>high</b> & rising"),
            "{text}"
        );
        assert!(
            text.contains(
                "View in Sightline: http://sightline.example:7070/#/alerts?receiver=oncall"
            )
        );
    }

    #[test]
    fn header_values_are_templates_and_missing_keys_print_nothing() {
        let rendered = notifier(&format!(
            "{MINIMAL}headers:\n  X-Team: '{{{{ .CommonLabels.service }}}}-{{{{ .CommonLabels.nope }}}}'\n  \
             Subject: '{{{{ .Status }}}}: {{{{ len .Alerts }}}}'\n"
        ))
        .render(&sample_data())
        .unwrap();
        assert_eq!(rendered.header("x-team"), Some("api-"));
        assert_eq!(rendered.header("Subject"), Some("firing: 2"));
    }

    #[test]
    fn to_may_hold_several_addresses_and_from_exactly_one() {
        let rendered = notifier(
            "to: 'Team <team@example.org>, oncall@example.org'\nfrom: 'Sightline <alerts@example.org>'\n\
             smarthost: 'h:25'\n",
        )
        .render(&sample_data())
        .unwrap();
        assert_eq!(
            rendered.envelope_to,
            ["team@example.org", "oncall@example.org"]
        );
        assert_eq!(rendered.envelope_from, "alerts@example.org");
        assert_eq!(
            rendered.header("To"),
            Some("Team <team@example.org>, oncall@example.org")
        );

        let err = notifier(
            "to: a@example.org\nfrom: 'a@example.org, b@example.org'\nsmarthost: 'h:25'\n",
        )
        .render(&sample_data())
        .unwrap_err();
        assert_eq!(
            err,
            NotifyError::Permanent("must be exactly one 'from' address (got: 2)".to_owned())
        );
        let err = notifier("to: 'not an address'\nfrom: a@example.org\nsmarthost: 'h:25'\n")
            .render(&sample_data())
            .unwrap_err();
        assert!(
            !err.is_retryable() && err.to_string().contains("'to'"),
            "{err}"
        );
    }

    #[test]
    fn template_errors_are_permanent_and_syntax_errors_fail_at_load() {
        let err = notifier(&format!("{MINIMAL}html: '{{{{ template \"nope\" . }}}}'\n"))
            .render(&sample_data())
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("execute html template"), "{err}");

        let err = EmailNotifier::new(
            resolved(&format!("{MINIMAL}headers: {{Subject: '{{{{ .Status '}}\n")),
            &load_templates(&[]).unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("headers.Subject"), "{err}");
        let unresolved = parse("to: a@example.org\n").unwrap();
        assert!(EmailNotifier::new(unresolved, &load_templates(&[]).unwrap()).is_err());
    }

    #[test]
    fn user_templates_replace_the_defaults_by_name() {
        let dir = TempDir::new("templates");
        dir.write(
            "a.tmpl",
            r#"{{ define "email.default.subject" }}custom {{ .Status }} {{ .CommonLabels.service }}{{ end }}"#,
        );
        dir.write("b.tmpl", r#"{{ define "extra" }}extra{{ end }}"#);
        dir.write(
            "ignored.txt",
            r#"{{ define "extra" }}not this one{{ end }}"#,
        );
        let templates =
            load_templates(&[dir.0.join("*.tmpl"), dir.0.join("nothing-matches-*.tmpl")]).unwrap();
        let value = sample_data().to_value();
        assert_eq!(
            templates
                .execute_template("email.default.subject", &value)
                .unwrap(),
            "custom firing api"
        );
        assert_eq!(
            templates.execute_template("extra", &value).unwrap(),
            "extra"
        );
        // Defaults that were not redefined stay.
        assert_eq!(
            templates.execute_template("__subject", &value).unwrap(),
            "[FIRING:1] HighLatency (prod api)"
        );

        let broken = dir.write("broken.tmpl", "{{ define \"x\" }}{{ .Oops ");
        let err = load_templates(std::slice::from_ref(&broken)).unwrap_err();
        assert!(err.contains("broken.tmpl"), "{err}");
        let err = load_templates(&[PathBuf::from("/tmp/[")]).unwrap_err();
        assert!(err.contains("invalid glob"), "{err}");
    }

    // ---- helpers -------------------------------------------------------------------

    #[test]
    fn hmac_md5_matches_rfc_2104() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_md5(&[0x0b; 16], b"Hi There")),
            "9294727a3638bb1c13f48ef8158bfc9d"
        );
    }

    #[test]
    fn cram_md5_answers_as_rfc_2195_shows() {
        assert_eq!(
            cram_md5_response(
                "tim",
                "tanstaaftanstaaf",
                b"<1896.697170952@postoffice.reston.mci.net>"
            ),
            "tim b913a602c7eda7a495b4e6e7334d3890"
        );
    }

    #[test]
    fn small_helpers() {
        assert_eq!(canonical_header_key("x-custom-HEADER"), "X-Custom-Header");
        assert_eq!(canonical_header_key("message-id"), "Message-Id");
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("::1"));
        assert!(!is_loopback_host("smtp.example.org"));
        assert!(!is_loopback_host("10.0.0.1"));
        let der = BASE64.encode([1u8, 2, 3, 250]);
        let pem = format!(
            "junk\n-----BEGIN CERTIFICATE-----\n{der}\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(
            first_pem_certificate(pem.as_bytes()),
            Some(vec![1, 2, 3, 250])
        );
        assert_eq!(first_pem_certificate(b"no pem"), None);
        assert_ne!(fnv1a("a"), fnv1a("b"));
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
        );
    }

    // ---- delivery ------------------------------------------------------------------

    /// What the in-process SMTP server answers.
    #[derive(Clone)]
    struct Script {
        /// EHLO keywords after the greeting line.
        extensions: Vec<&'static str>,
        mail_reply: &'static str,
        rcpt_reply: &'static str,
    }

    impl Default for Script {
        fn default() -> Self {
            Script {
                extensions: vec!["8BITMIME", "PIPELINING"],
                mail_reply: "250 2.1.0 ok",
                rcpt_reply: "250 2.1.5 ok",
            }
        }
    }

    /// What the in-process SMTP server saw on one connection.
    #[derive(Debug, Default)]
    struct Session {
        commands: Vec<String>,
        /// Decoded AUTH exchanges: PLAIN's single message, LOGIN's two, CRAM-MD5's answer.
        auth: Vec<String>,
        mail_from: String,
        rcpt_to: Vec<String>,
        data: String,
    }

    const CRAM_CHALLENGE: &str = "<1896.697170952@postoffice.reston.mci.net>";

    /// Starts an SMTP server speaking just enough of RFC 5321 for one connection on
    /// 127.0.0.1, returning its port and the session it will record.
    async fn fake_smtp(script: Script) -> (u16, tokio::task::JoinHandle<Session>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = tokio::spawn(async move {
            match listener.accept().await {
                Ok((stream, _)) => serve_smtp(stream, script).await,
                Err(_) => Session::default(),
            }
        });
        (port, handle)
    }

    async fn serve_smtp(stream: TcpStream, script: Script) -> Session {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut session = Session::default();
        let decode = |line: &str| {
            String::from_utf8(BASE64.decode(line.trim()).unwrap_or_default()).unwrap_or_default()
        };
        let _ = write.write_all(b"220 fake.test ESMTP ready\r\n").await;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            let command = line.trim_end().to_owned();
            session.commands.push(command.clone());
            let upper = command.to_ascii_uppercase();
            let mut ask = async |reader: &mut BufReader<_>, prompt: &str| {
                let _ = write
                    .write_all(format!("334 {prompt}\r\n").as_bytes())
                    .await;
                let mut answer = String::new();
                let _ = reader.read_line(&mut answer).await;
                answer
            };
            let reply: String = if upper.starts_with("EHLO") {
                let mut reply = String::new();
                let mut lines = vec!["fake.test greets you"];
                lines.extend(script.extensions.iter().copied());
                for (i, text) in lines.iter().enumerate() {
                    let separator = if i + 1 == lines.len() { ' ' } else { '-' };
                    reply.push_str(&format!("250{separator}{text}\r\n"));
                }
                reply.trim_end().to_owned()
            } else if let Some(message) = command.strip_prefix("AUTH PLAIN ") {
                session.auth.push(decode(message));
                "235 2.7.0 authenticated".to_owned()
            } else if upper == "AUTH LOGIN" {
                let user = ask(&mut reader, "VXNlcm5hbWU6").await;
                let password = ask(&mut reader, "UGFzc3dvcmQ6").await;
                session.auth.push(decode(&user));
                session.auth.push(decode(&password));
                "235 2.7.0 authenticated".to_owned()
            } else if upper == "AUTH CRAM-MD5" {
                let answer = ask(&mut reader, &BASE64.encode(CRAM_CHALLENGE)).await;
                session.auth.push(decode(&answer));
                "235 2.7.0 authenticated".to_owned()
            } else if upper.starts_with("MAIL FROM:") {
                session.mail_from = command[10..].to_owned();
                script.mail_reply.to_owned()
            } else if upper.starts_with("RCPT TO:") {
                session.rcpt_to.push(command[8..].to_owned());
                script.rcpt_reply.to_owned()
            } else if upper == "DATA" {
                let _ = write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
                let mut data = String::new();
                loop {
                    let mut data_line = String::new();
                    if reader.read_line(&mut data_line).await.unwrap_or(0) == 0
                        || data_line == ".\r\n"
                    {
                        break;
                    }
                    // RFC 5321 §4.5.2: a leading dot was doubled.
                    data.push_str(data_line.strip_prefix('.').unwrap_or(&data_line));
                }
                session.data = data;
                "250 2.0.0 queued".to_owned()
            } else if upper == "QUIT" {
                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                break;
            } else if upper == "RSET" || upper == "NOOP" {
                "250 2.0.0 ok".to_owned()
            } else {
                "502 5.5.2 not implemented".to_owned()
            };
            if write
                .write_all(format!("{reply}\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        session
    }

    async fn finished(handle: tokio::task::JoinHandle<Session>) -> Session {
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("the SMTP session ends")
            .expect("the SMTP server task does not panic")
    }

    fn local_notifier(port: u16, extra: &str) -> EmailNotifier {
        notifier(&format!(
            "to: 'team@example.org, Oncall <oncall@example.org>'\n\
             from: 'Sightline <alerts@example.org>'\nsmarthost: '127.0.0.1:{port}'\n{extra}"
        ))
        .with_timeout(Duration::from_secs(10))
    }

    /// Splits a message into unfolded headers and body; accepts CRLF or LF lines.
    fn split_message(raw: &str) -> (Vec<(String, String)>, String) {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.trim_start().to_owned()));
            }
        }
        (headers, body.to_owned())
    }

    fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded leaf parts of a message: content type and text.
    fn decoded_parts(raw: &str) -> Vec<(String, String)> {
        let (headers, body) = split_message(raw);
        let content_type = header_of(&headers, "Content-Type")
            .unwrap_or("text/plain")
            .to_owned();
        if content_type.starts_with("multipart/") {
            let boundary = content_type
                .split("boundary=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim_matches('"')
                .to_owned();
            return body
                .split(&format!("--{boundary}"))
                .skip(1)
                .filter(|part| !part.starts_with("--"))
                .flat_map(|part| decoded_parts(part.trim_start_matches('\n')))
                .collect();
        }
        let text = match header_of(&headers, "Content-Transfer-Encoding") {
            Some("base64") => {
                let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                String::from_utf8(BASE64.decode(compact).unwrap()).unwrap()
            }
            Some("quoted-printable") => decode_quoted_printable(&body),
            _ => body,
        };
        vec![(content_type, text)]
    }

    fn decode_quoted_printable(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 2;
                    continue;
                }
                if let Some(hex) = text.get(i + 1..i + 3)
                    && let Ok(byte) = u8::from_str_radix(hex, 16)
                {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    /// Checks a delivered message carries the sample data's subject, labels and
    /// annotations in an HTML body.
    fn assert_carries_the_sample(raw: &str) {
        let (headers, _) = split_message(raw);
        let subject = header_of(&headers, "Subject").expect("a Subject header");
        assert_eq!(subject.trim_end(), "[FIRING:1] HighLatency (prod api)");
        assert!(header_of(&headers, "Message-ID").is_some(), "{raw}");
        assert!(header_of(&headers, "Date").is_some(), "{raw}");
        assert_eq!(header_of(&headers, "MIME-Version"), Some("1.0"));
        let parts = decoded_parts(raw);
        let (content_type, html) = parts
            .iter()
            .find(|(t, _)| t.starts_with("text/html"))
            .unwrap_or_else(|| panic!("no HTML part in {raw}"));
        assert!(content_type.contains("charset=utf-8"), "{content_type}");
        for needle in [
            "HighLatency",
            "10.0.0.1:9090",
            "10.0.0.2:9090",
            "p99 latency above 2s",
            "p99 latency back to normal",
            "Latency is &lt;b&gt;high&lt;/b&gt; &amp; rising",
        ] {
            assert!(html.contains(needle), "{needle:?} missing from {html}");
        }
    }

    #[tokio::test]
    async fn a_notification_is_delivered_over_smtp() {
        let (port, server) = fake_smtp(Script::default()).await;
        local_notifier(port, "require_tls: false\nhello: sightline.test\n")
            .notify(&sample_data())
            .await
            .unwrap();
        let session = finished(server).await;
        assert_eq!(session.commands[0], "EHLO sightline.test");
        assert_eq!(session.mail_from, "<alerts@example.org>");
        assert_eq!(
            session.rcpt_to,
            ["<team@example.org>", "<oncall@example.org>"]
        );
        assert!(session.auth.is_empty());
        assert_carries_the_sample(&session.data);
        let (headers, _) = split_message(&session.data);
        assert_eq!(
            header_of(&headers, "To"),
            Some("team@example.org, Oncall <oncall@example.org>")
        );
        assert_eq!(
            header_of(&headers, "From"),
            Some("Sightline <alerts@example.org>")
        );
        assert_eq!(session.commands.last().map(String::as_str), Some("QUIT"));
    }

    #[tokio::test]
    async fn text_and_html_bodies_travel_as_multipart_alternative() {
        let (port, server) = fake_smtp(Script::default()).await;
        local_notifier(
            port,
            "require_tls: false\ntext: '{{ template \"email.default.text\" . }}'\n\
             headers: {X-Team: '{{ .CommonLabels.service }}'}\n\
             threading: {enabled: true, thread_by_date: none}\n",
        )
        .notify_group(&sample_data(), "{}:{alertname=\"HighLatency\"}")
        .await
        .unwrap();
        let session = finished(server).await;
        let (headers, _) = split_message(&session.data);
        assert!(
            header_of(&headers, "Content-Type")
                .unwrap()
                .starts_with("multipart/alternative"),
            "{}",
            session.data
        );
        assert_eq!(header_of(&headers, "X-Team"), Some("api"));
        let root = format!(
            "<alert-{:016x}-@sightline>",
            fnv1a("{}:{alertname=\"HighLatency\"}")
        );
        assert_eq!(header_of(&headers, "References"), Some(root.as_str()));
        assert_eq!(header_of(&headers, "In-Reply-To"), Some(root.as_str()));
        let parts = decoded_parts(&session.data);
        let types: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
        assert!(
            types[0].starts_with("text/plain") && types[1].starts_with("text/html"),
            "{types:?}"
        );
        assert!(
            parts[0].1.contains(" - summary = p99 latency above 2s"),
            "{}",
            parts[0].1
        );
        assert_carries_the_sample(&session.data);
    }

    #[tokio::test]
    async fn starttls_is_not_attempted_when_not_required_even_if_offered() {
        let script = Script {
            extensions: vec!["STARTTLS", "8BITMIME"],
            ..Script::default()
        };
        let (port, server) = fake_smtp(script).await;
        local_notifier(port, "require_tls: false\n")
            .notify(&sample_data())
            .await
            .unwrap();
        let session = finished(server).await;
        assert!(!session.commands.iter().any(|c| c == "STARTTLS"));
    }

    #[tokio::test]
    async fn required_tls_without_starttls_is_a_retryable_error() {
        let (port, server) = fake_smtp(Script::default()).await;
        let err = local_notifier(port, "")
            .notify(&sample_data())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("STARTTLS"), "{err}");
        let session = finished(server).await;
        assert!(session.mail_from.is_empty());
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable() {
        let port = free_port();
        let err = local_notifier(port, "require_tls: false\n")
            .notify(&sample_data())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_as_retryable() {
        // Bound but never accepting: the TCP handshake completes, no greeting comes.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = local_notifier(port, "require_tls: false\n")
            .with_timeout(Duration::from_millis(300))
            .notify(&sample_data())
            .await
            .unwrap_err();
        assert!(
            err.is_retryable() && err.to_string().contains("timed out"),
            "{err}"
        );
        drop(listener);
    }

    #[tokio::test]
    async fn permanent_replies_are_permanent_and_transient_ones_retryable() {
        let script = Script {
            rcpt_reply: "550 5.1.1 no such user",
            ..Script::default()
        };
        let (port, _server) = fake_smtp(script).await;
        let err = local_notifier(port, "require_tls: false\n")
            .notify(&sample_data())
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains("no such user"), "{err}");

        let script = Script {
            mail_reply: "451 4.3.0 try again later",
            ..Script::default()
        };
        let (port, _server) = fake_smtp(script).await;
        let err = local_notifier(port, "require_tls: false\n")
            .notify(&sample_data())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }

    #[tokio::test]
    async fn plain_auth_carries_the_identity_on_the_loopback_host() {
        let script = Script {
            extensions: vec!["AUTH PLAIN LOGIN", "8BITMIME"],
            ..Script::default()
        };
        let (port, server) = fake_smtp(script).await;
        local_notifier(
            port,
            "require_tls: false\nauth_username: alerts\nauth_password: hunter2\nauth_identity: ops\n",
        )
        .notify(&sample_data())
        .await
        .unwrap();
        let session = finished(server).await;
        assert_eq!(session.auth, ["ops\0alerts\0hunter2"]);
        assert!(!session.data.is_empty());
    }

    #[tokio::test]
    async fn login_auth_reads_the_password_file_in_the_servers_order() {
        let dir = TempDir::new("password");
        let file = dir.write("password", "  from-file\n");
        let script = Script {
            extensions: vec!["AUTH LOGIN PLAIN"],
            ..Script::default()
        };
        let (port, server) = fake_smtp(script).await;
        local_notifier(
            port,
            &format!(
                "require_tls: false\nauth_username: alerts\nauth_password_file: '{}'\n",
                file.display()
            ),
        )
        .notify(&sample_data())
        .await
        .unwrap();
        let session = finished(server).await;
        assert_eq!(session.auth, ["alerts", "from-file"]);
    }

    #[tokio::test]
    async fn cram_md5_uses_the_secret_and_no_auth_without_a_username() {
        let script = Script {
            extensions: vec!["AUTH CRAM-MD5 PLAIN"],
            ..Script::default()
        };
        let (port, server) = fake_smtp(script.clone()).await;
        local_notifier(
            port,
            "require_tls: false\nauth_username: tim\nauth_secret: tanstaaftanstaaf\n",
        )
        .notify(&sample_data())
        .await
        .unwrap();
        let session = finished(server).await;
        assert_eq!(session.auth, ["tim b913a602c7eda7a495b4e6e7334d3890"]);

        let (port, server) = fake_smtp(script.clone()).await;
        local_notifier(port, "require_tls: false\nauth_password: unused\n")
            .notify(&sample_data())
            .await
            .unwrap();
        assert!(finished(server).await.auth.is_empty());

        // A username with no credential for any offered mechanism cannot succeed.
        let (port, _server) = fake_smtp(script).await;
        let err = local_notifier(port, "require_tls: false\nauth_username: tim\n")
            .notify(&sample_data())
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert!(
            err.to_string().contains("missing secret for CRAM-MD5"),
            "{err}"
        );
    }

    // ---- a real SMTP server: aiosmtpd --------------------------------------------------

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// The Python with aiosmtpd: `$SIGHTLINE_PYTHON` or the shared test virtualenv.
    fn aiosmtpd_python() -> Option<PathBuf> {
        let python = std::env::var_os("SIGHTLINE_PYTHON")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".cache/sightline/test-venv/bin/python3"))
            })?;
        let importable = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        importable.then_some(python)
    }

    /// aiosmtpd with its default handler, which prints every message to stdout.
    struct Aiosmtpd {
        child: tokio::process::Child,
        port: u16,
        stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    }

    impl Aiosmtpd {
        async fn start(python: &Path, extra_args: &[&str]) -> Aiosmtpd {
            let port = free_port();
            let mut child = tokio::process::Command::new(python)
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(extra_args)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
            for _ in 0..200 {
                if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return Aiosmtpd {
                        child,
                        port,
                        stdout,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("aiosmtpd did not listen on 127.0.0.1:{port}");
        }

        /// The next message the server printed, headers and body.
        async fn next_message(&mut self) -> String {
            let mut message = String::new();
            let mut inside = false;
            loop {
                let line = tokio::time::timeout(Duration::from_secs(10), self.stdout.next_line())
                    .await
                    .expect("aiosmtpd prints the message")
                    .unwrap()
                    .expect("aiosmtpd is still running");
                if line.contains("MESSAGE FOLLOWS") {
                    inside = true;
                } else if line.contains("END MESSAGE") {
                    return message;
                } else if inside {
                    message.push_str(&line);
                    message.push('\n');
                }
            }
        }

        async fn stop(mut self) {
            let _ = self.child.kill().await;
        }
    }

    /// A CA and a certificate for 127.0.0.1 it signed, made with the openssl tool.
    fn make_certificates(dir: &TempDir) -> Option<(PathBuf, PathBuf, PathBuf)> {
        let run = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        dir.write(
            "server.ext",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
        );
        let ok = run(&[
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Sightline test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ][..],
        ]
        .concat())
            && run(&[
                &["req"][..],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ][..],
            ]
            .concat())
            && run(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ]);
        ok.then(|| {
            (
                dir.0.join("ca.pem"),
                dir.0.join("server.pem"),
                dir.0.join("server.key"),
            )
        })
    }

    #[tokio::test]
    async fn tls_parameters_load_a_ca_and_a_client_certificate_from_pem_files() {
        let dir = TempDir::new("client-cert");
        let Some((ca, cert, key)) = make_certificates(&dir) else {
            eprintln!("skipped: the openssl tool could not make test certificates");
            return;
        };
        let tls = format!(
            "tls_config: {{ca_file: '{}', cert_file: '{}', key_file: '{}'}}\n",
            ca.display(),
            cert.display(),
            key.display()
        );
        local_notifier(1, &tls).tls_parameters().await.unwrap();
        let inline = format!(
            "tls_config: {{ca: {:?}, cert: {:?}, key: {:?}}}\n",
            std::fs::read_to_string(&ca).unwrap(),
            std::fs::read_to_string(&cert).unwrap(),
            std::fs::read_to_string(&key).unwrap()
        );
        local_notifier(1, &inline).tls_parameters().await.unwrap();

        let missing = "tls_config: {ca_file: /nonexistent/ca.pem}\n";
        let err = local_notifier(1, missing)
            .tls_parameters()
            .await
            .err()
            .expect("a CA file that does not exist is an error");
        assert!(
            !err.is_retryable() && err.to_string().contains("/nonexistent/ca.pem"),
            "{err}"
        );
        let not_pem = format!(
            "tls_config: {{ca_file: '{}'}}\n",
            dir.write("junk.pem", "junk").display()
        );
        assert!(local_notifier(1, &not_pem).tls_parameters().await.is_err());
    }

    #[tokio::test]
    async fn aiosmtpd_receives_a_notification() {
        let Some(python) = aiosmtpd_python() else {
            eprintln!(
                "skipped: no Python with aiosmtpd ($SIGHTLINE_PYTHON or ~/.cache/sightline/test-venv)"
            );
            return;
        };
        let mut server = Aiosmtpd::start(&python, &[]).await;
        local_notifier(server.port, "require_tls: false\n")
            .notify(&sample_data())
            .await
            .unwrap();
        let message = server.next_message().await;
        assert_carries_the_sample(&message);
        server.stop().await;
    }

    #[tokio::test]
    async fn aiosmtpd_over_starttls_and_implicit_tls() {
        let Some(python) = aiosmtpd_python() else {
            eprintln!(
                "skipped: no Python with aiosmtpd ($SIGHTLINE_PYTHON or ~/.cache/sightline/test-venv)"
            );
            return;
        };
        let dir = TempDir::new("tls");
        let Some((ca, cert, key)) = make_certificates(&dir) else {
            eprintln!("skipped: the openssl tool could not make test certificates");
            return;
        };
        let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
        let tls = format!("tls_config: {{ca_file: '{}'}}\n", ca.display());

        // STARTTLS: aiosmtpd refuses MAIL before it, so delivery proves the upgrade.
        let mut server = Aiosmtpd::start(&python, &["--tlscert", cert, "--tlskey", key]).await;
        local_notifier(server.port, &format!("require_tls: true\n{tls}"))
            .notify(&sample_data())
            .await
            .unwrap();
        assert_carries_the_sample(&server.next_message().await);
        // Without our CA the certificate is not trusted: retryable, as Alertmanager.
        let err = local_notifier(server.port, "require_tls: true\n")
            .notify(&sample_data())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        server.stop().await;

        // Implicit TLS (SMTPS), forced since the port is not 465.
        let mut server = Aiosmtpd::start(&python, &["--smtpscert", cert, "--smtpskey", key]).await;
        local_notifier(server.port, &format!("force_implicit_tls: true\n{tls}"))
            .notify(&sample_data())
            .await
            .unwrap();
        assert_carries_the_sample(&server.next_message().await);
        server.stop().await;
    }
}
