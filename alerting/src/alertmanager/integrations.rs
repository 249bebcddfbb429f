//! Receiver integrations Sightline does not deliver to (Slack, PagerDuty, OpsGenie, …),
//! checked for structure as Alertmanager 0.34 checks them, and the `global:` keys that
//! configure them.
//!
//! Sightline notifies by email and webhook only, yet the Alertmanager configurations people
//! already run name other integrations. Such a configuration is accepted with a warning (the
//! integration is not delivered), but only when Alertmanager itself would load it, so that
//! `sightline alertmanager check-config` and `amtool check-config` give the same verdict.
//! This module therefore holds, per integration, the fields Alertmanager knows and their
//! types, the secrets that may be given inline or as a file but not both, the values that
//! must be present in the entry or come from `global:`, and the conflicts Alertmanager
//! refuses. It owns every `global:` key except `resolve_timeout`, `http_config` and
//! `smtp_*`, and every integration except `email_configs` and `webhook_configs`: those are
//! typed by the configuration module, which hands the rest to this one.
//!
//! The rules are tables: a `Shape` per structure (its fields, exclusive pairs, required
//! fields and an optional extra rule) and an `Integration` per `<kind>_configs` key (its
//! shape, and what it reads from `global:`). Values are read as Go's `yaml.v2` reads them
//! into Alertmanager's structures: a number or boolean is accepted where a string is
//! expected, an explicit null leaves a field unset, and a pointer field counts as set as soon
//! as it is present.

use serde_yaml_ng::{Mapping, Value};

use self::Ty::*;

/// The `<kind>_configs` keys Sightline delivers to.
pub const DELIVERED: [&str; 2] = ["email_configs", "webhook_configs"];

/// Every receiver integration key of Alertmanager 0.34 (its `config.Receiver`).
const RECEIVER_INTEGRATIONS: [&str; 18] = [
    "discord_configs",
    "email_configs",
    "incidentio_configs",
    "jira_configs",
    "mattermost_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "opsgenie_configs",
    "pagerduty_configs",
    "pushover_configs",
    "rocketchat_configs",
    "slack_configs",
    "sns_configs",
    "telegram_configs",
    "victorops_configs",
    "webex_configs",
    "webhook_configs",
    "wechat_configs",
];

/// Where Slack sends when an app token is used and no `app_url` is configured; a global
/// `slack_api_url` equal to it may accompany a global app token (an older workaround).
const DEFAULT_SLACK_APP_URL: &str = "https://slack.com/api/chat.postMessage";

/// Whether `key` is a receiver integration key of Alertmanager 0.34 (`slack_configs`, …,
/// including the two delivered ones).
pub fn is_receiver_integration(key: &str) -> bool {
    RECEIVER_INTEGRATIONS.contains(&key)
}

/// Checks the `global:` keys this module owns (all but `resolve_timeout`, `http_config` and
/// `smtp_*`, which are skipped if present): unknown keys are refused, values have the right
/// type, a secret and its `_file` variant are not both set, and a Slack app token is not
/// combined with a Slack API URL. Errors read "global: <field>: <reason>" or
/// "global: unknown field <field>".
pub fn check_global(other: &Mapping) -> Result<(), String> {
    check_global_keys(other).map_err(|fault| format!("global: {}", fault.render()))
}

/// Checks one entry of `<kind>_configs` (kind like "slack_configs") of receiver `receiver`,
/// with the whole `global:` mapping for defaults: unknown fields refused, values of the
/// right type (nested structures included), required values present in the entry or in
/// global, a secret and its `_file` variant not both set (in the entry, and in global), and
/// the conflicts Alertmanager checks (e.g. Slack's `update_message` needs the app token, not
/// a webhook URL). Entries of the delivered kinds pass (the configuration module types
/// them); an unknown kind is refused. Errors read
/// `receiver "<name>": <kind>: <field>: <reason>`.
pub fn check_entry(
    receiver: &str,
    kind: &str,
    entry: &Value,
    global: &Mapping,
) -> Result<(), String> {
    let at = format!("receiver {receiver:?}: {kind}");
    if DELIVERED.contains(&kind) {
        return Ok(());
    }
    let Some(integration) = INTEGRATIONS.iter().find(|i| i.kind == kind) else {
        return Err(format!(
            "{at}: not a receiver integration of Alertmanager 0.34"
        ));
    };
    integration
        .check(entry, global)
        .map_err(|fault| format!("{at}: {}", fault.render()))
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

/// What is wrong, and where (a dotted path such as `http_config.tls_config.cert`).
#[derive(Debug)]
enum Fault {
    Unknown(String),
    Bad {
        field: String,
        reason: String,
    },
    /// A fault of the whole entry or mapping, which no field names.
    Whole(String),
}

impl Fault {
    fn bad(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Fault::Bad {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn render(&self) -> String {
        match self {
            Fault::Unknown(field) => format!("unknown field {field}"),
            Fault::Bad { field, reason } => format!("{field}: {reason}"),
            Fault::Whole(reason) => reason.clone(),
        }
    }
}

type Checked = Result<(), Fault>;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn missing(group: &[&str]) -> String {
    match group {
        [_] => "missing (required)".to_string(),
        _ => format!("missing: one of {} must be set", group.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

/// The type of a field, as far as a configuration check can tell.
#[derive(Clone, Copy)]
enum Ty {
    /// A string; a number or boolean is taken as its text, as Go's yaml.v2 does.
    Str,
    /// A secret held behind a pointer: set as soon as it is present, even when empty.
    SecretPtr,
    Bool,
    Int,
    /// An `http`/`https` URL with a host (Alertmanager's `URL`).
    Url,
    /// A `Url` that may also be the redaction placeholder `<secret>`.
    SecretUrl,
    /// A URL in the loose sense of Go's `url.Parse` (proxies).
    AnyUrl,
    /// A Go `time.Duration`: `1m30s`, or a bare integer of nanoseconds.
    GoDuration,
    /// A Go duration read from its text only (Pushover's `retry`, `expire`, `ttl`).
    TextDuration,
    /// A Prometheus duration (`1d12h`).
    PromDuration,
    TlsVersion,
    StrList,
    StrMap,
    AnyMap,
    Struct(&'static Shape),
    StructList(&'static Shape),
    /// Jira's `summary`/`description`: a template string or `{template, enable_update}`.
    JiraField,
    /// Jira's `labels`: a list of strings or `{values, enable_update}`.
    JiraLabels,
    /// `http_headers`: header name to `{values, secrets, files}`.
    Headers,
    /// `proxy_connect_header`: header name to a list of values.
    ProxyHeader,
}

/// A structure: its known fields, the pairs of which at most one may be set, the groups of
/// which one must be set, and a rule the tables cannot say.
struct Shape {
    fields: &'static [(&'static str, Ty)],
    exclusive: &'static [(&'static str, &'static str)],
    one_of: &'static [&'static [&'static str]],
    check: Option<fn(&Mapping, &str) -> Checked>,
}

/// A value an integration needs, from one of its own fields or else from one of the global
/// keys that serve as its default.
struct Need {
    entry: &'static [&'static str],
    global: &'static [&'static str],
}

/// One `<kind>_configs` key of a receiver.
struct Integration {
    kind: &'static str,
    shape: &'static Shape,
    /// Whether a null entry (`- ` alone) reads as an empty entry; Alertmanager refuses it for
    /// the other integrations ("missing … config").
    null_is_empty: bool,
    /// The global pairs this integration reads, checked again so the entry's error names them.
    global_exclusive: &'static [(&'static str, &'static str)],
    /// URL fields defaulted from global: (entry field, global key, whether Alertmanager has a
    /// built-in default). A global key set to null removes the default.
    url_defaults: &'static [(&'static str, &'static str, bool)],
    needs: &'static [Need],
    /// A rule over the entry and global together that the tables cannot say (Slack's tokens).
    extra: Option<fn(&Mapping, &Mapping) -> Checked>,
}

/// The `global:` keys this module owns and their types.
static GLOBAL_KEYS: &[(&str, Ty)] = &[
    ("jira_api_url", Url),
    ("slack_api_url", SecretUrl),
    ("slack_api_url_file", Str),
    ("slack_app_token", Str),
    ("slack_app_token_file", Str),
    ("slack_app_url", Url),
    ("pagerduty_url", Url),
    ("opsgenie_api_url", Url),
    ("opsgenie_api_key", Str),
    ("opsgenie_api_key_file", Str),
    ("wechat_api_url", Url),
    ("wechat_api_secret", Str),
    ("wechat_api_secret_file", Str),
    ("wechat_api_corp_id", Str),
    ("victorops_api_url", Url),
    ("victorops_api_key", Str),
    ("victorops_api_key_file", Str),
    ("telegram_api_url", Url),
    ("telegram_bot_token", Str),
    ("telegram_bot_token_file", Str),
    ("webex_api_url", Url),
    ("rocketchat_api_url", Url),
    ("rocketchat_token", SecretPtr),
    ("rocketchat_token_file", Str),
    ("rocketchat_token_id", SecretPtr),
    ("rocketchat_token_id_file", Str),
    ("mattermost_webhook_url", SecretUrl),
    ("mattermost_webhook_url_file", Str),
];

/// Global secrets given inline and as a file, in the order Alertmanager checks them (the
/// Slack token/URL combination comes right after the Slack pairs).
static GLOBAL_EXCLUSIVE: &[(&str, &str)] = &[
    ("slack_app_token", "slack_app_token_file"),
    ("slack_api_url", "slack_api_url_file"),
    ("opsgenie_api_key", "opsgenie_api_key_file"),
    ("victorops_api_key", "victorops_api_key_file"),
    ("telegram_bot_token", "telegram_bot_token_file"),
    ("rocketchat_token", "rocketchat_token_file"),
    ("rocketchat_token_id", "rocketchat_token_id_file"),
    ("wechat_api_secret", "wechat_api_secret_file"),
    ("mattermost_webhook_url", "mattermost_webhook_url_file"),
];

/// Whether the configuration module owns a `global:` key.
fn owned_by_config(key: &str) -> bool {
    key == "resolve_timeout" || key == "http_config" || key.starts_with("smtp_")
}

fn global_ty(key: &str) -> Option<Ty> {
    GLOBAL_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|&(_, ty)| ty)
}

// prometheus/common's HTTP client configuration, which every integration takes as
// `http_config`.

static TLS: Shape = Shape {
    fields: &[
        ("ca", Str),
        ("cert", Str),
        ("key", Str),
        ("ca_file", Str),
        ("cert_file", Str),
        ("key_file", Str),
        ("ca_ref", Str),
        ("cert_ref", Str),
        ("key_ref", Str),
        ("server_name", Str),
        ("insecure_skip_verify", Bool),
        ("min_version", TlsVersion),
        ("max_version", TlsVersion),
        ("next_protos", StrList),
    ],
    exclusive: &[
        ("ca", "ca_file"),
        ("ca", "ca_ref"),
        ("ca_file", "ca_ref"),
        ("cert", "cert_file"),
        ("cert", "cert_ref"),
        ("cert_file", "cert_ref"),
        ("key", "key_file"),
        ("key", "key_ref"),
        ("key_file", "key_ref"),
    ],
    one_of: &[],
    check: Some(check_tls),
};

static BASIC_AUTH: Shape = Shape {
    fields: &[
        ("username", Str),
        ("username_file", Str),
        ("username_ref", Str),
        ("password", Str),
        ("password_file", Str),
        ("password_ref", Str),
    ],
    exclusive: &[
        ("username", "username_file"),
        ("username", "username_ref"),
        ("username_file", "username_ref"),
        ("password", "password_file"),
        ("password", "password_ref"),
        ("password_file", "password_ref"),
    ],
    one_of: &[],
    check: None,
};

static AUTHORIZATION: Shape = Shape {
    fields: &[
        ("type", Str),
        ("credentials", Str),
        ("credentials_file", Str),
        ("credentials_ref", Str),
    ],
    exclusive: &[
        ("credentials", "credentials_file"),
        ("credentials", "credentials_ref"),
        ("credentials_file", "credentials_ref"),
    ],
    one_of: &[],
    check: Some(check_authorization),
};

static OAUTH2: Shape = Shape {
    fields: &[
        ("client_id", Str),
        ("client_secret", Str),
        ("client_secret_file", Str),
        ("client_secret_ref", Str),
        ("client_certificate_key_id", Str),
        ("client_certificate_key", Str),
        ("client_certificate_key_file", Str),
        ("client_certificate_key_ref", Str),
        ("grant_type", Str),
        ("signature_algorithm", Str),
        ("iss", Str),
        ("audience", Str),
        ("claims", AnyMap),
        ("scopes", StrList),
        ("token_url", Str),
        ("endpoint_params", StrMap),
        ("tls_config", Struct(&TLS)),
        ("proxy_url", AnyUrl),
        ("no_proxy", Str),
        ("proxy_from_environment", Bool),
        ("proxy_connect_header", ProxyHeader),
    ],
    exclusive: &[
        ("client_secret", "client_secret_file"),
        ("client_secret", "client_secret_ref"),
        ("client_secret_file", "client_secret_ref"),
    ],
    one_of: &[&["client_id"], &["token_url"]],
    check: Some(check_proxy),
};

static HEADER: Shape = Shape {
    fields: &[
        ("values", StrList),
        ("secrets", StrList),
        ("files", StrList),
    ],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static HTTP: Shape = Shape {
    fields: &[
        ("basic_auth", Struct(&BASIC_AUTH)),
        ("authorization", Struct(&AUTHORIZATION)),
        ("oauth2", Struct(&OAUTH2)),
        ("bearer_token", Str),
        ("bearer_token_file", Str),
        ("tls_config", Struct(&TLS)),
        ("follow_redirects", Bool),
        ("enable_http2", Bool),
        ("proxy_url", AnyUrl),
        ("no_proxy", Str),
        ("proxy_from_environment", Bool),
        ("proxy_connect_header", ProxyHeader),
        ("http_headers", Headers),
    ],
    exclusive: &[("bearer_token", "bearer_token_file")],
    one_of: &[],
    check: Some(check_http),
};

// The integrations, with their sub-structures.

static DISCORD: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("webhook_url", SecretUrl),
        ("webhook_url_file", Str),
        ("content", Str),
        ("title", Str),
        ("message", Str),
        ("username", Str),
        ("avatar_url", Str),
    ],
    exclusive: &[("webhook_url", "webhook_url_file")],
    one_of: &[&["webhook_url", "webhook_url_file"]],
    check: None,
};

static INCIDENTIO: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("url", Url),
        ("url_file", Str),
        ("alert_source_token", Str),
        ("alert_source_token_file", Str),
        ("max_alerts", Int),
        ("timeout", GoDuration),
    ],
    exclusive: &[
        ("url", "url_file"),
        ("alert_source_token", "alert_source_token_file"),
    ],
    one_of: &[&["url", "url_file"]],
    check: Some(check_incidentio),
};

static JIRA_FIELD: Shape = Shape {
    fields: &[("template", Str), ("enable_update", Bool)],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static JIRA_LABELS: Shape = Shape {
    fields: &[("values", StrList), ("enable_update", Bool)],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static JIRA: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_url", Url),
        ("api_type", Str),
        ("project", Str),
        ("summary", JiraField),
        ("description", JiraField),
        ("labels", JiraLabels),
        ("priority", Str),
        ("issue_type", Str),
        ("reopen_transition", Str),
        ("resolve_transition", Str),
        ("wont_fix_resolution", Str),
        ("reopen_duration", PromDuration),
        ("fields", AnyMap),
    ],
    exclusive: &[],
    one_of: &[&["project"], &["issue_type"]],
    check: Some(check_jira),
};

static MATTERMOST_FIELD: Shape = Shape {
    fields: &[("title", Str), ("value", Str), ("short", Bool)],
    exclusive: &[],
    one_of: &[&["title"], &["value"]],
    check: None,
};

static MATTERMOST_ATTACHMENT: Shape = Shape {
    fields: &[
        ("fallback", Str),
        ("color", Str),
        ("pretext", Str),
        ("text", Str),
        ("author_name", Str),
        ("author_link", Str),
        ("author_icon", Str),
        ("title", Str),
        ("title_link", Str),
        ("fields", StructList(&MATTERMOST_FIELD)),
        ("thumb_url", Str),
        ("footer", Str),
        ("footer_icon", Str),
        ("image_url", Str),
    ],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static MATTERMOST_PROPS: Shape = Shape {
    fields: &[("card", Str)],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static MATTERMOST_PRIORITY: Shape = Shape {
    fields: &[
        ("priority", Str),
        ("requested_ack", Bool),
        ("persistent_notifications", Bool),
    ],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static MATTERMOST: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("webhook_url", SecretUrl),
        ("webhook_url_file", Str),
        ("channel", Str),
        ("username", Str),
        ("text", Str),
        ("fallback", Str),
        ("color", Str),
        ("pretext", Str),
        ("author_name", Str),
        ("author_link", Str),
        ("author_icon", Str),
        ("title", Str),
        ("title_link", Str),
        ("fields", StructList(&MATTERMOST_FIELD)),
        ("thumb_url", Str),
        ("footer", Str),
        ("footer_icon", Str),
        ("image_url", Str),
        ("icon_url", Str),
        ("icon_emoji", Str),
        ("attachments", StructList(&MATTERMOST_ATTACHMENT)),
        ("type", Str),
        ("props", Struct(&MATTERMOST_PROPS)),
        ("priority", Struct(&MATTERMOST_PRIORITY)),
    ],
    exclusive: &[("webhook_url", "webhook_url_file")],
    one_of: &[],
    check: None,
};

static MSTEAMS: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("webhook_url", SecretUrl),
        ("webhook_url_file", Str),
        ("title", Str),
        ("summary", Str),
        ("text", Str),
    ],
    exclusive: &[("webhook_url", "webhook_url_file")],
    one_of: &[&["webhook_url", "webhook_url_file"]],
    check: None,
};

static MSTEAMSV2: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("webhook_url", SecretUrl),
        ("webhook_url_file", Str),
        ("title", Str),
        ("text", Str),
    ],
    exclusive: &[("webhook_url", "webhook_url_file")],
    one_of: &[&["webhook_url", "webhook_url_file"]],
    check: None,
};

static OPSGENIE_RESPONDER: Shape = Shape {
    fields: &[("id", Str), ("name", Str), ("username", Str), ("type", Str)],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static OPSGENIE: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_key", Str),
        ("api_key_file", Str),
        ("api_url", Url),
        ("message", Str),
        ("description", Str),
        ("source", Str),
        ("details", StrMap),
        ("entity", Str),
        ("responders", StructList(&OPSGENIE_RESPONDER)),
        ("actions", Str),
        ("tags", Str),
        ("note", Str),
        ("priority", Str),
        ("update_alerts", Bool),
    ],
    exclusive: &[("api_key", "api_key_file")],
    one_of: &[],
    check: Some(check_opsgenie),
};

static PAGERDUTY_IMAGE: Shape = Shape {
    fields: &[("src", Str), ("alt", Str), ("href", Str)],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static PAGERDUTY_LINK: Shape = Shape {
    fields: &[("href", Str), ("text", Str)],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static PAGERDUTY: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("service_key", Str),
        ("service_key_file", Str),
        ("routing_key", Str),
        ("routing_key_file", Str),
        ("url", Url),
        ("client", Str),
        ("client_url", Str),
        ("description", Str),
        ("details", AnyMap),
        ("images", StructList(&PAGERDUTY_IMAGE)),
        ("links", StructList(&PAGERDUTY_LINK)),
        ("source", Str),
        ("severity", Str),
        ("class", Str),
        ("component", Str),
        ("group", Str),
        ("timeout", GoDuration),
    ],
    exclusive: &[
        ("routing_key", "routing_key_file"),
        ("service_key", "service_key_file"),
    ],
    one_of: &[&[
        "routing_key",
        "service_key",
        "routing_key_file",
        "service_key_file",
    ]],
    check: None,
};

static PUSHOVER: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("user_key", Str),
        ("user_key_file", Str),
        ("token", Str),
        ("token_file", Str),
        ("title", Str),
        ("message", Str),
        ("url", Str),
        ("url_title", Str),
        ("device", Str),
        ("sound", Str),
        ("priority", Str),
        ("retry", TextDuration),
        ("expire", TextDuration),
        ("ttl", TextDuration),
        ("html", Bool),
        ("monospace", Bool),
    ],
    exclusive: &[("user_key", "user_key_file"), ("token", "token_file")],
    one_of: &[&["user_key", "user_key_file"], &["token", "token_file"]],
    check: Some(check_pushover),
};

// Rocket.Chat's attachment structures carry no YAML tags, so yaml.v2 names their fields
// after the Go fields, lower-cased whole (`imageurl`, not `image_url`).

static ROCKETCHAT_FIELD: Shape = Shape {
    fields: &[("short", Bool), ("title", Str), ("value", Str)],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static ROCKETCHAT_ACTION: Shape = Shape {
    fields: &[
        ("type", Str),
        ("text", Str),
        ("url", Str),
        ("imageurl", Str),
        ("iswebview", Bool),
        ("webviewheightratio", Str),
        ("msg", Str),
        ("msginchatwindow", Bool),
        ("msgprocessingtype", Str),
    ],
    exclusive: &[],
    one_of: &[],
    check: None,
};

static ROCKETCHAT: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_url", Url),
        ("token_id", SecretPtr),
        ("token_id_file", Str),
        ("token", SecretPtr),
        ("token_file", Str),
        ("channel", Str),
        ("color", Str),
        ("title", Str),
        ("title_link", Str),
        ("text", Str),
        ("fields", StructList(&ROCKETCHAT_FIELD)),
        ("short_fields", Bool),
        ("emoji", Str),
        ("icon_url", Str),
        ("image_url", Str),
        ("thumb_url", Str),
        ("link_names", Bool),
        ("actions", StructList(&ROCKETCHAT_ACTION)),
    ],
    exclusive: &[("token", "token_file"), ("token_id", "token_id_file")],
    one_of: &[],
    check: None,
};

static SLACK_CONFIRM: Shape = Shape {
    fields: &[
        ("text", Str),
        ("title", Str),
        ("ok_text", Str),
        ("dismiss_text", Str),
    ],
    exclusive: &[],
    one_of: &[&["text"]],
    check: None,
};

static SLACK_ACTION: Shape = Shape {
    fields: &[
        ("type", Str),
        ("text", Str),
        ("url", Str),
        ("style", Str),
        ("name", Str),
        ("value", Str),
        ("confirm", Struct(&SLACK_CONFIRM)),
    ],
    exclusive: &[],
    one_of: &[&["type"], &["text"], &["url", "name"]],
    check: None,
};

static SLACK_FIELD: Shape = Shape {
    fields: &[("title", Str), ("value", Str), ("short", Bool)],
    exclusive: &[],
    one_of: &[&["title"], &["value"]],
    check: None,
};

static SLACK: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_url", SecretUrl),
        ("api_url_file", Str),
        ("app_token", Str),
        ("app_token_file", Str),
        ("app_url", Url),
        ("channel", Str),
        ("username", Str),
        ("color", Str),
        ("title", Str),
        ("title_link", Str),
        ("pretext", Str),
        ("text", Str),
        ("message_text", Str),
        ("fields", StructList(&SLACK_FIELD)),
        ("short_fields", Bool),
        ("footer", Str),
        ("fallback", Str),
        ("callback_id", Str),
        ("icon_emoji", Str),
        ("icon_url", Str),
        ("image_url", Str),
        ("thumb_url", Str),
        ("link_names", Bool),
        ("mrkdwn_in", StrList),
        ("actions", StructList(&SLACK_ACTION)),
        ("update_message", Bool),
        ("post_updates_to_thread", Bool),
        ("timeout", GoDuration),
    ],
    exclusive: &[("api_url", "api_url_file"), ("app_token", "app_token_file")],
    one_of: &[],
    check: Some(check_slack),
};

static SIGV4: Shape = Shape {
    fields: &[
        ("region", Str),
        ("access_key", Str),
        ("secret_key", Str),
        ("profile", Str),
        ("role_arn", Str),
        ("external_id", Str),
        ("use_fips_sts_endpoint", Bool),
    ],
    exclusive: &[],
    one_of: &[],
    check: Some(check_sigv4),
};

static SNS: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_url", Str),
        ("sigv4", Struct(&SIGV4)),
        ("topic_arn", Str),
        ("phone_number", Str),
        ("target_arn", Str),
        ("subject", Str),
        ("message", Str),
        ("attributes", StrMap),
        ("use_aws_http_client", Bool),
    ],
    exclusive: &[],
    one_of: &[],
    check: Some(check_sns),
};

static TELEGRAM: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_url", Url),
        ("bot_token", Str),
        ("bot_token_file", Str),
        ("chat_id", Int),
        ("chat_id_file", Str),
        ("message_thread_id", Int),
        ("message", Str),
        ("disable_notifications", Bool),
        ("parse_mode", Str),
        ("timeout", GoDuration),
    ],
    exclusive: &[("bot_token", "bot_token_file")],
    one_of: &[],
    check: Some(check_telegram),
};

static VICTOROPS: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_key", Str),
        ("api_key_file", Str),
        ("api_url", Url),
        ("routing_key", Str),
        ("message_type", Str),
        ("state_message", Str),
        ("entity_display_name", Str),
        ("monitoring_tool", Str),
        ("custom_fields", StrMap),
    ],
    exclusive: &[("api_key", "api_key_file")],
    one_of: &[&["routing_key"]],
    check: Some(check_victorops),
};

static WEBEX: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_url", Url),
        ("message", Str),
        ("room_id", Str),
    ],
    exclusive: &[],
    one_of: &[&["room_id"]],
    check: Some(check_webex),
};

static WECHAT: Shape = Shape {
    fields: &[
        ("send_resolved", Bool),
        ("http_config", Struct(&HTTP)),
        ("api_secret", Str),
        ("api_secret_file", Str),
        ("corp_id", Str),
        ("message", Str),
        ("api_url", Url),
        ("to_user", Str),
        ("to_party", Str),
        ("to_tag", Str),
        ("agent_id", Str),
        ("message_type", Str),
    ],
    exclusive: &[("api_secret", "api_secret_file")],
    one_of: &[],
    check: Some(check_wechat),
};

static INTEGRATIONS: &[Integration] = &[
    Integration {
        kind: "discord_configs",
        shape: &DISCORD,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "incidentio_configs",
        shape: &INCIDENTIO,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "jira_configs",
        shape: &JIRA,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[("api_url", "jira_api_url", false)],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "mattermost_configs",
        shape: &MATTERMOST,
        null_is_empty: false,
        global_exclusive: &[("mattermost_webhook_url", "mattermost_webhook_url_file")],
        url_defaults: &[],
        needs: &[Need {
            entry: &["webhook_url", "webhook_url_file"],
            global: &["mattermost_webhook_url", "mattermost_webhook_url_file"],
        }],
        extra: None,
    },
    Integration {
        kind: "msteams_configs",
        shape: &MSTEAMS,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "msteamsv2_configs",
        shape: &MSTEAMSV2,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "opsgenie_configs",
        shape: &OPSGENIE,
        null_is_empty: true,
        global_exclusive: &[("opsgenie_api_key", "opsgenie_api_key_file")],
        url_defaults: &[("api_url", "opsgenie_api_url", true)],
        needs: &[Need {
            entry: &["api_key", "api_key_file"],
            global: &["opsgenie_api_key", "opsgenie_api_key_file"],
        }],
        extra: None,
    },
    Integration {
        kind: "pagerduty_configs",
        shape: &PAGERDUTY,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[("url", "pagerduty_url", true)],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "pushover_configs",
        shape: &PUSHOVER,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "rocketchat_configs",
        shape: &ROCKETCHAT,
        null_is_empty: true,
        global_exclusive: &[
            ("rocketchat_token", "rocketchat_token_file"),
            ("rocketchat_token_id", "rocketchat_token_id_file"),
        ],
        url_defaults: &[],
        needs: &[
            Need {
                entry: &["token_id", "token_id_file"],
                global: &["rocketchat_token_id", "rocketchat_token_id_file"],
            },
            Need {
                entry: &["token", "token_file"],
                global: &["rocketchat_token", "rocketchat_token_file"],
            },
        ],
        extra: None,
    },
    Integration {
        kind: "slack_configs",
        shape: &SLACK,
        null_is_empty: true,
        global_exclusive: &[
            ("slack_app_token", "slack_app_token_file"),
            ("slack_api_url", "slack_api_url_file"),
        ],
        url_defaults: &[("app_url", "slack_app_url", true)],
        needs: &[],
        extra: Some(check_slack_global),
    },
    Integration {
        kind: "sns_configs",
        shape: &SNS,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "telegram_configs",
        shape: &TELEGRAM,
        null_is_empty: false,
        global_exclusive: &[("telegram_bot_token", "telegram_bot_token_file")],
        url_defaults: &[],
        needs: &[Need {
            entry: &["bot_token", "bot_token_file"],
            global: &["telegram_bot_token", "telegram_bot_token_file"],
        }],
        extra: None,
    },
    Integration {
        kind: "victorops_configs",
        shape: &VICTOROPS,
        null_is_empty: false,
        global_exclusive: &[("victorops_api_key", "victorops_api_key_file")],
        url_defaults: &[("api_url", "victorops_api_url", true)],
        needs: &[Need {
            entry: &["api_key", "api_key_file"],
            global: &["victorops_api_key", "victorops_api_key_file"],
        }],
        extra: None,
    },
    Integration {
        kind: "webex_configs",
        shape: &WEBEX,
        null_is_empty: false,
        global_exclusive: &[],
        url_defaults: &[("api_url", "webex_api_url", true)],
        needs: &[],
        extra: None,
    },
    Integration {
        kind: "wechat_configs",
        shape: &WECHAT,
        null_is_empty: true,
        global_exclusive: &[("wechat_api_secret", "wechat_api_secret_file")],
        url_defaults: &[("api_url", "wechat_api_url", true)],
        needs: &[
            Need {
                entry: &["api_secret", "api_secret_file"],
                global: &["wechat_api_secret", "wechat_api_secret_file"],
            },
            Need {
                entry: &["corp_id"],
                global: &["wechat_api_corp_id"],
            },
        ],
        extra: None,
    },
];

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

impl Integration {
    /// Checks an entry in Alertmanager's order: the entry's own structure (what its
    /// `UnmarshalYAML` refuses), then the global pairs, then what global must supply.
    fn check(&self, entry: &Value, global: &Mapping) -> Checked {
        let empty = Mapping::new();
        let fields = match untag(entry) {
            Value::Mapping(m) => m,
            Value::Null if self.null_is_empty => &empty,
            Value::Null => {
                return Err(Fault::Whole(
                    "an empty entry; Alertmanager refuses it".to_string(),
                ));
            }
            _ => {
                return Err(Fault::Whole(
                    "an entry must be a mapping of fields".to_string(),
                ));
            }
        };
        check_shape(fields, self.shape, "")?;
        for &(a, b) in self.global_exclusive {
            if global_set(global, a) && global_set(global, b) {
                return Err(Fault::bad(
                    format!("global {a}"),
                    format!("at most one of {a} & {b} may be set"),
                ));
            }
        }
        for &(field, key, has_default) in self.url_defaults {
            let from_global = match global.get(key).map(untag) {
                None => has_default,
                Some(Value::Null) => false,
                Some(_) => true,
            };
            if !is_set(fields, field, Url) && !from_global {
                return Err(Fault::bad(
                    field,
                    format!("missing: set it here or as {key} in global"),
                ));
            }
        }
        for need in self.needs {
            let here = need
                .entry
                .iter()
                .any(|f| is_set(fields, f, ty_of(self.shape, f)));
            let there = need.global.iter().any(|k| global_set(global, k));
            if !here && !there {
                return Err(Fault::bad(
                    need.entry[0],
                    format!(
                        "missing: set {} here, or {} in global",
                        need.entry.join(" or "),
                        need.global.join(" or ")
                    ),
                ));
            }
        }
        match self.extra {
            Some(extra) => extra(fields, global),
            None => Ok(()),
        }
    }
}

fn check_global_keys(global: &Mapping) -> Checked {
    for (k, v) in global {
        let key = key_text(k)?;
        if owned_by_config(&key) {
            continue;
        }
        let Some(ty) = global_ty(&key) else {
            return Err(Fault::Unknown(key));
        };
        check_value(v, ty, &key)?;
    }
    for &(a, b) in GLOBAL_EXCLUSIVE {
        if global_set(global, a) && global_set(global, b) {
            return Err(Fault::bad(
                a,
                format!("at most one of {a} & {b} may be set"),
            ));
        }
        if b == "slack_api_url_file" {
            check_global_slack_token_and_url(global)?;
        }
    }
    Ok(())
}

/// A Slack app token and a Slack API URL are two ways to reach Slack; Alertmanager allows
/// both in global only for the old workaround where the URL is the app URL itself.
fn check_global_slack_token_and_url(global: &Mapping) -> Checked {
    let token = global_set(global, "slack_app_token") || global_set(global, "slack_app_token_file");
    let url = global_set(global, "slack_api_url") || global_set(global, "slack_api_url_file");
    if !(token && url) {
        return Ok(());
    }
    let api_url = text_of(global, "slack_api_url").unwrap_or_default();
    let app_url = match global.get("slack_app_url") {
        None => DEFAULT_SLACK_APP_URL.to_string(),
        Some(v) => scalar_text(v).unwrap_or_default(),
    };
    if api_url == app_url {
        return Ok(());
    }
    Err(Fault::bad(
        "slack_app_token",
        "at most one of slack_app_token/slack_app_token_file & \
         slack_api_url/slack_api_url_file may be set",
    ))
}

/// Checks a mapping against a shape: every key known and well typed, then the required
/// groups, the exclusive pairs and the shape's own rule.
fn check_shape(m: &Mapping, shape: &Shape, path: &str) -> Checked {
    for (k, v) in m {
        let key = key_text(k)?;
        let field = join(path, &key);
        let Some(&(_, ty)) = shape.fields.iter().find(|(name, _)| *name == key) else {
            return Err(Fault::Unknown(field));
        };
        check_value(v, ty, &field)?;
    }
    for group in shape.one_of {
        if !group.iter().any(|f| is_set(m, f, ty_of(shape, f))) {
            let first = group.first().copied().unwrap_or_default();
            return Err(Fault::bad(join(path, first), missing(group)));
        }
    }
    for &(a, b) in shape.exclusive {
        if is_set(m, a, ty_of(shape, a)) && is_set(m, b, ty_of(shape, b)) {
            return Err(Fault::bad(
                join(path, a),
                format!("at most one of {a} & {b} may be set"),
            ));
        }
    }
    match shape.check {
        Some(check) => check(m, path),
        None => Ok(()),
    }
}

/// Checks one value against its type. An explicit null always passes: yaml.v2 leaves the
/// field at its zero value and runs no check on it.
fn check_value(v: &Value, ty: Ty, field: &str) -> Checked {
    let v = untag(v);
    if v.is_null() {
        return Ok(());
    }
    let fail = |what: &str| Err(Fault::bad(field, format!("expected {what}")));
    match ty {
        Str | SecretPtr | AnyUrl => match scalar_text(v) {
            Some(_) => Ok(()),
            None => fail("a string"),
        },
        Bool => match v {
            Value::Bool(_) => Ok(()),
            Value::String(s) if yaml11_bool(s).is_some() => Ok(()),
            _ => fail("true or false"),
        },
        Int => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => Ok(()),
            _ => fail("an integer"),
        },
        Url | SecretUrl => match scalar_text(v) {
            Some(s) if matches!(ty, SecretUrl) && s == "<secret>" => Ok(()),
            Some(s) => http_url(&s).map_err(|e| Fault::bad(field, format!("invalid URL: {e}"))),
            None => fail("a URL"),
        },
        GoDuration | TextDuration => {
            if matches!(ty, GoDuration) && matches!(v, Value::Number(n) if n.is_i64() || n.is_u64())
            {
                return Ok(());
            }
            match scalar_text(v) {
                Some(s) => go_duration(&s).map_err(|e| Fault::bad(field, e)),
                None => fail("a duration"),
            }
        }
        PromDuration => match scalar_text(v) {
            Some(s) => prom_duration(&s).map_err(|e| Fault::bad(field, e)),
            None => fail("a duration"),
        },
        TlsVersion => match scalar_text(v) {
            Some(s) if ["TLS10", "TLS11", "TLS12", "TLS13"].contains(&s.as_str()) => Ok(()),
            Some(s) => Err(Fault::bad(field, format!("unknown TLS version {s:?}"))),
            None => fail("a TLS version"),
        },
        StrList => match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(item, Str, &format!("{field}[{i}]"))?;
                }
                Ok(())
            }
            _ => fail("a list of strings"),
        },
        StrMap | AnyMap => match v {
            Value::Mapping(m) => {
                for (k, item) in m {
                    let key = key_text(k)?;
                    if matches!(ty, StrMap) {
                        check_value(item, Str, &format!("{field}.{key}"))?;
                    }
                }
                Ok(())
            }
            _ => fail("a mapping"),
        },
        Struct(shape) => match v {
            Value::Mapping(m) => check_shape(m, shape, field),
            _ => fail("a mapping"),
        },
        StructList(shape) => match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(item, Struct(shape), &format!("{field}[{i}]"))?;
                }
                Ok(())
            }
            _ => fail("a list"),
        },
        JiraField => match v {
            Value::Mapping(m) => check_shape(m, &JIRA_FIELD, field),
            _ if scalar_text(v).is_some() => Ok(()),
            _ => fail("a template string or {template, enable_update}"),
        },
        JiraLabels => match v {
            Value::Mapping(m) => check_shape(m, &JIRA_LABELS, field),
            Value::Sequence(_) => check_value(v, StrList, field),
            _ => fail("a list of labels or {values, enable_update}"),
        },
        Headers => match v {
            Value::Mapping(m) => {
                for (k, item) in m {
                    let key = key_text(k)?;
                    check_value(item, Struct(&HEADER), &format!("{field}.{key}"))?;
                }
                Ok(())
            }
            _ => fail("a mapping of header names"),
        },
        ProxyHeader => match v {
            Value::Mapping(m) => {
                for (k, item) in m {
                    let key = key_text(k)?;
                    check_value(item, StrList, &format!("{field}.{key}"))?;
                }
                Ok(())
            }
            _ => fail("a mapping of header names"),
        },
    }
}

// Rules the tables cannot say, one per structure.

fn check_tls(m: &Mapping, path: &str) -> Checked {
    let cert = ["cert", "cert_file", "cert_ref"]
        .iter()
        .any(|f| is_set(m, f, Str));
    let key = ["key", "key_file", "key_ref"]
        .iter()
        .any(|f| is_set(m, f, Str));
    if cert && !key {
        return Err(Fault::bad(
            join(path, "key"),
            "missing: a client certificate needs its key (key or key_file)",
        ));
    }
    if key && !cert {
        return Err(Fault::bad(
            join(path, "cert"),
            "missing: a client key needs its certificate (cert or cert_file)",
        ));
    }
    Ok(())
}

fn check_authorization(m: &Mapping, path: &str) -> Checked {
    let kind = text_of(m, "type").unwrap_or_default();
    if kind.trim().eq_ignore_ascii_case("basic") {
        return Err(Fault::bad(
            join(path, "type"),
            "cannot be \"basic\"; use basic_auth instead",
        ));
    }
    Ok(())
}

fn check_http(m: &Mapping, path: &str) -> Checked {
    let bearer = is_set(m, "bearer_token", Str) || is_set(m, "bearer_token_file", Str);
    let basic = is_present(m, "basic_auth");
    let oauth2 = is_present(m, "oauth2");
    if (basic || oauth2) && bearer {
        return Err(Fault::bad(
            join(path, "bearer_token"),
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file may be set",
        ));
    }
    if is_present(m, "authorization") {
        if bearer {
            return Err(Fault::bad(
                join(path, "authorization"),
                "cannot be set with bearer_token or bearer_token_file",
            ));
        }
        if basic || oauth2 {
            return Err(Fault::bad(
                join(path, "authorization"),
                "at most one of basic_auth, oauth2 & authorization may be set",
            ));
        }
    }
    if oauth2 && basic {
        return Err(Fault::bad(
            join(path, "oauth2"),
            "at most one of basic_auth, oauth2 & authorization may be set",
        ));
    }
    check_proxy(m, path)
}

/// The proxy settings prometheus/common shares between the HTTP client and OAuth2.
fn check_proxy(m: &Mapping, path: &str) -> Checked {
    let connect_header = matches!(
        m.get("proxy_connect_header").map(untag),
        Some(Value::Mapping(h)) if !h.is_empty()
    );
    let from_environment = is_true(m, "proxy_from_environment");
    let url_given = is_present(m, "proxy_url");
    let url = is_set(m, "proxy_url", Str);
    let no_proxy = is_set(m, "no_proxy", Str);
    if connect_header && !from_environment && !url {
        return Err(Fault::bad(
            join(path, "proxy_connect_header"),
            "needs proxy_url or proxy_from_environment",
        ));
    }
    if from_environment && url {
        return Err(Fault::bad(
            join(path, "proxy_from_environment"),
            "cannot be set with proxy_url",
        ));
    }
    if from_environment && no_proxy {
        return Err(Fault::bad(
            join(path, "no_proxy"),
            "cannot be set with proxy_from_environment",
        ));
    }
    if !url_given && no_proxy {
        return Err(Fault::bad(join(path, "no_proxy"), "needs proxy_url"));
    }
    Ok(())
}

/// Whether an `http_config` value carries an authorization (a bearer token becomes one).
fn has_authorization(http: Option<&Value>) -> bool {
    match http.map(untag) {
        Some(Value::Mapping(h)) => {
            is_present(h, "authorization")
                || is_set(h, "bearer_token", Str)
                || is_set(h, "bearer_token_file", Str)
        }
        _ => false,
    }
}

fn check_incidentio(m: &Mapping, _path: &str) -> Checked {
    let token = is_set(m, "alert_source_token", Str) || is_set(m, "alert_source_token_file", Str);
    // A null http_config is no http_config; only a given one is looked into.
    if !is_present(m, "http_config") {
        return Ok(());
    }
    let authorization = has_authorization(m.get("http_config"));
    if authorization && token {
        return Err(Fault::bad(
            "alert_source_token",
            "cannot be set with http_config.authorization",
        ));
    }
    if !authorization && !token {
        return Err(Fault::bad(
            "alert_source_token",
            "missing: one of alert_source_token, alert_source_token_file or \
             http_config.authorization must be set",
        ));
    }
    Ok(())
}

fn check_jira(m: &Mapping, _path: &str) -> Checked {
    if m.contains_key("api_type") {
        let kind = text_of(m, "api_type").unwrap_or_default();
        if !["auto", "cloud", "datacenter"].contains(&kind.as_str()) {
            return Err(Fault::bad(
                "api_type",
                format!("unknown API type {kind:?}; must be auto, cloud or datacenter"),
            ));
        }
    }
    Ok(())
}

fn check_opsgenie(m: &Mapping, _path: &str) -> Checked {
    let Some(Value::Sequence(responders)) = m.get("responders").map(untag) else {
        return Ok(());
    };
    for (i, responder) in responders.iter().enumerate() {
        let field = format!("responders[{i}]");
        let empty = Mapping::new();
        // The responders are values, not pointers: a null one is an empty one and is checked.
        let r = match untag(responder) {
            Value::Mapping(r) => r,
            _ => &empty,
        };
        if !["id", "username", "name"].iter().any(|f| is_set(r, f, Str)) {
            return Err(Fault::bad(
                field,
                "needs at least one of id, username or name",
            ));
        }
        let kind = text_of(r, "type").unwrap_or_default();
        // A templated type is only known at notification time.
        if !kind.contains("{{")
            && !["team", "teams", "user", "escalation", "schedule"]
                .contains(&kind.to_lowercase().as_str())
        {
            return Err(Fault::bad(
                format!("{field}.type"),
                format!(
                    "unknown responder type {kind:?}; must be team, teams, user, escalation \
                     or schedule"
                ),
            ));
        }
    }
    Ok(())
}

fn check_pushover(m: &Mapping, _path: &str) -> Checked {
    if is_true(m, "html") && is_true(m, "monospace") {
        return Err(Fault::bad(
            "html",
            "at most one of html & monospace may be set",
        ));
    }
    Ok(())
}

fn check_slack(m: &Mapping, _path: &str) -> Checked {
    let url = is_set(m, "api_url", SecretUrl) || is_set(m, "api_url_file", Str);
    let token = is_set(m, "app_token", Str) || is_set(m, "app_token_file", Str);
    if url && token {
        return Err(Fault::bad(
            "api_url",
            "at most one of api_url/api_url_file & app_token/app_token_file may be set",
        ));
    }
    // Updating a message (or replying in its thread) needs Slack's Web API, which a webhook
    // URL does not reach; the token flow posts to chat.postMessage.
    for option in ["update_message", "post_updates_to_thread"] {
        if is_true(m, option)
            && is_set(m, "api_url", SecretUrl)
            && text_of(m, "api_url").as_deref() != Some(DEFAULT_SLACK_APP_URL)
        {
            return Err(Fault::bad(
                option,
                format!(
                    "needs the Slack app token: api_url must be {DEFAULT_SLACK_APP_URL}, \
                     not a webhook URL"
                ),
            ));
        }
    }
    Ok(())
}

/// Slack reaches its API by URL (a webhook) or by app token, either given here or taken
/// from global. The global token is taken only when the entry names neither its own
/// authorization nor its own URL, and a token cannot be combined with an explicit
/// `http_config.authorization` (the token becomes the authorization).
fn check_slack_global(m: &Mapping, global: &Mapping) -> Checked {
    let own_token = is_set(m, "app_token", Str) || is_set(m, "app_token_file", Str);
    let own_url = is_set(m, "api_url", SecretUrl);
    let authorization = has_authorization(m.get("http_config"));
    let global_token =
        global_set(global, "slack_app_token") || global_set(global, "slack_app_token_file");
    let token = own_token || (!authorization && !own_url && global_token);
    let url = own_url
        || is_set(m, "api_url_file", Str)
        || global_set(global, "slack_api_url")
        || global_set(global, "slack_api_url_file");
    if !url && !token {
        return Err(Fault::bad(
            "api_url",
            "missing: set api_url, api_url_file, app_token or app_token_file here, or \
             slack_api_url, slack_api_url_file, slack_app_token or slack_app_token_file \
             in global",
        ));
    }
    if token && authorization {
        return Err(Fault::bad(
            "http_config.authorization",
            "cannot be set when a Slack app token is used",
        ));
    }
    Ok(())
}

fn check_sigv4(m: &Mapping, path: &str) -> Checked {
    if is_set(m, "access_key", Str) != is_set(m, "secret_key", Str) {
        return Err(Fault::bad(
            join(path, "access_key"),
            "access_key and secret_key go together",
        ));
    }
    Ok(())
}

fn check_sns(m: &Mapping, _path: &str) -> Checked {
    // Alertmanager chains `!=` over the three "is empty" flags, which refuses an odd number
    // of empty ones: none of them set, or two of them set. Reproduced as is.
    let empty = ["target_arn", "topic_arn", "phone_number"]
        .iter()
        .filter(|f| !is_set(m, f, Str))
        .count();
    if empty % 2 == 1 {
        return Err(Fault::bad(
            "topic_arn",
            "must provide either a target_arn, topic_arn or phone_number",
        ));
    }
    Ok(())
}

fn check_telegram(m: &Mapping, _path: &str) -> Checked {
    let chat_id = match m.get("chat_id").map(untag) {
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    };
    let chat_id_file = is_set(m, "chat_id_file", Str);
    if !chat_id && !chat_id_file {
        return Err(Fault::bad(
            "chat_id",
            "missing: one of chat_id or chat_id_file must be set",
        ));
    }
    if chat_id && chat_id_file {
        return Err(Fault::bad(
            "chat_id",
            "at most one of chat_id & chat_id_file may be set",
        ));
    }
    let mode = text_of(m, "parse_mode").unwrap_or_default();
    if !["", "Markdown", "MarkdownV2", "HTML"].contains(&mode.as_str()) {
        return Err(Fault::bad(
            "parse_mode",
            format!("unknown parse mode {mode:?}; must be Markdown, MarkdownV2, HTML or empty"),
        ));
    }
    Ok(())
}

fn check_victorops(m: &Mapping, _path: &str) -> Checked {
    let Some(Value::Mapping(fields)) = m.get("custom_fields").map(untag) else {
        return Ok(());
    };
    const RESERVED: [&str; 7] = [
        "routing_key",
        "message_type",
        "state_message",
        "entity_display_name",
        "monitoring_tool",
        "entity_id",
        "entity_state",
    ];
    for (k, _) in fields {
        let key = key_text(k)?;
        if RESERVED.contains(&key.as_str()) {
            return Err(Fault::bad(
                format!("custom_fields.{key}"),
                "conflicts with a field VictorOps notifications set themselves",
            ));
        }
    }
    Ok(())
}

fn check_webex(m: &Mapping, _path: &str) -> Checked {
    if !has_authorization(m.get("http_config")) {
        return Err(Fault::bad(
            "http_config.authorization",
            "missing (required: Webex is reached with a bot token)",
        ));
    }
    Ok(())
}

fn check_wechat(m: &Mapping, _path: &str) -> Checked {
    let kind = text_of(m, "message_type").unwrap_or_default();
    if !["", "text", "markdown"].contains(&kind.as_str()) {
        return Err(Fault::bad(
            "message_type",
            format!("unknown message type {kind:?}; must be text or markdown"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading values as yaml.v2 does
// ---------------------------------------------------------------------------------------

fn untag(v: &Value) -> &Value {
    let mut v = v;
    while let Value::Tagged(tagged) = v {
        v = &tagged.value;
    }
    v
}

/// The text a scalar decodes to in a Go string field (null is the empty string); `None`
/// for a sequence or mapping.
fn scalar_text(v: &Value) -> Option<String> {
    match untag(v) {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// A mapping key as yaml.v2 matches it against field names.
fn key_text(k: &Value) -> Result<String, Fault> {
    scalar_text(k).ok_or_else(|| Fault::Whole("a mapping key must be a string".to_string()))
}

fn text_of(m: &Mapping, key: &str) -> Option<String> {
    m.get(key).and_then(scalar_text)
}

/// Whether a key is present with a non-null value (a pointer field is then set).
fn is_present(m: &Mapping, key: &str) -> bool {
    m.get(key).is_some_and(|v| !untag(v).is_null())
}

/// Whether a field counts as set: a pointer field (URL, pointer secret, structure) as soon
/// as it is present, a string field when its text is not empty.
fn is_set(m: &Mapping, key: &str, ty: Ty) -> bool {
    match m.get(key).map(untag) {
        None | Some(Value::Null) => false,
        Some(v) => match ty {
            Url | SecretUrl | SecretPtr => true,
            _ => scalar_text(v).is_none_or(|t| !t.is_empty()),
        },
    }
}

fn global_set(global: &Mapping, key: &str) -> bool {
    is_set(global, key, global_ty(key).unwrap_or(Str))
}

fn ty_of(shape: &Shape, key: &str) -> Ty {
    shape
        .fields
        .iter()
        .find(|(name, _)| *name == key)
        .map_or(Str, |&(_, ty)| ty)
}

/// YAML 1.1 booleans, which yaml.v2 accepts and YAML 1.2 reads as strings.
fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            Some(false)
        }
        _ => None,
    }
}

fn is_true(m: &Mapping, key: &str) -> bool {
    match m.get(key).map(untag) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => yaml11_bool(s) == Some(true),
        _ => false,
    }
}

/// Checks a URL as Alertmanager's `ParseURL` does: scheme `http` or `https`, and a host.
fn http_url(s: &str) -> Result<(), String> {
    let scheme = match s.split_once(':') {
        Some((scheme, _))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            scheme
        }
        _ => "",
    };
    let lower = scheme.to_ascii_lowercase();
    if lower != "http" && lower != "https" {
        return Err(format!("unsupported scheme {lower:?} for URL"));
    }
    let rest = s.get(scheme.len() + 1..).unwrap_or_default();
    let host = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            let authority = after.get(..end).unwrap_or_default();
            authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host)
        }
        None => "",
    };
    if host.is_empty() {
        return Err("missing host for URL".to_string());
    }
    Ok(())
}

/// Checks a Go duration (`time.ParseDuration`): an optional sign, then numbers with units
/// `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; `0` alone needs no unit.
fn go_duration(s: &str) -> Result<(), String> {
    let invalid = || Err(format!("invalid duration {s:?}"));
    let mut rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return invalid();
    }
    while !rest.is_empty() {
        let whole = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut after = rest.get(whole..).unwrap_or_default();
        let mut fraction = 0;
        if let Some(frac) = after.strip_prefix('.') {
            fraction = frac.bytes().take_while(u8::is_ascii_digit).count();
            after = frac.get(fraction..).unwrap_or_default();
        }
        if whole == 0 && fraction == 0 {
            return invalid();
        }
        let unit_end = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let unit = after.get(..unit_end).unwrap_or_default();
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit) {
            return invalid();
        }
        rest = after.get(unit_end..).unwrap_or_default();
    }
    Ok(())
}

/// Checks a Prometheus duration: numbers with units `y`, `w`, `d`, `h`, `m`, `s`, `ms`,
/// each at most once and in that order; `0` alone needs no unit.
fn prom_duration(s: &str) -> Result<(), String> {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let invalid = || Err(format!("invalid duration {s:?}"));
    if s == "0" {
        return Ok(());
    }
    if s.is_empty() {
        return invalid();
    }
    let mut rest = s;
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return invalid();
        }
        rest = rest.get(digits..).unwrap_or_default();
        let unit = if rest.starts_with("ms") {
            6
        } else {
            match rest.chars().next() {
                Some('y') => 0,
                Some('w') => 1,
                Some('d') => 2,
                Some('h') => 3,
                Some('m') => 4,
                Some('s') => 5,
                _ => return invalid(),
            }
        };
        if last.is_some_and(|l| unit <= l) {
            return invalid();
        }
        last = Some(unit);
        rest = rest.get(UNITS[unit].len()..).unwrap_or_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn mapping(text: &str) -> Mapping {
        match yaml(text) {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        }
    }

    fn entry(receiver: &str, kind: &str, text: &str, global: &str) -> Result<(), String> {
        check_entry(receiver, kind, &yaml(text), &mapping(global))
    }

    fn fails_naming(result: Result<(), String>, wanted: &str) {
        match result {
            Ok(()) => panic!("passed, but should fail naming {wanted:?}"),
            Err(e) => assert!(e.contains(wanted), "{e:?} does not name {wanted:?}"),
        }
    }

    #[test]
    fn the_integration_keys_are_those_of_alertmanager_0_34() {
        assert!(is_receiver_integration("slack_configs"));
        assert!(is_receiver_integration("mattermost_configs"));
        assert!(is_receiver_integration("incidentio_configs"));
        assert!(is_receiver_integration("email_configs"));
        assert!(!is_receiver_integration("hipchat_configs"));
        assert!(!is_receiver_integration("name"));
        for kind in DELIVERED {
            assert!(is_receiver_integration(kind));
        }
        // Every integration key has a table, except the two delivered ones.
        for kind in RECEIVER_INTEGRATIONS {
            let tabled = INTEGRATIONS.iter().any(|i| i.kind == kind);
            assert_eq!(tabled, !DELIVERED.contains(&kind), "{kind}");
        }
    }

    #[test]
    fn an_unknown_field_in_an_entry_is_refused_and_named_with_receiver_and_integration() {
        let e = entry(
            "team-X",
            "opsgenie_configs",
            "teams: team-X",
            "opsgenie_api_key: k",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "receiver \"team-X\": opsgenie_configs: unknown field teams"
        );
    }

    #[test]
    fn an_unknown_field_in_a_nested_structure_is_refused_with_its_path() {
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://hooks.example.com/x', http_config: {tls_config: {ca_fil: x}}}",
                "",
            ),
            "unknown field http_config.tls_config.ca_fil",
        );
        fails_naming(
            entry(
                "r",
                "pagerduty_configs",
                "{routing_key: k, links: [{href: h, title: t}]}",
                "",
            ),
            "unknown field links[0].title",
        );
    }

    #[test]
    fn an_unknown_global_key_is_refused() {
        assert_eq!(
            check_global(&mapping("slack_api_ulr: https://hooks.example.com/x")).unwrap_err(),
            "global: unknown field slack_api_ulr"
        );
    }

    #[test]
    fn global_keys_of_the_configuration_module_are_left_to_it() {
        let global = mapping(
            "{resolve_timeout: 5m, http_config: {whatever: 1}, smtp_from: a@b, smtp_nonsense: 1}",
        );
        assert_eq!(check_global(&global), Ok(()));
    }

    #[test]
    fn global_values_have_their_types() {
        fails_naming(
            check_global(&mapping("slack_api_url: ftp://example.com/")),
            "global: slack_api_url: invalid URL",
        );
        fails_naming(
            check_global(&mapping("pagerduty_url: events.pagerduty.com")),
            "global: pagerduty_url: invalid URL",
        );
        fails_naming(
            check_global(&mapping("opsgenie_api_key: [a, b]")),
            "global: opsgenie_api_key: expected a string",
        );
        assert_eq!(
            check_global(&mapping(
                "{slack_api_url: '<secret>', telegram_bot_token: 12345, wechat_api_corp_id: 7}"
            )),
            Ok(())
        );
    }

    #[test]
    fn a_global_secret_and_its_file_are_not_both_set() {
        for (a, b) in GLOBAL_EXCLUSIVE {
            let value = |key: &str| {
                if key.ends_with("_url") {
                    "https://example.com/x".to_string()
                } else {
                    "x".to_string()
                }
            };
            let mut global = Mapping::new();
            global.insert(Value::from(*a), Value::from(value(a)));
            global.insert(Value::from(*b), Value::from(value(b)));
            fails_naming(
                check_global(&global),
                &format!("global: {a}: at most one of"),
            );
        }
    }

    #[test]
    fn a_global_slack_token_and_url_conflict_unless_the_url_is_the_app_url() {
        fails_naming(
            check_global(&mapping(
                "{slack_app_token: xoxb-1, slack_api_url: 'https://hooks.slack.com/services/x'}",
            )),
            "global: slack_app_token:",
        );
        fails_naming(
            check_global(&mapping(
                "{slack_app_token_file: /t, slack_api_url_file: /u}",
            )),
            "global: slack_app_token:",
        );
        assert_eq!(
            check_global(&mapping(
                "{slack_app_token: xoxb-1, slack_api_url: 'https://slack.com/api/chat.postMessage'}",
            )),
            Ok(())
        );
    }

    #[test]
    fn a_secret_and_its_file_are_not_both_set_in_an_entry() {
        fails_naming(
            entry(
                "r",
                "victorops_configs",
                "{routing_key: r, api_key: k, api_key_file: /f}",
                "",
            ),
            "receiver \"r\": victorops_configs: api_key: at most one of api_key & api_key_file",
        );
        fails_naming(
            entry(
                "r",
                "pagerduty_configs",
                "{routing_key: k, routing_key_file: /f}",
                "",
            ),
            "pagerduty_configs: routing_key: at most one of",
        );
        fails_naming(
            entry(
                "r",
                "discord_configs",
                "{webhook_url: 'https://discord.example.com/x', webhook_url_file: /f}",
                "",
            ),
            "discord_configs: webhook_url: at most one of",
        );
        fails_naming(
            entry(
                "r",
                "rocketchat_configs",
                "{token: '', token_file: /f, token_id: i}",
                "",
            ),
            // A pointer secret counts as set even when empty, as in Alertmanager.
            "rocketchat_configs: token: at most one of",
        );
    }

    #[test]
    fn a_global_secret_and_its_file_are_named_by_the_entries_that_read_them() {
        fails_naming(
            entry(
                "team-X",
                "mattermost_configs",
                "{webhook_url_file: /override}",
                "{mattermost_webhook_url: 'https://mm.example.com/hooks/x', mattermost_webhook_url_file: /g}",
            ),
            "receiver \"team-X\": mattermost_configs: global mattermost_webhook_url: at most one of",
        );
    }

    #[test]
    fn a_required_value_without_a_global_default_must_be_in_the_entry() {
        fails_naming(
            entry("r", "pagerduty_configs", "{severity: critical}", ""),
            "pagerduty_configs: routing_key: missing",
        );
        fails_naming(
            entry("r", "pushover_configs", "{token: t}", ""),
            "pushover_configs: user_key: missing",
        );
        fails_naming(
            entry("r", "msteams_configs", "{title: t}", ""),
            "msteams_configs: webhook_url: missing",
        );
        fails_naming(
            entry("r", "victorops_configs", "{api_key: k}", ""),
            "victorops_configs: routing_key: missing",
        );
        fails_naming(
            entry(
                "r",
                "jira_configs",
                "{api_url: 'https://j.example.com', project: P}",
                "",
            ),
            "jira_configs: issue_type: missing",
        );
        fails_naming(
            entry(
                "r",
                "webex_configs",
                "{http_config: {authorization: {credentials: c}}}",
                "",
            ),
            "webex_configs: room_id: missing",
        );
        fails_naming(
            entry("r", "incidentio_configs", "{alert_source_token: t}", ""),
            "incidentio_configs: url: missing",
        );
        fails_naming(
            entry("r", "telegram_configs", "{bot_token: t}", ""),
            "telegram_configs: chat_id: missing",
        );
    }

    #[test]
    fn a_required_value_with_a_global_default_may_come_from_either() {
        let cases = [
            ("opsgenie_configs", "{}", "api_key", "opsgenie_api_key: k"),
            (
                "opsgenie_configs",
                "{}",
                "api_key",
                "opsgenie_api_key_file: /k",
            ),
            (
                "victorops_configs",
                "{routing_key: r}",
                "api_key",
                "victorops_api_key: k",
            ),
            (
                "telegram_configs",
                "{chat_id: 1}",
                "bot_token",
                "telegram_bot_token: t",
            ),
            (
                "telegram_configs",
                "{chat_id: 1}",
                "bot_token",
                "telegram_bot_token_file: /t",
            ),
            (
                "wechat_configs",
                "{corp_id: c}",
                "api_secret",
                "wechat_api_secret_file: /s",
            ),
            (
                "wechat_configs",
                "{api_secret: s}",
                "corp_id",
                "wechat_api_corp_id: c",
            ),
            (
                "rocketchat_configs",
                "{token: t}",
                "token_id",
                "rocketchat_token_id: i",
            ),
            (
                "rocketchat_configs",
                "{token_id: i}",
                "token",
                "rocketchat_token_file: /t",
            ),
            (
                "mattermost_configs",
                "{channel: c}",
                "webhook_url",
                "mattermost_webhook_url: 'https://mm.example.com/hooks/x'",
            ),
            (
                "slack_configs",
                "{channel: c}",
                "api_url",
                "slack_api_url: 'https://hooks.slack.com/services/x'",
            ),
            (
                "slack_configs",
                "{channel: c}",
                "api_url",
                "slack_app_token: xoxb-1",
            ),
            (
                "jira_configs",
                "{project: P, issue_type: Bug}",
                "api_url",
                "jira_api_url: 'https://j.example.com'",
            ),
        ];
        for (kind, fields, field, global) in cases {
            assert_eq!(
                entry("r", kind, fields, global),
                Ok(()),
                "{kind} with {global}"
            );
            fails_naming(
                entry("r", kind, fields, ""),
                &format!("{kind}: {field}: missing"),
            );
        }
    }

    #[test]
    fn a_global_url_set_to_null_removes_alertmanagers_default() {
        assert_eq!(
            entry("r", "pagerduty_configs", "{routing_key: k}", ""),
            Ok(())
        );
        fails_naming(
            entry(
                "r",
                "pagerduty_configs",
                "{routing_key: k}",
                "pagerduty_url: ~",
            ),
            "pagerduty_configs: url: missing",
        );
    }

    #[test]
    fn an_empty_entry_is_refused_or_read_as_empty_as_alertmanager_does() {
        fails_naming(
            entry("r", "pagerduty_configs", "~", ""),
            "receiver \"r\": pagerduty_configs: an empty entry",
        );
        // Slack, OpsGenie, WeChat and Rocket.Chat read a null entry as an empty one,
        // which global may complete.
        assert_eq!(
            entry(
                "r",
                "slack_configs",
                "~",
                "slack_api_url: 'https://hooks.slack.com/x'"
            ),
            Ok(())
        );
        fails_naming(
            entry("r", "slack_configs", "~", ""),
            "slack_configs: api_url: missing",
        );
        fails_naming(
            entry("r", "opsgenie_configs", "~", ""),
            "opsgenie_configs: api_key: missing",
        );
    }

    #[test]
    fn slack_update_message_needs_the_app_token_not_a_webhook_url() {
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://hooks.slack.com/services/T0/B0/X', update_message: true}",
                "",
            ),
            "slack_configs: update_message: needs the Slack app token",
        );
        assert_eq!(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://slack.com/api/chat.postMessage', update_message: true}",
                "",
            ),
            Ok(())
        );
        assert_eq!(
            entry(
                "r",
                "slack_configs",
                "{app_token: xoxb-1, update_message: true}",
                ""
            ),
            Ok(())
        );
    }

    #[test]
    fn slack_takes_the_global_app_token_only_without_its_own_authorization_or_url() {
        let global =
            "{slack_app_token: xoxb-1, slack_api_url: 'https://slack.com/api/chat.postMessage'}";
        assert_eq!(check_global(&mapping(global)), Ok(()));
        for own in [
            "{channel: '#a'}",
            "{channel: '#b', app_token: xoxb-2}",
            "{channel: '#c', app_url: 'http://api.slack.example/'}",
        ] {
            assert_eq!(entry("r", "slack_configs", own, global), Ok(()), "{own}");
        }
        // The entry's own authorization keeps the global token away.
        assert_eq!(
            entry(
                "r",
                "slack_configs",
                "{http_config: {authorization: {credentials: xoxb-own}}}",
                global
            ),
            Ok(())
        );
        // Its own token and an explicit authorization conflict.
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{app_token: xoxb-2, http_config: {bearer_token: b}}",
                "",
            ),
            "slack_configs: http_config.authorization: cannot be set",
        );
        // A URL and a token in the same entry conflict.
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{app_token: xoxb-2, api_url_file: /u}",
                "",
            ),
            "slack_configs: api_url: at most one of api_url/api_url_file & app_token",
        );
        // With its own authorization and no URL anywhere, nothing reaches Slack.
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{http_config: {authorization: {credentials: c}}}",
                "slack_app_token: xoxb-1",
            ),
            "slack_configs: api_url: missing",
        );
    }

    #[test]
    fn values_have_their_types_in_entries() {
        fails_naming(
            entry(
                "r",
                "telegram_configs",
                "{bot_token: t, chat_id: 'abc'}",
                "",
            ),
            "telegram_configs: chat_id: expected an integer",
        );
        fails_naming(
            entry(
                "r",
                "pushover_configs",
                "{user_key: u, token: t, retry: 5}",
                "",
            ),
            "pushover_configs: retry: invalid duration",
        );
        fails_naming(
            entry(
                "r",
                "jira_configs",
                "{api_url: 'https://j.example.com', project: P, issue_type: Bug, reopen_duration: 1h1d}",
                "",
            ),
            "jira_configs: reopen_duration: invalid duration",
        );
        fails_naming(
            entry(
                "r",
                "opsgenie_configs",
                "{api_key: k, api_url: api.opsgenie.com}",
                "",
            ),
            "opsgenie_configs: api_url: invalid URL: unsupported scheme",
        );
        fails_naming(
            entry("r", "slack_configs", "{api_url: 'https:///x'}", ""),
            "slack_configs: api_url: invalid URL: missing host",
        );
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://h/x', send_resolved: maybe}",
                "",
            ),
            "slack_configs: send_resolved: expected true or false",
        );
        fails_naming(
            entry(
                "r",
                "victorops_configs",
                "{api_key: k, routing_key: [a]}",
                "",
            ),
            "victorops_configs: routing_key: expected a string",
        );
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://h/x', http_config: {tls_config: {min_version: TLS14}}}",
                "",
            ),
            "slack_configs: http_config.tls_config.min_version: unknown TLS version",
        );
        // yaml.v2 reads numbers and YAML 1.1 booleans where strings and booleans belong.
        assert_eq!(
            entry(
                "r",
                "pushover_configs",
                "{user_key: 123, token: 456, retry: 30s, expire: 1h, html: yes, priority: 2}",
                "",
            ),
            Ok(())
        );
        assert_eq!(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://h/x', timeout: 1000000}",
                ""
            ),
            Ok(())
        );
    }

    #[test]
    fn the_http_client_configuration_follows_prometheus_common() {
        let slack = |http: &str| {
            entry(
                "r",
                "slack_configs",
                &format!("{{api_url: 'https://h/x', http_config: {http}}}"),
                "",
            )
        };
        fails_naming(
            slack("{bearer_token: b, bearer_token_file: /f}"),
            "http_config.bearer_token: at most one of bearer_token & bearer_token_file",
        );
        fails_naming(
            slack("{basic_auth: {username: u}, bearer_token: b}"),
            "http_config.bearer_token: at most one of basic_auth, oauth2",
        );
        fails_naming(
            slack("{basic_auth: {username: u}, authorization: {credentials: c}}"),
            "http_config.authorization: at most one of basic_auth, oauth2 & authorization",
        );
        fails_naming(
            slack("{authorization: {type: Basic, credentials: c}}"),
            "http_config.authorization.type: cannot be \"basic\"",
        );
        fails_naming(
            slack("{basic_auth: {password: p, password_file: /f}}"),
            "http_config.basic_auth.password: at most one of",
        );
        fails_naming(
            slack("{oauth2: {client_id: i}}"),
            "http_config.oauth2.token_url: missing",
        );
        fails_naming(
            slack("{tls_config: {cert_file: /c}}"),
            "http_config.tls_config.key: missing",
        );
        fails_naming(
            slack("{tls_config: {ca: x, ca_file: /c}}"),
            "http_config.tls_config.ca: at most one of",
        );
        fails_naming(
            slack("{no_proxy: localhost}"),
            "http_config.no_proxy: needs proxy_url",
        );
        fails_naming(
            slack("{proxy_from_environment: true, proxy_url: 'http://p'}"),
            "http_config.proxy_from_environment: cannot be set with proxy_url",
        );
        fails_naming(
            slack("{proxy_connect_header: {X-A: [v]}}"),
            "http_config.proxy_connect_header: needs proxy_url",
        );
        fails_naming(
            slack("{http_headers: {X-A: {value: [v]}}}"),
            "unknown field http_config.http_headers.X-A.value",
        );
        assert_eq!(
            slack(
                "{proxy_url: foo, follow_redirects: false, enable_http2: true, \
                 tls_config: {cert_file: /c, key_file: /k, insecure_skip_verify: true}, \
                 oauth2: {client_id: i, client_secret_file: /s, token_url: 'https://t', scopes: [a]}, \
                 http_headers: {X-A: {values: [v], secrets: [s]}}}"
            ),
            Ok(())
        );
    }

    #[test]
    fn webex_and_incidentio_check_their_authorization() {
        fails_naming(
            entry("r", "webex_configs", "{room_id: x}", ""),
            "webex_configs: http_config.authorization: missing",
        );
        assert_eq!(
            entry(
                "r",
                "webex_configs",
                "{room_id: x, http_config: {bearer_token: t}}",
                ""
            ),
            Ok(())
        );
        let url = "url: 'https://api.incident.io/v2/alert_events/http/x'";
        assert_eq!(
            entry("r", "incidentio_configs", &format!("{{{url}}}"), ""),
            Ok(())
        );
        fails_naming(
            entry(
                "r",
                "incidentio_configs",
                &format!("{{{url}, http_config: {{follow_redirects: true}}}}"),
                "",
            ),
            "incidentio_configs: alert_source_token: missing",
        );
        fails_naming(
            entry(
                "r",
                "incidentio_configs",
                &format!(
                    "{{{url}, alert_source_token: t, http_config: {{authorization: {{credentials: c}}}}}}"
                ),
                "",
            ),
            "incidentio_configs: alert_source_token: cannot be set with http_config.authorization",
        );
    }

    #[test]
    fn the_conflicts_alertmanager_checks_per_integration_are_refused() {
        fails_naming(
            entry(
                "r",
                "pushover_configs",
                "{user_key: u, token: t, html: true, monospace: true}",
                "",
            ),
            "pushover_configs: html: at most one of html & monospace",
        );
        fails_naming(
            entry("r", "sns_configs", "{topic_arn: a, phone_number: '+1'}", ""),
            "sns_configs: topic_arn: must provide either",
        );
        fails_naming(
            entry("r", "sns_configs", "{subject: s}", ""),
            "sns_configs: topic_arn:",
        );
        assert_eq!(entry("r", "sns_configs", "{target_arn: a}", ""), Ok(()));
        fails_naming(
            entry(
                "r",
                "sns_configs",
                "{topic_arn: a, sigv4: {access_key: k}}",
                "",
            ),
            "sns_configs: sigv4.access_key: access_key and secret_key go together",
        );
        fails_naming(
            entry(
                "r",
                "telegram_configs",
                "{bot_token: t, chat_id: 1, parse_mode: md}",
                "",
            ),
            "telegram_configs: parse_mode: unknown parse mode",
        );
        fails_naming(
            entry("r", "telegram_configs", "{bot_token: t, chat_id: 0}", ""),
            "telegram_configs: chat_id: missing",
        );
        fails_naming(
            entry(
                "r",
                "victorops_configs",
                "{api_key: k, routing_key: r, custom_fields: {entity_id: x}}",
                "",
            ),
            "victorops_configs: custom_fields.entity_id: conflicts",
        );
        fails_naming(
            entry("r", "wechat_configs", "{message_type: html}", ""),
            "wechat_configs: message_type: unknown message type",
        );
        fails_naming(
            entry(
                "r",
                "jira_configs",
                "{api_url: 'https://j.example.com', project: P, issue_type: Bug, api_type: server}",
                "",
            ),
            "jira_configs: api_type: unknown API type",
        );
    }

    #[test]
    fn nested_lists_are_checked_item_by_item() {
        fails_naming(
            entry(
                "r",
                "opsgenie_configs",
                "{api_key: k, responders: [{name: a, type: team}, {type: user}]}",
                "",
            ),
            "opsgenie_configs: responders[1]: needs at least one of id, username or name",
        );
        fails_naming(
            entry(
                "r",
                "opsgenie_configs",
                "{api_key: k, responders: [{name: a, type: squad}]}",
                "",
            ),
            "opsgenie_configs: responders[0].type: unknown responder type",
        );
        assert_eq!(
            entry(
                "r",
                "opsgenie_configs",
                "{api_key: k, responders: [{id: a, type: '{{ .CommonLabels.kind }}'}, {username: u, type: User}]}",
                "",
            ),
            Ok(())
        );
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://h/x', fields: [{title: t}]}",
                "",
            ),
            "slack_configs: fields[0].value: missing",
        );
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://h/x', actions: [{type: button, text: t}]}",
                "",
            ),
            "slack_configs: actions[0].url: missing: one of url, name",
        );
        fails_naming(
            entry(
                "r",
                "slack_configs",
                "{api_url: 'https://h/x', actions: [{type: button, text: t, name: n, confirm: {title: c}}]}",
                "",
            ),
            "slack_configs: actions[0].confirm.text: missing",
        );
        fails_naming(
            entry(
                "r",
                "mattermost_configs",
                "{webhook_url_file: /f, attachments: [{fields: [{value: v}]}]}",
                "",
            ),
            "mattermost_configs: attachments[0].fields[0].title: missing",
        );
        assert_eq!(
            entry(
                "r",
                "rocketchat_configs",
                "{token: t, token_id: i, fields: [{title: t, value: v, short: true}], \
                 actions: [{type: button, text: t, url: 'https://x', imageurl: i, iswebview: false}]}",
                "",
            ),
            Ok(())
        );
    }

    #[test]
    fn jira_takes_its_old_and_new_forms() {
        let base = "api_url: 'https://j.example.com', project: P, issue_type: Bug";
        for extra in [
            "labels: [a, b]",
            "labels: {values: [a], enable_update: false}",
            "summary: '{{ .CommonLabels.alertname }}'",
            "summary: {template: t, enable_update: false}",
            "reopen_duration: 1d12h",
            "fields: {customfield_10000: {value: x}}",
        ] {
            assert_eq!(
                entry("r", "jira_configs", &format!("{{{base}, {extra}}}"), ""),
                Ok(()),
                "{extra}"
            );
        }
        fails_naming(
            entry("r", "jira_configs", &format!("{{{base}, labels: a}}"), ""),
            "jira_configs: labels: expected a list of labels",
        );
    }

    #[test]
    fn delivered_kinds_pass_and_unknown_kinds_are_refused() {
        assert_eq!(entry("r", "webhook_configs", "{nonsense: 1}", ""), Ok(()));
        assert_eq!(entry("r", "email_configs", "~", ""), Ok(()));
        fails_naming(
            entry("r", "hipchat_configs", "{room_id: 1}", ""),
            "receiver \"r\": hipchat_configs: not a receiver integration",
        );
    }

    #[test]
    fn odd_input_is_refused_without_panicking() {
        for text in [
            "[a, b]",
            "just text",
            "42",
            "!!binary aGVsbG8=",
            "{[a]: b}",
            "{? {a: b} : c}",
            "{api_url: {a: b}}",
            "{http_config: [1]}",
            "{http_config: {tls_config: 7}}",
            "{timeout: -1.5µs}",
            "{timeout: '.'}",
            "{app_url: 'http:'}",
            "{api_url: 'é:'}",
            "{api_url: 'https://ü@/'}",
        ] {
            for integration in INTEGRATIONS {
                let _ = entry("r", integration.kind, text, text);
            }
            let _ = check_global(&mapping(text));
        }
        for bad in ["", "-", "1.", ".5", "1x", "1h-2m", "5", "µ"] {
            let _ = go_duration(bad);
            let _ = prom_duration(bad);
            let _ = http_url(bad);
        }
        assert_eq!(go_duration("-1.5h30m"), Ok(()));
        assert_eq!(go_duration("300µs"), Ok(()));
        assert!(go_duration("5").is_err());
        assert_eq!(prom_duration("1y2w3d4h5m6s7ms"), Ok(()));
        assert!(prom_duration("1m1h").is_err());
        assert!(prom_duration("1.5h").is_err());
    }

    // -----------------------------------------------------------------------------------
    // The shared conformance files
    // -----------------------------------------------------------------------------------

    /// Bad files whose fault lies in a non-delivered integration or a global key of this
    /// module, with what the message must contain (the integration or `global`, and the
    /// field).
    const FAULT_HERE: &[(&str, &str)] = &[
        (
            "config/testdata/conf.mattermost-both-webhook-url-and-file.yml",
            "global: mattermost_webhook_url:",
        ),
        (
            "config/testdata/conf.mattermost-valid-receiver-both-webhook-url-and-file.yml",
            "global: mattermost_webhook_url:",
        ),
        (
            "config/testdata/conf.opsgenie-both-file-and-apikey.yml",
            "global: opsgenie_api_key:",
        ),
        (
            "config/testdata/conf.opsgenie-default-apikey-old-team.yml",
            "opsgenie_configs: unknown field teams",
        ),
        (
            "config/testdata/conf.rocketchat-both-token-and-tokenfile.yml",
            "global: rocketchat_token:",
        ),
        (
            "config/testdata/conf.rocketchat-no-token.yml",
            "rocketchat_configs: token:",
        ),
        (
            "config/testdata/conf.slack-both-file-and-token.yml",
            "global: slack_app_token:",
        ),
        (
            "config/testdata/conf.slack-both-file-and-url.yml",
            "global: slack_api_url:",
        ),
        (
            "config/testdata/conf.slack-no-api-url-or-token.yml",
            "slack_configs: api_url:",
        ),
        (
            "config/testdata/conf.slack-update-message-and-webhook.yml",
            "slack_configs: update_message:",
        ),
        (
            "config/testdata/conf.telegram-both-bot-token-and-file.yml",
            "global: telegram_bot_token:",
        ),
        (
            "config/testdata/conf.telegram-no-bot-token.yml",
            "telegram_configs: bot_token:",
        ),
        (
            "config/testdata/conf.victorops-both-file-and-apikey.yml",
            "global: victorops_api_key:",
        ),
        (
            "config/testdata/conf.wechat-no-api-secret.yml",
            "wechat_configs: api_secret:",
        ),
    ];

    /// Bad files whose fault lies outside this module, and where; this module must find
    /// nothing wrong in them.
    const FAULT_ELSEWHERE: &[(&str, &str)] = &[
        (
            "config/testdata/conf.nil-match_re-route.yml",
            "a route's match_re value is null (routing)",
        ),
        (
            "config/testdata/conf.nil-source_match_re-inhibition.yml",
            "an inhibit rule's source_match_re value is null (inhibition)",
        ),
        (
            "config/testdata/conf.smtp-both-password-and-file.yml",
            "smtp_auth_password and smtp_auth_password_file (the configuration module)",
        ),
        (
            "cli/testdata/conf.bad.yml",
            "the document is the scalar BAD, not a configuration (the configuration module)",
        ),
    ];

    fn dataset() -> Option<PathBuf> {
        [
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/datasets/alerting/alertmanager"),
            PathBuf::from("/work/shared/datasets/alerting/alertmanager"),
        ]
        .into_iter()
        .find(|p| p.is_dir())
    }

    /// The verdicts of MANIFEST.md's column "expected by upstream's own tests", by path
    /// under `alertmanager/`.
    fn verdicts(manifest: &str) -> BTreeMap<String, String> {
        let mut column = None;
        let mut out = BTreeMap::new();
        for line in manifest.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if column.is_none() {
                column = cells
                    .iter()
                    .position(|c| c.starts_with("expected by upstream's own tests"));
                continue;
            }
            let (Some(col), Some(path)) = (column, cells.get(1)) else {
                continue;
            };
            let Some(path) = path.trim_matches('`').strip_prefix("alertmanager/") else {
                continue;
            };
            if let Some(verdict) = cells.get(col).and_then(|c| c.split_whitespace().next()) {
                out.insert(path.to_string(), verdict.to_string());
            }
        }
        out
    }

    /// Runs this module's part of a configuration check over a whole file, as the
    /// configuration module does: the global keys it owns, then every entry of every
    /// non-delivered integration of every receiver.
    fn check_document(doc: &Value) -> Result<(), String> {
        let global = doc
            .get("global")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let mut other = global.clone();
        other.retain(|k, _| !k.as_str().is_some_and(owned_by_config));
        check_global(&other)?;
        let receivers = doc.get("receivers").and_then(Value::as_sequence);
        for receiver in receivers.into_iter().flatten() {
            let name = receiver
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(fields) = receiver.as_mapping() else {
                continue;
            };
            for (key, entries) in fields {
                let Some(kind) = key.as_str() else { continue };
                if !is_receiver_integration(kind) || DELIVERED.contains(&kind) {
                    continue;
                }
                for entry in entries.as_sequence().into_iter().flatten() {
                    check_entry(name, kind, entry, &global)?;
                }
            }
        }
        Ok(())
    }

    #[test]
    fn the_shared_conformance_files_get_upstreams_verdict() {
        let Some(root) = dataset() else {
            eprintln!("skipped: the alerting dataset is not present");
            return;
        };
        let manifest = std::fs::read_to_string(root.join("../MANIFEST.md")).unwrap();
        let verdicts = verdicts(&manifest);
        let mut checked = 0;
        for dir in ["config/testdata", "cli/testdata", "doc/examples"] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for file in files {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                let rel = format!("{dir}/{name}");
                let verdict = verdicts
                    .get(&rel)
                    .unwrap_or_else(|| panic!("{rel}: no verdict in MANIFEST.md"));
                let text = std::fs::read_to_string(&file).unwrap();
                let result = serde_yaml_ng::from_str::<Value>(&text)
                    .map_err(|e| format!("YAML: {e}"))
                    .and_then(|doc| check_document(&doc));
                let here = FAULT_HERE.iter().find(|(f, _)| *f == rel);
                let elsewhere = FAULT_ELSEWHERE.iter().find(|(f, _)| *f == rel);
                match (verdict.as_str(), &result, here, elsewhere) {
                    ("good", Ok(()), _, _) => eprintln!("{rel}: good, passes"),
                    ("good", Err(e), _, _) => panic!("{rel}: good upstream, refused: {e}"),
                    ("bad", Err(e), Some((_, wanted)), _) => {
                        assert!(e.contains(wanted), "{rel}: {e:?} does not name {wanted:?}");
                        eprintln!("{rel}: bad, refused: {e}");
                    }
                    ("bad", Ok(()), Some((_, wanted)), _) => {
                        panic!("{rel}: bad upstream ({wanted}), passes")
                    }
                    ("bad", Ok(()), None, Some((_, why))) => {
                        eprintln!("{rel}: bad elsewhere ({why}), nothing wrong here")
                    }
                    ("bad", Err(e), None, Some((_, why))) => {
                        panic!("{rel}: its fault lies elsewhere ({why}), yet refused here: {e}")
                    }
                    ("bad", _, None, None) => panic!("{rel}: bad upstream and not classified"),
                    (other, _, _, _) => panic!("{rel}: unexpected verdict {other:?}"),
                }
                checked += 1;
            }
        }
        assert!(checked >= 35, "only {checked} files checked");
    }
}
