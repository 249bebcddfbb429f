//! Webhook delivery: Alertmanager's webhook payload (`version: "4"`) posted as JSON, with
//! `max_alerts` truncation and the `http_config` authentication people use (basic auth,
//! `authorization`, bearer token).

use std::time::Duration;

use serde_yaml_ng::Value;
use sightline_alerting::alertmanager::config::{WebhookConfig, WebhookUrl};
use sightline_alerting::alertmanager::data::WebhookMessage;
use sightline_alerting::alertmanager::dispatch::Notification;

/// Alertmanager's default webhook timeout is the notification's; ours is bounded too.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a delivery failed and whether trying again can help.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub retryable: bool,
    /// For the failure counter: `connection`, `status_4xx`, `status_5xx`, `config`.
    pub reason: &'static str,
}

impl Failure {
    pub fn permanent(message: &str) -> Failure {
        Failure {
            message: message.to_owned(),
            retryable: false,
            reason: "config",
        }
    }
}

/// Posts the notification to the webhook.
pub async fn send(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    n: &Notification,
    budget: Duration,
) -> Result<(), Failure> {
    let url = match &hook.url {
        WebhookUrl::Url(u) => u.clone(),
        WebhookUrl::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .map_err(|e| Failure::permanent(&format!("cannot read url_file {path}: {e}")))?,
    };
    let mut data = n.data.clone();
    let total = data.alerts.len() as u64;
    let truncated = if hook.max_alerts > 0 && total > hook.max_alerts {
        data.alerts.truncate(hook.max_alerts as usize);
        total - hook.max_alerts
    } else {
        0
    };
    let message = WebhookMessage {
        data,
        version: "4".to_owned(),
        group_key: n.group_key.clone(),
        truncated_alerts: truncated,
    };
    let timeout = hook
        .timeout
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(budget.max(Duration::from_millis(100)));
    let mut request = client.post(&url).timeout(timeout).json(&message);
    if let Some(http) = &hook.http_config {
        request = authenticate(request, http)?;
    }
    let response = request.send().await.map_err(|e| Failure {
        message: format!("POST {url}: {e}"),
        retryable: true,
        reason: "connection",
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    // As Alertmanager: 5xx and 429 are worth retrying, other statuses are not.
    let retryable = status.is_server_error() || status.as_u16() == 429;
    Err(Failure {
        message: format!("POST {url}: status {status}: {body}"),
        retryable,
        reason: if status.is_server_error() {
            "status_5xx"
        } else {
            "status_4xx"
        },
    })
}

fn authenticate(
    request: reqwest::RequestBuilder,
    http: &Value,
) -> Result<reqwest::RequestBuilder, Failure> {
    let text = |v: Option<&Value>, file: Option<&Value>| -> Result<Option<String>, Failure> {
        if let Some(s) = v.and_then(Value::as_str) {
            return Ok(Some(s.to_owned()));
        }
        match file.and_then(Value::as_str) {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|e| Failure::permanent(&format!("cannot read {path}: {e}"))),
            None => Ok(None),
        }
    };
    if let Some(basic) = http.get("basic_auth") {
        let user = basic
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let password = text(basic.get("password"), basic.get("password_file"))?;
        return Ok(request.basic_auth(user, password));
    }
    if let Some(auth) = http.get("authorization") {
        let kind = auth.get("type").and_then(Value::as_str).unwrap_or("Bearer");
        let credentials =
            text(auth.get("credentials"), auth.get("credentials_file"))?.unwrap_or_default();
        return Ok(request.header("Authorization", format!("{kind} {credentials}")));
    }
    if let Some(token) = text(http.get("bearer_token"), http.get("bearer_token_file"))? {
        return Ok(request.bearer_auth(token));
    }
    Ok(request)
}
