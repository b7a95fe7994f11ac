//! DASH: MPD filtering for a tier (`mpd`). A pure library, like `hls`.

pub mod mpd;
