//! ffprobe and ffmpeg as child processes that cannot outlive their
//! welcome: each runs as the leader of its own process group, and stopping
//! it signals the whole group (`SIGTERM`, then `SIGKILL` after a grace
//! period; ffmpeg blocked in a read ignores `SIGTERM`). Dropping a
//! `Group` kills what is left of it.
//!
//! `output` runs a command to its end under a wall-clock limit.

use std::time::Duration;

/// How long a stopped process group has between `SIGTERM` and `SIGKILL`.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// A child process leading its own process group.
pub struct Group {
    child: tokio::process::Child,
    pgid: Option<rustix::process::Pid>,
}

impl Group {
    /// Spawns `cmd` in a new process group (`setpgid(0, 0)`).
    pub fn spawn(cmd: &mut tokio::process::Command) -> std::io::Result<Self> {
        let child = cmd.process_group(0).kill_on_drop(true).spawn()?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|id| *id > 1)
            .and_then(rustix::process::Pid::from_raw);
        Ok(Group { child, pgid })
    }

    pub fn child(&mut self) -> &mut tokio::process::Child {
        &mut self.child
    }

    fn signal(&self, sig: rustix::process::Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH: the group is gone already.
            let _ = rustix::process::kill_process_group(pgid, sig);
        }
    }

    /// Stops the whole group: `SIGTERM`, up to `grace` for the leader to
    /// exit, then `SIGKILL` to whatever of the group remains.
    pub async fn stop(&mut self, grace: Duration) {
        self.signal(rustix::process::Signal::TERM);
        let _ = tokio::time::timeout(grace, self.child.wait()).await;
        self.signal(rustix::process::Signal::KILL);
        let _ = self.child.wait().await;
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::KILL);
    }
}

/// What a command printed, and how it ended.
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Spawn(std::io::Error),
    #[error("took longer than its limit of {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
}

/// Runs `cmd` (stdin closed, output captured) for at most `limit`; past
/// it the process group is stopped.
pub async fn output(
    cmd: &mut tokio::process::Command,
    limit: Duration,
    grace: Duration,
) -> Result<Output, RunError> {
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut group = Group::spawn(cmd).map_err(RunError::Spawn)?;
    let mut out = group.child().stdout.take();
    let mut err = group.child().stderr.take();
    let read = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let stdout = async {
            if let Some(s) = out.as_mut() {
                let _ = s.read_to_end(&mut o).await;
            }
        };
        let stderr = async {
            if let Some(s) = err.as_mut() {
                let _ = s.read_to_end(&mut e).await;
            }
        };
        tokio::join!(stdout, stderr);
        (o, e)
    };
    let run = async {
        let (stdout, stderr) = read.await;
        let status = group.child().wait().await;
        (status, stdout, stderr)
    };
    match tokio::time::timeout(limit, run).await {
        Ok((status, stdout, stderr)) => Ok(Output {
            status: status.map_err(RunError::Spawn)?,
            stdout,
            stderr,
        }),
        Err(_) => {
            group.stop(grace).await;
            Err(RunError::TimedOut(limit))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        // A zombie is dead for this purpose; only its parent could reap it.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    /// A shell that ignores SIGTERM, with a grandchild: both are gone after
    /// the limit and the grace period.
    #[tokio::test]
    async fn a_group_that_ignores_sigterm_is_killed_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(format!(
            "trap '' TERM; sleep 60 & echo $! > {}; wait; wait",
            pidfile.display()
        ));
        let started = std::time::Instant::now();
        let r = output(
            &mut cmd,
            Duration::from_millis(500),
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(r, Err(RunError::TimedOut(_))), "timed out");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("the shell wrote its child's pid")
            .trim()
            .parse()
            .expect("a pid");
        for _ in 0..50 {
            if !alive(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the grandchild {pid} survived");
    }

    #[tokio::test]
    async fn a_quick_command_gives_its_output() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg("echo out; echo err >&2; exit 3");
        let o = output(&mut cmd, Duration::from_secs(10), KILL_GRACE)
            .await
            .expect("runs");
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        assert_eq!(o.status.code(), Some(3));
    }
}
