//! What the AWS backends share: the SDK configuration from `[aws]`, and
//! one way to say what went wrong.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The AWS SDK's configuration: the region and endpoint from `[aws]`,
/// credentials from the SDK's default chain (environment, profile, ECS
/// task role, instance metadata).
pub async fn sdk_config(aws: &crate::config::AwsConfig) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(aws.region.clone()));
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
