//! The MediaConvert backend: job settings built from the ladder with
//! aws-sdk-mediaconvert's types, and the three calls playgate makes
//! (CreateJob, GetJob for the reconciler, CancelJob).
//!
//! Layout (DESIGN.md, "Pipeline"), clear: one HLS output group writing
//! `assets/{id}/v{n}/hls/master.m3u8` with `SINGLE_DIRECTORY` — the layout
//! MediaConvert documents: `master_{rung}.m3u8` and
//! `master_{rung}_00001.ts` beside the master — one output per rung (name
//! modifier `_{rung}`, 6 s segments, QVBR capped at the rung's bit rate,
//! GOPs aligned across rungs, I-frame playlists), one AAC 160k audio
//! rendition in its own group (video outputs name it in
//! `audioRenditionSets`), and a frame-capture group writing
//! `thumbs/thumb.NNNNNNN.jpg`. playgate assumes no layout: on COMPLETE it
//! reads the master and its playlists and moves each rendition into its own
//! directory when they share one (`pipeline::layout`).
//!
//! Encrypted (`pipeline.encrypt`): MediaConvert keys a whole output group
//! with one `StaticKeyProvider`, so each rendition gets a group of its own
//! (`hls/{rendition}/master.m3u8` and its files), keyed with its own key
//! (`job_settings`); playgate writes the master on COMPLETE.
//!
//! The client talks to the regional endpoint from `aws.mediaconvert_endpoint`
//! (DescribeEndpoints is deprecated and not called).

use super::events::{Detail, Event, JobProgress};
use crate::backends::aws::said;
use crate::backends::store::Job;
use crate::engine::ladder::{Codec, Plan, Rendition, fraction};
use aws_sdk_mediaconvert::Client;
use aws_sdk_mediaconvert::types::{
    AacCodingMode, AacSettings, AudioCodec, AudioCodecSettings, AudioDefaultSelection,
    AudioDescription, AudioSelector, ContainerSettings, ContainerType, FileGroupSettings,
    FrameCaptureSettings, H264CodecProfile, H264FramerateControl, H264GopSizeUnits,
    H264QvbrSettings, H264RateControlMode, H264SceneChangeDetect, H264Settings, H265CodecProfile,
    H265FramerateControl, H265GopSizeUnits, H265QvbrSettings, H265RateControlMode,
    H265SceneChangeDetect, H265Settings, H265WriteMp4PackagingType, HlsAudioTrackType,
    HlsCodecSpecification, HlsDirectoryStructure, HlsEncryptionSettings, HlsEncryptionType,
    HlsGroupSettings, HlsIFrameOnlyManifest, HlsInitializationVectorInManifest, HlsKeyProviderType,
    HlsManifestDurationFormat, HlsOutputSelection, HlsSegmentControl, HlsSettings,
    HlsStreamInfResolution, Input, InputRotate, InputTimecodeSource, JobSettings, M3u8Settings,
    Output, OutputGroup, OutputGroupSettings, OutputGroupType, OutputSettings, StaticKeyProvider,
    StatusUpdateInterval, VideoCodec, VideoCodecSettings, VideoDescription, VideoSelector,
};

/// `userMetadata.app` of every job playgate creates: the EventBridge rule
/// in `deploy/` selects on it.
pub const APP: &str = "playgate";
/// The audio selector every output's audio comes from.
const AUDIO_SELECTOR: &str = "Audio Selector 1";
/// The HLS audio group the video renditions point at.
const AUDIO_GROUP: &str = "program_audio";
/// Thumbnails: one every 10 s, at most 60.
const THUMB_EVERY_SECONDS: i32 = 10;
const THUMB_MAX: i32 = 60;

fn bits(b: u64) -> i32 {
    i32::try_from(b).unwrap_or(i32::MAX)
}

/// AWS's guidance for QVBR quality: 7 up to 720p, 8 for 1080p, 9 above.
fn qvbr_level(height: u32) -> i32 {
    match height {
        0..=720 => 7,
        721..=1080 => 8,
        _ => 9,
    }
}

fn video(r: &Rendition, gop_frames: u32) -> VideoDescription {
    let (num, den) = fraction(r.frame_rate);
    let (num, den) = (bits(u64::from(num)), bits(u64::from(den)));
    let short = r.width.min(r.height);
    let codec = match r.codec {
        Codec::H264 => VideoCodecSettings::builder()
            .codec(VideoCodec::H264)
            .h264_settings(
                H264Settings::builder()
                    .rate_control_mode(H264RateControlMode::Qvbr)
                    .max_bitrate(bits(r.bitrate))
                    .qvbr_settings(
                        H264QvbrSettings::builder()
                            .qvbr_quality_level(qvbr_level(short))
                            .build(),
                    )
                    .codec_profile(if short >= 720 {
                        H264CodecProfile::High
                    } else {
                        H264CodecProfile::Main
                    })
                    .gop_size(f64::from(gop_frames))
                    .gop_size_units(H264GopSizeUnits::Frames)
                    .scene_change_detect(H264SceneChangeDetect::TransitionDetection)
                    .framerate_control(H264FramerateControl::Specified)
                    .framerate_numerator(num)
                    .framerate_denominator(den)
                    .build(),
            ),
        Codec::H265 => VideoCodecSettings::builder()
            .codec(VideoCodec::H265)
            .h265_settings(
                H265Settings::builder()
                    .rate_control_mode(H265RateControlMode::Qvbr)
                    .max_bitrate(bits(r.bitrate))
                    .qvbr_settings(
                        H265QvbrSettings::builder()
                            .qvbr_quality_level(qvbr_level(short))
                            .build(),
                    )
                    .codec_profile(H265CodecProfile::MainMain)
                    .write_mp4_packaging_type(H265WriteMp4PackagingType::Hvc1)
                    .gop_size(f64::from(gop_frames))
                    .gop_size_units(H265GopSizeUnits::Frames)
                    .scene_change_detect(H265SceneChangeDetect::TransitionDetection)
                    .framerate_control(H265FramerateControl::Specified)
                    .framerate_numerator(num)
                    .framerate_denominator(den)
                    .build(),
            ),
    };
    VideoDescription::builder()
        .width(bits(u64::from(r.width)))
        .height(bits(u64::from(r.height)))
        .codec_settings(codec.build())
        .build()
}

fn m3u8() -> ContainerSettings {
    ContainerSettings::builder()
        .container(ContainerType::M3U8)
        .m3u8_settings(M3u8Settings::builder().build())
        .build()
}

fn audio(bitrate: u64) -> AudioDescription {
    AudioDescription::builder()
        .audio_source_name(AUDIO_SELECTOR)
        .codec_settings(
            AudioCodecSettings::builder()
                .codec(AudioCodec::Aac)
                .aac_settings(
                    AacSettings::builder()
                        .bitrate(bits(bitrate))
                        .coding_mode(AacCodingMode::CodingMode20)
                        .sample_rate(48_000)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// One rendition's static key for an encrypted job: the rendition
/// (`720p`, `audio`), the gateway URL that releases it, the key.
pub struct JobKey {
    pub rendition: String,
    pub url: String,
    pub key: crate::protect::ClearKey,
}

/// `StaticKeyProvider` for one rendition: `StaticKeyValue` "a
/// 32-character hexidecimal string", `Url` the gateway's key URL (what the
/// `EXT-X-KEY` names), `KEYFORMAT` identity. No `ConstantInitializationVector`:
/// "If this parameter is not set then the Initialization Vector will
/// follow the segment number by default" — and the IV is left out of the
/// manifest, so players use the media sequence number (RFC 8216 §5.2).
fn encryption(k: &JobKey) -> HlsEncryptionSettings {
    let hex = crate::domain::hex(k.key.expose());
    HlsEncryptionSettings::builder()
        .encryption_method(HlsEncryptionType::Aes128)
        .r#type(HlsKeyProviderType::StaticKey)
        .initialization_vector_in_manifest(HlsInitializationVectorInManifest::Exclude)
        .static_key_provider(
            StaticKeyProvider::builder()
                .static_key_value(hex)
                .url(&k.url)
                .key_format("identity")
                .key_format_versions("1")
                .build(),
        )
        .build()
}

/// An HLS output group writing `{destination}.m3u8` and, beside it, each
/// output's manifest and segments (`SINGLE_DIRECTORY`).
fn hls_group(
    name: &str,
    destination: String,
    plan: &Plan,
    outputs: Vec<Output>,
    key: Option<&JobKey>,
) -> OutputGroup {
    let settings = HlsGroupSettings::builder()
        .destination(destination)
        .directory_structure(HlsDirectoryStructure::SingleDirectory)
        .segment_length(bits(u64::from(plan.segment_seconds)))
        .min_segment_length(0)
        .segment_control(HlsSegmentControl::SegmentedFiles)
        .output_selection(HlsOutputSelection::ManifestsAndSegments)
        .codec_specification(HlsCodecSpecification::Rfc4281)
        .stream_inf_resolution(HlsStreamInfResolution::Include)
        .manifest_duration_format(HlsManifestDurationFormat::Integer)
        .set_encryption(key.map(encryption));
    OutputGroup::builder()
        .name(name)
        .output_group_settings(
            OutputGroupSettings::builder()
                .r#type(OutputGroupType::HlsGroupSettings)
                .hls_group_settings(settings.build())
                .build(),
        )
        .set_outputs(Some(outputs))
        .build()
}

/// The job's settings: `input` (`s3://…`) encoded into `output`
/// (`s3://bucket/assets/{id}/v{n}/`) as the plan says.
///
/// Clear (`keys` empty): one HLS group writing `hls/master.m3u8` with every
/// rendition beside it (playgate moves them into a directory each on
/// COMPLETE, `pipeline::layout`). Encrypted: an HLS group's encryption is
/// one key for all its outputs, so each rendition gets a group of its own
/// (`hls/{rendition}/master.m3u8`, its manifest and segments beside it),
/// keyed with its own key; no I-frame manifests (byte ranges of encrypted
/// segments do not decrypt on their own); the audio group's output is an
/// audio-only variant; playgate writes `hls/master.m3u8` from the groups'
/// masters on COMPLETE (`pipeline::layout::compose_master`).
pub fn job_settings(plan: &Plan, input: &str, output: &str, keys: &[JobKey]) -> JobSettings {
    let output = output.trim_end_matches('/');
    let encrypted = !keys.is_empty();
    let key_of = |r: &str| keys.iter().find(|k| k.rendition == r);
    let mut hls = Vec::new();
    for (r, gop) in plan.renditions.iter().zip(&plan.gop_frames) {
        let mut settings = HlsSettings::builder().i_frame_only_manifest(if encrypted {
            HlsIFrameOnlyManifest::Exclude
        } else {
            HlsIFrameOnlyManifest::Include
        });
        // The video side names the audio groups it plays with
        // (`audioRenditionSets`: "List all the audio groups that are used
        // with the video output stream"); `audioGroupId` is the audio
        // output's own group. Only within one group: an encrypted job's
        // audio is in a group of its own.
        if plan.audio_bitrate.is_some() && !encrypted {
            settings = settings.audio_rendition_sets(AUDIO_GROUP);
        }
        hls.push((
            r.name.clone(),
            Output::builder()
                .name_modifier(format!("_{}", r.name))
                .container_settings(m3u8())
                .video_description(video(r, *gop))
                .output_settings(
                    OutputSettings::builder()
                        .hls_settings(settings.build())
                        .build(),
                )
                .build(),
        ));
    }
    if let Some(rate) = plan.audio_bitrate {
        let track = if encrypted {
            HlsAudioTrackType::AudioOnlyVariantStream
        } else {
            HlsAudioTrackType::AlternateAudioAutoSelectDefault
        };
        hls.push((
            "audio".to_owned(),
            Output::builder()
                .name_modifier("_audio")
                .container_settings(m3u8())
                .audio_descriptions(audio(rate))
                .output_settings(
                    OutputSettings::builder()
                        .hls_settings(
                            HlsSettings::builder()
                                .audio_group_id(AUDIO_GROUP)
                                .audio_track_type(track)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        ));
    }
    let mut groups: Vec<OutputGroup> = if encrypted {
        hls.into_iter()
            .map(|(name, o)| {
                hls_group(
                    &format!("HLS {name}"),
                    format!("{output}/hls/{name}/master"),
                    plan,
                    vec![o],
                    key_of(&name),
                )
            })
            .collect()
    } else {
        vec![hls_group(
            "HLS",
            format!("{output}/hls/master"),
            plan,
            hls.into_iter().map(|(_, o)| o).collect(),
            None,
        )]
    };
    // Thumbnails from the smallest rung (its size keeps them light).
    if let Some(small) = plan.renditions.first() {
        let capture = VideoDescription::builder()
            .width(bits(u64::from(small.width)))
            .height(bits(u64::from(small.height)))
            .codec_settings(
                VideoCodecSettings::builder()
                    .codec(VideoCodec::FrameCapture)
                    .frame_capture_settings(
                        FrameCaptureSettings::builder()
                            .framerate_numerator(1)
                            .framerate_denominator(THUMB_EVERY_SECONDS)
                            .max_captures(THUMB_MAX)
                            .quality(80)
                            .build(),
                    )
                    .build(),
            )
            .build();
        groups.push(
            OutputGroup::builder()
                .name("Thumbnails")
                .output_group_settings(
                    OutputGroupSettings::builder()
                        .r#type(OutputGroupType::FileGroupSettings)
                        .file_group_settings(
                            FileGroupSettings::builder()
                                .destination(format!("{output}/thumbs/thumb"))
                                .build(),
                        )
                        .build(),
                )
                .outputs(
                    Output::builder()
                        .container_settings(
                            ContainerSettings::builder()
                                .container(ContainerType::Raw)
                                .build(),
                        )
                        .video_description(capture)
                        .build(),
                )
                .build(),
        );
    }
    let mut source = Input::builder()
        .file_input(input)
        .video_selector(VideoSelector::builder().rotate(InputRotate::Auto).build())
        .timecode_source(InputTimecodeSource::Zerobased);
    if plan.audio_bitrate.is_some() {
        source = source.audio_selectors(
            AUDIO_SELECTOR,
            AudioSelector::builder()
                .default_selection(AudioDefaultSelection::Default)
                .build(),
        );
    }
    JobSettings::builder()
        .inputs(source.build())
        .set_output_groups(Some(groups))
        .build()
}

/// The idempotency token of a job: its id (asset + attempt), or a hash of
/// it when longer than MediaConvert's 64 characters.
pub fn request_token(job: &Job) -> String {
    let id = job.id.as_str();
    if id.len() <= 64 {
        return id.to_owned();
    }
    let hash = openssl::sha::sha256(id.as_bytes());
    format!("pg-{}", &crate::domain::hex(&hash)[..40])
}

/// `userMetadata.version` as a number.
pub fn version_of(meta: Option<&std::collections::HashMap<String, String>>) -> Option<u32> {
    meta?.get("version")?.parse().ok()
}

/// Why a job could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// MediaConvert (or the way to it) is unavailable, throttling or
    /// failing: the job stays SUBMITTED and is submitted again later.
    Retry(String),
    /// The request itself is wrong, or the source is: the job fails.
    Fail(String),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Retry(why) | SubmitError::Fail(why) => f.write_str(why),
        }
    }
}

/// A MediaConvert client on the regional endpoint, with the role and
/// queue jobs run under.
pub struct MediaConvert {
    client: Client,
    role: String,
    queue: Option<String>,
    source_bucket: String,
    output_bucket: String,
}

impl MediaConvert {
    pub fn new(sdk: &aws_config::SdkConfig, aws: &crate::config::AwsConfig) -> Self {
        let config = aws_sdk_mediaconvert::config::Builder::from(sdk)
            .endpoint_url(&aws.mediaconvert_endpoint)
            .build();
        MediaConvert {
            client: Client::from_conf(config),
            role: aws.mediaconvert_role_arn.clone(),
            queue: aws.mediaconvert_queue_arn.clone(),
            source_bucket: aws.source_bucket.clone(),
            output_bucket: aws.output_bucket.clone(),
        }
    }

    /// Creates the job that encodes `source_key` for `job` into
    /// `v{job.version}`; MediaConvert's job id and the version that job
    /// writes. The same job submitted again carries the same
    /// `ClientRequestToken`, which MediaConvert honours only "within one
    /// minute of a successful request" (CreateJob, the API model): within
    /// it the answer is the original job, which may write an earlier
    /// version — hence the version read back from its `userMetadata`.
    pub async fn submit(
        &self,
        job: &Job,
        source_key: &str,
        plan: &Plan,
        keys: &[JobKey],
    ) -> Result<(String, u32), SubmitError> {
        let input = format!("s3://{}/{}", self.source_bucket, source_key);
        let output = format!(
            "s3://{}/assets/{}/v{}/",
            self.output_bucket, job.asset_id, job.version
        );
        let out = self
            .client
            .create_job()
            .role(&self.role)
            .set_queue(self.queue.clone())
            .client_request_token(request_token(job))
            .user_metadata("app", APP)
            .user_metadata("asset_id", job.asset_id.as_str())
            .user_metadata("job_id", job.id.as_str())
            .user_metadata("version", job.version.to_string())
            .status_update_interval(StatusUpdateInterval::Seconds10)
            .settings(job_settings(plan, &input, &output, keys))
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_mediaconvert::error::SdkError;
                let why = format!("MediaConvert CreateJob: {}", said(&e));
                // The SDK has already retried these with backoff.
                let transient = match &e {
                    SdkError::ServiceError(se) => {
                        let status = se.raw().status().as_u16();
                        status >= 500 || status == 429
                    }
                    SdkError::TimeoutError(_)
                    | SdkError::DispatchFailure(_)
                    | SdkError::ResponseError(_) => true,
                    _ => false,
                };
                if transient {
                    SubmitError::Retry(why)
                } else {
                    SubmitError::Fail(why)
                }
            })?;
        let created = out.job.ok_or_else(|| {
            SubmitError::Retry("MediaConvert CreateJob answered without a job".into())
        })?;
        let version = version_of(created.user_metadata.as_ref()).unwrap_or(job.version);
        created.id.map(|id| (id, version)).ok_or_else(|| {
            SubmitError::Retry("MediaConvert CreateJob answered without a job id".into())
        })
    }

    /// The MediaConvert job created for `job` by an earlier CreateJob whose
    /// answer was lost: ListJobs on the queue, newest first, matched by
    /// `userMetadata.job_id`, back to the job's creation (with a few
    /// minutes' slack) or 50 pages. Its id and the version it writes.
    pub async fn find(&self, job: &Job) -> Result<Option<(String, u32)>, String> {
        use aws_sdk_mediaconvert::types::Order;
        let mut next: Option<String> = None;
        for _ in 0..50 {
            let out = self
                .client
                .list_jobs()
                .set_queue(self.queue.clone())
                .order(Order::Descending)
                .max_results(20)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| format!("MediaConvert ListJobs: {}", said(&e)))?;
            let jobs = out.jobs.unwrap_or_default();
            for j in &jobs {
                let meta = j.user_metadata.as_ref();
                let ours = meta.is_some_and(|m| {
                    m.get("app").map(String::as_str) == Some(APP)
                        && m.get("job_id").map(String::as_str) == Some(job.id.as_str())
                });
                if let (true, Some(id)) = (ours, &j.id) {
                    return Ok(Some((id.clone(), version_of(meta).unwrap_or(job.version))));
                }
            }
            let oldest = jobs
                .iter()
                .filter_map(|j| j.created_at.map(|t| t.secs()))
                .min()
                .unwrap_or(0);
            let before_ours = oldest < i64::try_from(job.created_at).unwrap_or(i64::MAX) - 300;
            match out.next_token {
                Some(t) if !before_ours && !jobs.is_empty() => next = Some(t),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The job's state as the EventBridge event MediaConvert would have
    /// sent, for the reconciler to apply like any other.
    pub async fn status(&self, backend_id: &str) -> Result<Event, String> {
        let out = self
            .client
            .get_job()
            .id(backend_id)
            .send()
            .await
            .map_err(|e| format!("MediaConvert GetJob: {}", said(&e)))?;
        let job = out
            .job
            .ok_or_else(|| "MediaConvert GetJob answered without a job".to_owned())?;
        Ok(Event {
            detail_type: "MediaConvert Job State Change".into(),
            source: "aws.mediaconvert".into(),
            detail: Detail {
                job_id: job.id.unwrap_or_default(),
                status: job
                    .status
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                user_metadata: job.user_metadata.unwrap_or_default(),
                job_progress: Some(JobProgress {
                    job_percent_complete: job
                        .job_percent_complete
                        .and_then(|p| u8::try_from(p).ok()),
                }),
                error_code: job.error_code.map(i64::from),
                error_message: job.error_message,
                output_group_details: Vec::new(),
            },
        })
    }

    pub async fn cancel(&self, backend_id: &str) -> Result<(), String> {
        self.client
            .cancel_job()
            .id(backend_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("MediaConvert CancelJob: {}", said(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ladder::{LadderConfig, Source, plan};

    fn settings(source: &Source) -> (Plan, JobSettings) {
        let p = plan(source, &LadderConfig::default()).unwrap();
        let s = job_settings(
            &p,
            "s3://src/sources/a/in.mp4",
            "s3://out/assets/a/v3/",
            &[],
        );
        (p, s)
    }

    fn source(width: u32, height: u32, fps: f64, has_audio: bool) -> Source {
        Source {
            width,
            height,
            frame_rate: fps,
            bit_rate: Some(50_000_000),
            has_audio,
            duration: 60.0,
        }
    }

    #[test]
    fn an_encrypted_job_has_a_keyed_group_per_rendition() {
        let p = plan(&source(1280, 720, 30.0, true), &LadderConfig::default()).unwrap();
        let names: Vec<String> = p
            .renditions
            .iter()
            .map(|r| r.name.clone())
            .chain(["audio".to_owned()])
            .collect();
        let keys: Vec<JobKey> = names
            .iter()
            .enumerate()
            .map(|(i, r)| JobKey {
                rendition: r.clone(),
                url: format!("https://gw/v1/keys/a/k{i}"),
                key: crate::secret::Secret::new([i as u8 + 0xa0; 16]),
            })
            .collect();
        let s = job_settings(&p, "s3://src/in.mp4", "s3://out/assets/a/v3/", &keys);
        let hls: Vec<_> = s
            .output_groups()
            .iter()
            .filter(|g| {
                g.output_group_settings()
                    .and_then(|o| o.hls_group_settings())
                    .is_some()
            })
            .collect();
        assert_eq!(hls.len(), names.len(), "a group per rendition");
        for (i, (g, name)) in hls.iter().zip(&names).enumerate() {
            let settings = g
                .output_group_settings()
                .unwrap()
                .hls_group_settings()
                .unwrap();
            assert_eq!(
                settings.destination(),
                Some(format!("s3://out/assets/a/v3/hls/{name}/master").as_str())
            );
            let e = settings.encryption().unwrap();
            assert_eq!(e.encryption_method(), Some(&HlsEncryptionType::Aes128));
            assert_eq!(e.r#type(), Some(&HlsKeyProviderType::StaticKey));
            assert_eq!(e.constant_initialization_vector(), None);
            let k = e.static_key_provider().unwrap();
            assert_eq!(k.url(), Some(format!("https://gw/v1/keys/a/k{i}").as_str()));
            assert_eq!(
                k.static_key_value(),
                Some(format!("{:02x}", i + 0xa0).repeat(16).as_str())
            );
            let outputs = g.outputs();
            assert_eq!(outputs.len(), 1);
            let o = outputs[0]
                .output_settings()
                .unwrap()
                .hls_settings()
                .unwrap();
            assert_eq!(o.audio_rendition_sets(), None, "no group to point at");
            if name == "audio" {
                assert_eq!(
                    o.audio_track_type(),
                    Some(&HlsAudioTrackType::AudioOnlyVariantStream)
                );
            } else {
                assert_eq!(
                    o.i_frame_only_manifest(),
                    Some(&HlsIFrameOnlyManifest::Exclude)
                );
            }
        }
        let clear = job_settings(&p, "s3://src/in.mp4", "s3://out/assets/a/v3/", &[]);
        let first = clear.output_groups()[0]
            .output_group_settings()
            .unwrap()
            .hls_group_settings()
            .unwrap();
        assert!(first.encryption().is_none());
    }

    #[test]
    fn one_output_per_rung_plus_audio_and_thumbnails() {
        let (p, s) = settings(&source(1920, 1080, 30.0, true));
        let groups = s.output_groups();
        assert_eq!(groups.len(), 2);
        let hls = groups[0]
            .output_group_settings()
            .unwrap()
            .hls_group_settings()
            .unwrap();
        assert_eq!(hls.destination(), Some("s3://out/assets/a/v3/hls/master"));
        assert_eq!(
            hls.directory_structure(),
            Some(&HlsDirectoryStructure::SingleDirectory)
        );
        assert_eq!(hls.segment_length(), Some(6));
        let outputs = groups[0].outputs();
        let names: Vec<&str> = outputs.iter().filter_map(|o| o.name_modifier()).collect();
        assert_eq!(
            names,
            ["_270p", "_360p", "_480p", "_720p", "_1080p", "_audio"]
        );
        for (o, (r, gop)) in outputs.iter().zip(p.renditions.iter().zip(&p.gop_frames)) {
            let v = o.video_description().unwrap();
            assert_eq!(
                (v.width(), v.height()),
                (Some(r.width as i32), Some(r.height as i32))
            );
            let h = v.codec_settings().unwrap().h264_settings().unwrap();
            assert_eq!(h.rate_control_mode(), Some(&H264RateControlMode::Qvbr));
            assert_eq!(h.max_bitrate(), Some(r.bitrate as i32));
            assert_eq!(h.gop_size(), Some(f64::from(*gop)));
            let hls = o.output_settings().unwrap().hls_settings().unwrap();
            assert_eq!(
                (hls.audio_rendition_sets(), hls.audio_group_id()),
                (Some(AUDIO_GROUP), None),
                "a video output names the audio groups it plays with"
            );
            assert!(
                o.audio_descriptions().is_empty(),
                "video outputs carry no audio"
            );
        }
        // 270p is capped at 15 fps; the rest follow the source.
        let first = outputs[0]
            .video_description()
            .unwrap()
            .codec_settings()
            .unwrap();
        let h = first.h264_settings().unwrap();
        assert_eq!(
            (h.framerate_numerator(), h.framerate_denominator()),
            (Some(15), Some(1))
        );
        let audio_hls = outputs[5]
            .output_settings()
            .unwrap()
            .hls_settings()
            .unwrap();
        assert_eq!(
            (audio_hls.audio_group_id(), audio_hls.audio_rendition_sets()),
            (Some(AUDIO_GROUP), None),
            "the audio output is in the group"
        );
        let aac = outputs[5].audio_descriptions()[0]
            .codec_settings()
            .unwrap()
            .aac_settings()
            .unwrap();
        assert_eq!(aac.bitrate(), Some(160_000));
        let input = &s.inputs()[0];
        assert_eq!(input.file_input(), Some("s3://src/sources/a/in.mp4"));
        assert!(
            input
                .audio_selectors()
                .unwrap()
                .contains_key(AUDIO_SELECTOR)
        );
        let thumbs = groups[1]
            .output_group_settings()
            .unwrap()
            .file_group_settings()
            .unwrap();
        assert_eq!(
            thumbs.destination(),
            Some("s3://out/assets/a/v3/thumbs/thumb")
        );
    }

    #[test]
    fn no_audio_means_no_audio_output_or_group() {
        let (_, s) = settings(&source(1280, 720, 25.0, false));
        let outputs = s.output_groups()[0].outputs();
        assert!(outputs.iter().all(|o| o.audio_descriptions().is_empty()));
        assert!(outputs.iter().all(|o| o.name_modifier() != Some("_audio")));
        assert!(outputs.iter().all(|o| {
            o.output_settings()
                .unwrap()
                .hls_settings()
                .unwrap()
                .audio_group_id()
                .is_none()
        }));
        assert!(s.inputs()[0].audio_selectors().is_none());
    }

    #[test]
    fn uhd_rungs_are_hevc() {
        let (_, s) = settings(&source(3840, 2160, 60.0, true));
        let top = s.output_groups()[0]
            .outputs()
            .iter()
            .find(|o| o.name_modifier() == Some("_2160p"))
            .unwrap();
        let c = top.video_description().unwrap().codec_settings().unwrap();
        assert_eq!(c.codec(), Some(&VideoCodec::H265));
        assert_eq!(
            c.h265_settings()
                .unwrap()
                .qvbr_settings()
                .unwrap()
                .qvbr_quality_level(),
            Some(9)
        );
    }

    #[test]
    fn long_job_ids_make_a_short_token() {
        let mut job = Job {
            id: crate::domain::JobId::parse("a1-a1").unwrap(),
            asset_id: crate::domain::AssetId::parse("a1").unwrap(),
            attempt: 1,
            version: 1,
            state: crate::backends::store::JobState::Submitted,
            progress: 0,
            backend_job_id: None,
            error: None,
            created_at: 0,
            submissions: 0,
        };
        assert_eq!(request_token(&job), "a1-a1");
        let long = format!("{}-a2", "x".repeat(64));
        job.id = crate::domain::JobId::parse(&long).unwrap();
        let t = request_token(&job);
        assert_eq!(t.len(), 43);
        assert_eq!(t, request_token(&job), "stable");
    }
}
