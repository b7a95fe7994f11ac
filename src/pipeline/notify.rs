//! Telling the platform an encode ended. Every notification is logged; with
//! `[notify] webhook_url`, it is also POSTed as JSON
//! `{asset_id, job_id, status, renditions, playback_path, error,
//! playability}` (`playability`: which tiers can play the new version and
//! how, see `crate::pipeline::playability`; absent unless complete) with
//!
//! - `X-Playgate-Timestamp`: epoch seconds, and
//! - `X-Playgate-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`,
//!
//! so the receiver can check origin and freshness (reject old timestamps).
//! Delivery retries with exponential backoff (`retries`, `retry_base`)
//! on errors and non-2xx answers, in the background: a slow receiver never
//! holds a job up. With `aws.sns_topic_arn` (mode aws), the same JSON is
//! published to the SNS topic (subject `playgate {status} {asset}`; the
//! SDK retries).

use crate::config::Webhook;
use serde::Serialize;
use std::sync::Arc;

/// Where a job's end is told: each delivers in the background and returns
/// at once, so a slow receiver never holds a job up.
pub trait Notifier: Send + Sync {
    fn notify(&self, n: &Notification, now: u64);
}

/// The notifiers the config asks for: the webhook (`notify.webhook_url`)
/// and, in mode aws, SNS (`aws.sns_topic_arn`).
pub fn configured(webhook: Option<&Webhook>, sns: Option<Sns>) -> Vec<Arc<dyn Notifier>> {
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(hook) = webhook {
        out.push(Arc::new(hook.clone()));
    }
    if let Some(sns) = sns {
        out.push(Arc::new(sns));
    }
    out
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notification {
    pub asset_id: String,
    pub job_id: String,
    /// `COMPLETE`, `ERROR` or `CANCELED`.
    pub status: String,
    pub renditions: Vec<String>,
    /// `/v1/play/{asset}/master.m3u8` when complete.
    pub playback_path: Option<String>,
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playability: Option<crate::pipeline::playability::Playability>,
}

/// `v1=` + hex HMAC-SHA256 over `"{timestamp}.{body}"`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    let mac = PKey::hmac(secret)
        .and_then(|key| {
            let mut s = Signer::new(MessageDigest::sha256(), &key)?;
            s.update(timestamp.to_string().as_bytes())?;
            s.update(b".")?;
            s.update(body)?;
            s.sign_to_vec()
        })
        .unwrap_or_default();
    format!("v1={}", crate::domain::hex(&mac))
}

/// Publishes notifications to an SNS topic.
#[derive(Clone)]
pub struct Sns {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl Sns {
    pub fn new(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Sns {
            client: aws_sdk_sns::Client::new(sdk),
            topic_arn: topic_arn.into(),
        }
    }

    async fn publish(&self, n: &Notification) {
        let Ok(message) = serde_json::to_string(n) else {
            return;
        };
        let sent = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(format!("playgate {} {}", n.status, n.asset_id))
            .message(message)
            .send()
            .await;
        if let Err(e) = sent {
            let why = crate::backends::aws::said(&e);
            tracing::error!(target: "playgate::notify", job = %n.job_id, reason = %why, "SNS publish failed");
        }
    }
}

impl Notifier for Sns {
    fn notify(&self, n: &Notification, _now: u64) {
        let (sns, n) = (self.clone(), n.clone());
        tokio::spawn(async move { sns.publish(&n).await });
    }
}

impl Notifier for Webhook {
    fn notify(&self, n: &Notification, now: u64) {
        let (hook, n) = (self.clone(), n.clone());
        tokio::spawn(async move { deliver(&hook, &n, now).await });
    }
}

/// Logs `n` and hands it to every notifier; returns at once.
pub fn send(n: &Notification, notifiers: &[Arc<dyn Notifier>], now: u64) {
    tracing::info!(
        target: "playgate::notify",
        asset = %n.asset_id,
        job = %n.job_id,
        status = %n.status,
        "encode finished"
    );
    for notifier in notifiers {
        notifier.notify(n, now);
    }
}

async fn deliver(hook: &Webhook, n: &Notification, now: u64) -> bool {
    let body = match serde_json::to_vec(n) {
        Ok(b) => b,
        Err(_) => return false,
    };
    let sig = signature(hook.secret.expose().as_bytes(), now, &body);
    let client = match reqwest::Client::builder().timeout(hook.timeout).build() {
        Ok(c) => c,
        Err(_) => return false,
    };
    let mut wait = hook.retry_base;
    for attempt in 0..=hook.retries {
        let sent = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-playgate-timestamp", now.to_string())
            .header("x-playgate-signature", &sig)
            .body(body.clone())
            .send()
            .await;
        let why = match sent {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => format!("status {}", r.status()),
            Err(e) => e.without_url().to_string(),
        };
        tracing::warn!(target: "playgate::notify", job = %n.job_id, attempt = attempt + 1, reason = %why, "webhook delivery failed");
        if attempt < hook.retries {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::error!(target: "playgate::notify", job = %n.job_id, "webhook gave up after retries");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Expected value from Python's hmac module:
        // hmac.new(b"Jefe", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"Jefe", 1_700_000_000, br#"{"a":1}"#),
            "v1=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
        assert_ne!(signature(b"Jefe", 1, b"x"), signature(b"Jefe", 2, b"x"));
    }
}
