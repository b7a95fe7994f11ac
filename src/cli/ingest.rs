//! `playgate ingest FILE`: what a backend does, as one command against a
//! running gateway — declare the upload, stream the file, start the
//! transcode, follow the job with a progress bar, print the playback URL.
//! Any failure is one line and exit 2 (through `cli::Fail`).

use crate::cli::{Fail, load_config};
use crate::domain::TierName;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

fn content_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mov") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("ts") => "video/mp2t",
        _ => "video/mp4",
    }
}

/// The name the server stores: the file's name, reduced to what it
/// accepts (plain characters, a container's extension: `.mp4` is added to
/// a name without one; the server reads the container from the bytes).
fn upload_name(file: &Path) -> String {
    let raw = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("source");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    let clean: String = clean.chars().take(120).collect();
    let clean = if clean.is_empty() {
        "source".into()
    } else {
        clean
    };
    if crate::pipeline::source::has_media_extension(&clean) {
        clean
    } else {
        format!("{clean}.mp4")
    }
}

async fn checked(resp: reqwest::Response, what: &str) -> Result<Value, Fail> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        let detail = body["detail"].as_str().unwrap_or("no detail");
        Err(Fail(format!("{what}: {status}: {detail}")))
    }
}

pub(crate) fn run(
    config: &Path,
    title: Option<String>,
    server: Option<String>,
    token_env: Option<String>,
    file: &Path,
) -> Result<ExitCode, Fail> {
    let config = load_config(config)?;
    let base = server
        .unwrap_or_else(|| config.server.public_url.to_string())
        .trim_end_matches('/')
        .to_owned();
    let credential =
        match token_env {
            Some(var) => std::env::var(&var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Fail(format!("environment variable {var} is not set")))?,
            None => {
                let issuer = config.auth.issuers.iter().find(|i| i.dev).ok_or_else(|| {
                    Fail("no dev issuer to mint an ingest token; pass --token-env VAR".into())
                })?;
                let tier =
                    config.tiers.keys().next().cloned().unwrap_or_else(|| {
                        TierName::parse("free").unwrap_or_else(|_| unreachable!())
                    });
                let now = crate::clock::Clock::now_epoch(&crate::clock::SystemClock);
                crate::auth::mint_dev_token(
                    issuer,
                    "playgate-ingest",
                    &tier,
                    &[crate::auth::SCOPE_INGEST.to_owned()],
                    now,
                    Duration::from_secs(3600),
                )?
            }
        };
    let size = std::fs::metadata(file)
        .map_err(|e| Fail(format!("{}: {e}", file.display())))?
        .len();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = reqwest::Client::new();
        let ct = content_type(file);
        let created = checked(
            client
                .post(format!("{base}/v1/uploads"))
                .bearer_auth(&credential)
                .json(&json!({"filename": upload_name(file), "content_type": ct, "size": size, "title": title}))
                .send()
                .await
                .map_err(|e| Fail(format!("{base}: {}", e.without_url())))?,
            "upload",
        )
        .await?;
        let id = created["asset_id"].as_str().unwrap_or_default().to_owned();
        let url = created["upload"]["url"].as_str().unwrap_or_default().to_owned();
        let bar = ProgressBar::new(100);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg:<12} [{bar:30}] {pos:>3}%")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message("uploading");
        bar.enable_steady_tick(Duration::from_millis(120));
        if created["upload"]["method"] != "PUT" {
            return Err(Fail(
                "the gateway planned a multipart upload; this command sends single PUTs only (raise pipeline.multipart_threshold or upload with an S3 client)".into(),
            ));
        }
        let body = tokio::fs::File::open(file)
            .await
            .map_err(|e| Fail(format!("{}: {e}", file.display())))?;
        let mut put = client
            .put(&url)
            .header("content-type", ct)
            .header("content-length", size)
            .body(reqwest::Body::from(body));
        // Our credential goes to our gateway only, never to a presigned S3 URL.
        if url.starts_with(&format!("{base}/")) {
            put = put.bearer_auth(&credential);
        }
        for (k, v) in created["upload"]["headers"].as_object().into_iter().flatten() {
            if let Some(v) = v.as_str()
                && !k.eq_ignore_ascii_case("content-length")
            {
                put = put.header(k.as_str(), v);
            }
        }
        let sent = put
            .send()
            .await
            .map_err(|e| Fail(format!("upload: {}", e.without_url())))?;
        if !sent.status().is_success() {
            checked(sent, "upload").await?;
        }
        if let Some(done) = created["upload"]["complete"]["url"].as_str() {
            checked(
                client
                    .post(done)
                    .bearer_auth(&credential)
                    .send()
                    .await
                    .map_err(|e| Fail(format!("upload: {}", e.without_url())))?,
                "upload",
            )
            .await?;
        }
        bar.set_position(100);
        let job = checked(
            client
                .post(format!("{base}/v1/assets/{id}/transcode"))
                .bearer_auth(&credential)
                .send()
                .await
                .map_err(|e| Fail(format!("transcode: {}", e.without_url())))?,
            "transcode",
        )
        .await?;
        let job_id = job["job"]["id"].as_str().unwrap_or_default().to_owned();
        bar.set_message("transcoding");
        bar.set_position(0);
        loop {
            let j = checked(
                client
                    .get(format!("{base}/v1/jobs/{job_id}"))
                    .bearer_auth(&credential)
                    .send()
                    .await
                    .map_err(|e| Fail(format!("job: {}", e.without_url())))?,
                "job",
            )
            .await?;
            bar.set_position(j["job"]["progress"].as_u64().unwrap_or(0));
            match j["job"]["state"].as_str() {
                Some("COMPLETE") => break,
                Some("ERROR") => {
                    bar.abandon_with_message("failed");
                    return Err(Fail(format!(
                        "transcode failed: {}",
                        j["job"]["error"].as_str().unwrap_or("no reason given")
                    )));
                }
                Some("CANCELED") => {
                    bar.abandon_with_message("cancelled");
                    return Err(Fail("the transcode was cancelled".into()));
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        bar.finish_with_message("ready");
        println!("{base}/v1/play/{id}/master.m3u8");
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_what_the_server_accepts() {
        assert_eq!(
            upload_name(Path::new("/x/My Movie (1).mov")),
            "My_Movie__1_.mov"
        );
        assert_eq!(upload_name(Path::new(".hidden.mp4")), "hidden.mp4");
        assert_eq!(upload_name(Path::new("/x/take-3")), "take-3.mp4");
        assert_eq!(upload_name(Path::new("/x/notes.txt")), "notes.txt.mp4");
        assert_eq!(content_type(Path::new("a.MOV")), "video/quicktime");
    }
}
