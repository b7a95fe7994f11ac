//! Test media made with real ffmpeg. Shared through `#[path]`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `dir/name`: ffmpeg's lavfi `inputs` (e.g. a `testsrc2=…` picture and a
/// `sine=…` tone) as H.264 + AAC, as short as the shortest input.
pub fn ffmpeg_source(dir: &Path, name: &str, inputs: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
    for i in inputs {
        cmd.args(["-f", "lavfi", "-i", i]);
    }
    let run = cmd
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
            "-y",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// A `secs`-second 640×360 30 fps clip with a 440 Hz tone.
pub fn small_source(dir: &Path, secs: u32) -> PathBuf {
    ffmpeg_source(
        dir,
        "source.mp4",
        &[
            &format!("testsrc2=size=640x360:rate=30:duration={secs}"),
            &format!("sine=frequency=440:duration={secs}"),
        ],
    )
}

/// `scripts/make-clip.sh DIR SECS`: an encoded ladder in playgate's layout.
pub fn make_clip(dir: &Path, secs: u32) {
    let made = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-clip.sh"))
        .arg(dir)
        .arg(secs.to_string())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}
