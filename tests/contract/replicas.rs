//! Two replicas of playgate (mode aws) over one DynamoDB and one S3 (the
//! moto server), behind nginx round-robin on loopback, as production runs
//! them behind a load balancer.

use crate::gateway::Gateway;
use serde_json::Value;

/// nginx on a free loopback port, round-robin over `upstreams`, moving a
/// request to the next replica when one refuses connections; stopped when
/// dropped.
struct Nginx {
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("nginx.pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn nginx(dir: &std::path::Path, upstreams: &[&str]) -> Option<Nginx> {
    let installed = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok();
    if !crate::tools::installed_or_skip(installed, "nginx") {
        return None;
    }
    let port = crate::tools::free_port();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("server {};", u.trim_start_matches("http://")))
        .collect();
    let d = dir.display();
    let conf = format!(
        r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  upstream replicas {{ {servers} }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://replicas;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      proxy_set_header Host $host;
    }}
  }}
}}
"#
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let started = std::process::Command::new("nginx")
        .args(["-c"])
        .arg(dir.join("nginx.conf"))
        .args(["-p"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(Nginx {
        dir: dir.to_owned(),
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// A viewer's master from one replica and its media playlists from the
/// other work; a tier change made on one replica is enforced by both
/// within `server.tier_cache_ttl`; stopping one replica in the middle of
/// load loses no request nginx handed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_one_dynamodb_behind_round_robin() {
    let Some(m) = crate::moto::moto() else { return };
    let sdk = crate::moto::moto_sdk(&m.url).await;
    let (dynamo, s3) = crate::gateway::store_and_bucket(&sdk).await;
    let dir = tempfile::tempdir().unwrap();
    crate::gateway::publish_clip(&dynamo, &s3, dir.path()).await;

    let keys = dir.path().join("keys");
    let sections = "[tiers.mobile]\nrank = 5\nmax_height = 480\ndelivery = \"urls\"\n";
    let env = [("PLAYGATE__SERVER__TIER_CACHE_TTL", "1s")];
    let a = Gateway::start_in(&dir.path().join("a"), &keys, &m.url, sections, "", &env).await;
    let b = Gateway::start_in(&dir.path().join("b"), &keys, &m.url, sections, "", &env).await;
    let Some(lb) = nginx(&dir.path().join("nginx"), &[&a.base, &b.base]) else {
        return;
    };
    let c = reqwest::Client::new();

    // URL delivery: the master from A, every media playlist from B.
    let mobile = a.viewer_token("mobile");
    let master = c
        .get(format!("{}/v1/play/clip/master.m3u8", a.base))
        .bearer_auth(&mobile)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = "https://play.example.com/";
    let mut media: Vec<&str> = master.lines().filter(|l| l.starts_with(prefix)).collect();
    media.extend(master.lines().filter_map(|l| {
        let at = l.find("URI=\"")?;
        l[at + 5..]
            .split('"')
            .next()
            .filter(|u| u.starts_with(prefix))
    }));
    assert!(media.len() >= 3, "360p, 480p and audio: {master}");
    for u in &media {
        let on_b = u.replacen("https://play.example.com", &b.base, 1);
        let r = c.get(&on_b).send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{on_b}: {body}");
        assert!(
            body.contains("#EXTINF") && body.contains("Signature="),
            "{body}"
        );
    }

    // A tier change through A is enforced by A and B within the TTL.
    let free = a.viewer_token("free");
    let has_480 = |base: String, token: String| {
        let c = c.clone();
        async move {
            let body = c
                .get(format!("{base}/v1/play/clip/master.m3u8"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            body.contains("480p/")
        }
    };
    assert!(has_480(a.base.clone(), free.clone()).await);
    assert!(has_480(b.base.clone(), free.clone()).await);
    let etag = c
        .get(format!("{}/v1/tiers/free", a.base))
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let put = c
        .put(format!("{}/v1/tiers/free", a.base))
        .bearer_auth("admin-key")
        .header("if-match", etag)
        .json(&serde_json::json!({"max_height": 360}))
        .send()
        .await
        .unwrap();
    let status = put.status();
    let body: Value = put.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        !has_480(a.base.clone(), free.clone()).await,
        "A enforces the change"
    );
    assert!(
        !has_480(b.base.clone(), free.clone()).await,
        "B enforces the change"
    );

    // Load through nginx; A is stopped (SIGTERM) halfway. Every request
    // completes: those A accepted are drained, the rest go to B.
    let url = format!("{}/v1/play/clip/master.m3u8", lb.url);
    let waves = 20;
    let mut statuses = Vec::new();
    for wave in 0..waves {
        if wave == waves / 2 {
            std::process::Command::new("kill")
                .args(["-TERM", &a.pid().to_string()])
                .status()
                .unwrap();
        }
        let batch: Vec<_> = (0..25)
            .map(|_| {
                let (c, url, t) = (c.clone(), url.clone(), free.clone());
                tokio::spawn(async move {
                    c.get(url)
                        .bearer_auth(t)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        for t in batch {
            statuses.push(t.await.unwrap().map_err(|e| e.to_string()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let failed: Vec<_> = statuses
        .iter()
        .filter(|s| s.as_ref().ok() != Some(&200))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}\nA's log:\n{}",
        failed.len(),
        statuses.len(),
        &failed[..failed.len().min(5)],
        a.log()
    );
    assert!(
        a.log().contains("draining"),
        "A was stopped gracefully:\n{}",
        a.log()
    );
}
