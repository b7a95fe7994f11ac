//! The moto server for tests: S3, DynamoDB (and more) on a free loopback
//! port, started per test and stopped when dropped. Shared by test
//! binaries through `#[path]`.
//!
//! moto keeps its state in memory, so a killed server comes back empty.
//! A server started with `moto_recording` writes every request it serves
//! to a file; `moto_replaying` starts a new server that re-runs it, which
//! gives it back the dead one's buckets, objects and tables (what AWS's
//! durability gives a client after an outage).
#![allow(dead_code)]

use std::path::Path;

/// The moto server on a free loopback port, stopped (SIGKILL) when dropped.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn moto() -> Option<Moto> {
    start(None)
}

/// A moto server that records every request to `file` (appending).
pub fn moto_recording(file: &Path) -> Option<Moto> {
    start(Some(file))
}

fn start(recording: Option<&Path>) -> Option<Moto> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import moto.server"])
        .output();
    if !crate::tools::installed_or_skip(probe.is_ok_and(|o| o.status.success()), "the moto server")
    {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new("python3");
    command
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(file) = recording {
        command
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", file);
    }
    let m = Moto {
        child: command.spawn().unwrap(),
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(m);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the moto server did not start on port {port}");
}

/// A recording moto server on a new port that has re-run `file` (the
/// recording of one that was killed): the same state, a new process.
pub async fn moto_replaying(file: &Path) -> Moto {
    let m = moto_recording(file).expect("moto was installed a moment ago");
    let replayed = reqwest::Client::new()
        .post(format!("{}/moto-api/recorder/replay-recording", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200, "moto replayed its recording");
    m
}

pub async fn moto_sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}
