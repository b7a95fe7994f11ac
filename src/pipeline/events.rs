//! EventBridge "MediaConvert Job State Change" events, as
//! `POST /hooks/mediaconvert` receives them, turned into `JobEvent`s.
//! Only what playgate needs is read; unknown fields and statuses are
//! ignored. Which job an event is for comes from the `userMetadata` the
//! job was created with (`job_id`, `asset_id`); events from other
//! applications in the account (no `job_id`) are not ours.

use super::jobs::JobEvent;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    pub detail: Detail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub user_metadata: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub job_progress: Option<JobProgress>,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub output_group_details: Vec<OutputGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    #[serde(default)]
    pub job_percent_complete: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputGroup {
    #[serde(default)]
    pub playlist_file_paths: Vec<String>,
}

/// What the hook does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply this to the job.
    Apply(JobEvent),
    /// COMPLETE: publish the output (`playlists` as MediaConvert reports
    /// them), then apply `Complete`.
    Complete { playlists: Vec<String> },
    /// Nothing to change (warnings, unknown statuses).
    Ignore,
}

impl Event {
    pub fn is_mediaconvert(&self) -> bool {
        self.source == "aws.mediaconvert" && self.detail_type == "MediaConvert Job State Change"
    }

    pub fn action(&self) -> Action {
        let d = &self.detail;
        match d.status.as_str() {
            // GetJob's PROGRESSING (the reconciler's) carries a percentage;
            // EventBridge's only on STATUS_UPDATE.
            "INPUT_INFORMATION" | "PROGRESSING" | "QUEUE_HOP" | "STATUS_UPDATE" => {
                Action::Apply(JobEvent::Progressing {
                    progress: d.job_progress.as_ref().and_then(|p| p.job_percent_complete),
                })
            }
            "COMPLETE" => Action::Complete {
                playlists: d
                    .output_group_details
                    .iter()
                    .flat_map(|g| g.playlist_file_paths.iter().cloned())
                    .collect(),
            },
            "ERROR" => Action::Apply(JobEvent::Error {
                message: format!(
                    "MediaConvert error {}: {}",
                    d.error_code.map_or("?".to_owned(), |c| c.to_string()),
                    d.error_message.as_deref().unwrap_or("no message")
                ),
            }),
            "CANCELED" => Action::Apply(JobEvent::Canceled),
            _ => Action::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail: &str) -> Event {
        serde_json::from_str(&format!(
            r#"{{"version":"0","id":"e1","detail-type":"MediaConvert Job State Change","source":"aws.mediaconvert",
            "account":"111122223333","time":"2026-11-24T07:00:00Z","region":"us-east-1",
            "resources":["arn:aws:mediaconvert:us-east-1:111122223333:jobs/1700000000000-abc123"],
            "detail":{detail}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn statuses_map_to_job_events() {
        let e = event(
            r#"{"timestamp":1,"accountId":"111122223333","queue":"q","jobId":"1700000000000-abc123","status":"STATUS_UPDATE",
            "userMetadata":{"job_id":"a1-a1","asset_id":"a1","app":"playgate"},"framesDecoded":10,
            "jobProgress":{"phaseProgress":{},"jobPercentComplete":42,"currentPhase":"TRANSCODING","retryCount":0}}"#,
        );
        assert!(e.is_mediaconvert());
        assert_eq!(e.detail.user_metadata["job_id"], "a1-a1");
        assert_eq!(
            e.action(),
            Action::Apply(JobEvent::Progressing { progress: Some(42) })
        );
        let err = event(
            r#"{"jobId":"j","status":"ERROR","errorCode":1010,"errorMessage":"Bad input","userMetadata":{}}"#,
        );
        assert_eq!(
            err.action(),
            Action::Apply(JobEvent::Error {
                message: "MediaConvert error 1010: Bad input".into()
            })
        );
        let done = event(
            r#"{"jobId":"j","status":"COMPLETE","userMetadata":{},"outputGroupDetails":[{"outputDetails":[{"outputFilePaths":["s3://out/assets/a1/v1/hls/720p/index.m3u8"],"durationInMs":4000,"videoDetails":{"widthInPx":1280,"heightInPx":720}}],"playlistFilePaths":["s3://out/assets/a1/v1/hls/master.m3u8"],"type":"HLS_GROUP"}]}"#,
        );
        assert_eq!(
            done.action(),
            Action::Complete {
                playlists: vec!["s3://out/assets/a1/v1/hls/master.m3u8".into()]
            }
        );
        for s in ["NEW_WARNING", "SOMETHING_NEW"] {
            let e = event(&format!(
                r#"{{"jobId":"j","status":"{s}","warningCode":1}}"#
            ));
            assert_eq!(e.action(), Action::Ignore);
        }
    }
}
