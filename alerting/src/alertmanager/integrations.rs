//! Receiver integrations Sightline does not deliver to, checked for structure (being
//! built: this interim version only knows their names).

/// The `<kind>_configs` keys Sightline delivers to.
pub const DELIVERED: [&str; 2] = ["email_configs", "webhook_configs"];

/// Whether `key` is a receiver integration key of Alertmanager 0.34.
pub fn is_receiver_integration(key: &str) -> bool {
    const ALL: [&str; 18] = [
        "discord_configs", "email_configs", "incidentio_configs", "jira_configs",
        "mattermost_configs", "msteams_configs", "msteamsv2_configs", "opsgenie_configs",
        "pagerduty_configs", "pushover_configs", "rocketchat_configs", "slack_configs",
        "sns_configs", "telegram_configs", "victorops_configs", "webex_configs",
        "webhook_configs", "wechat_configs",
    ];
    ALL.contains(&key)
}

/// Checks the `global:` keys this module owns.
pub fn check_global(_other: &serde_yaml_ng::Mapping) -> Result<(), String> {
    Ok(())
}

/// Checks one entry of `<kind>_configs`.
pub fn check_entry(
    _receiver: &str,
    _kind: &str,
    _entry: &serde_yaml_ng::Value,
    _global: &serde_yaml_ng::Mapping,
) -> Result<(), String> {
    Ok(())
}
