//! What the AWS backends share: the SDK configuration from `[aws]`, and
//! one way to say what went wrong.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The AWS SDK's configuration: the region and endpoint from `[aws]`,
/// credentials from the SDK's default chain (environment, profile, ECS
/// task role, instance metadata).
///
/// Retries: the SDK's standard mode (3 attempts) with backoff from 200 ms
/// up to 2 s instead of 1 s up to 20 s, and a 2 s connect timeout: a
/// viewer's request that reads DynamoDB or S3 during an outage fails over
/// to the caches in well under a second, not after 5–8 s of waiting.
pub async fn sdk_config(aws: &crate::config::AwsConfig) -> aws_config::SdkConfig {
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(200))
        .with_max_backoff(std::time::Duration::from_secs(2));
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .build();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(aws.region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// A service's error code and message, or the transport failure; never
/// the raw response (it goes into logs and, for client errors, bodies).
pub fn said<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(err) => match (err.code(), err.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_owned(),
            _ => err.to_string(),
        },
        None => DisplayErrorContext(e).to_string(),
    }
}
