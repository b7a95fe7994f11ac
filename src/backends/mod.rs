//! What playgate keeps and calls: the asset/tier/job store (SQLite,
//! DynamoDB), object storage (a directory, S3), the CDN's cache policy
//! and invalidation (CloudFront), and the AWS SDK set-up they share.

pub mod aws;
pub mod cdn;
pub mod storage;
pub mod store;
