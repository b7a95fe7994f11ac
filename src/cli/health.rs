//! `playgate health`: the container health check, without curl.

use super::Fail;
use std::process::ExitCode;

pub(super) fn health(url: &str) -> Result<ExitCode, Fail> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()?
            .get(url)
            .send()
            .await
            .map(|r| r.status())
    })?;
    if status.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Fail(format!("{url} answered {status}")))
    }
}
