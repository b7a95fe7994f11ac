//! The pipeline playgate fronts: probe a source, plan its ladder, run the
//! encode, track the job. This part is the local twin (ffprobe, ffmpeg);
//! MediaConvert arrives behind the same shapes.
//!
//! - `crate::engine::ladder`: which renditions to encode (pure);
//! - `source`: which container an upload is (its own first bytes) and how
//!   ffprobe/ffmpeg may open it (forced demuxer, protocol allow-list);
//! - `process`: child processes in their own group, under time limits;
//! - `probe`: what a source is (ffprobe's JSON);
//! - `jobs`: the job state machine (pure);
//! - `layout`: a published HLS tree made one directory per rendition;
//! - `ffmpeg`: one ffmpeg process writing every rendition in the layout.

pub mod events;
pub mod ffmpeg;
pub mod iframes;
pub mod jobs;
pub mod layout;
pub mod mediaconvert;
pub mod notify;
pub mod playability;
pub mod probe;
pub mod process;
pub mod publish;
pub mod runner;
pub mod source;
