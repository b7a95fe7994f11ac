use playgate::backends::store::{
    Asset, AssetStatus, Expect, Job, JobState, Kind, Store, StoreError, StoreExt,
};
use playgate::domain::{AssetId, JobId, TierName};
use playgate::engine::tiers::TierRules;
use serde_json::json;
use std::sync::Arc;

pub async fn run_all(s: Arc<dyn Store>) {
    check_passes(&*s).await;
    create_read_update_delete(&*s).await;
    stale_writes_conflict(&*s).await;
    list_pages_in_id_order(&*s).await;
    typed_records_round_trip(&*s).await;
    concurrent_creates_have_one_winner(s.clone()).await;
}

async fn check_passes(s: &dyn Store) {
    s.check().await.unwrap();
}

async fn create_read_update_delete(s: &dyn Store) {
    assert!(s.get(Kind::Asset, "crud").await.unwrap().is_none());
    let r1 = s
        .put(Kind::Asset, "crud", &json!({"v": 1}), Expect::Absent)
        .await
        .unwrap();
    assert_eq!(r1, 1);
    let got = s.get(Kind::Asset, "crud").await.unwrap().unwrap();
    assert_eq!((got.revision, got.body.clone()), (1, json!({"v": 1})));
    let r2 = s
        .put(Kind::Asset, "crud", &json!({"v": 2}), Expect::Revision(1))
        .await
        .unwrap();
    assert_eq!(r2, 2);
    // Kinds are separate namespaces.
    assert!(s.get(Kind::Job, "crud").await.unwrap().is_none());
    assert!(
        s.delete(Kind::Asset, "crud", Expect::Revision(2))
            .await
            .unwrap()
    );
    assert!(!s.delete(Kind::Asset, "crud", Expect::Any).await.unwrap());
    assert!(s.get(Kind::Asset, "crud").await.unwrap().is_none());
}

async fn stale_writes_conflict(s: &dyn Store) {
    s.put(Kind::Tier, "stale", &json!({"a": 1}), Expect::Absent)
        .await
        .unwrap();
    let again = s
        .put(Kind::Tier, "stale", &json!({"a": 9}), Expect::Absent)
        .await;
    assert!(matches!(
        again,
        Err(StoreError::Conflict {
            expected: Expect::Absent
        })
    ));
    let stale = s
        .put(Kind::Tier, "stale", &json!({"a": 9}), Expect::Revision(7))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })));
    let stale_delete = s.delete(Kind::Tier, "stale", Expect::Revision(7)).await;
    assert!(matches!(stale_delete, Err(StoreError::Conflict { .. })));
    // Nothing was half-written.
    let r = s.get(Kind::Tier, "stale").await.unwrap().unwrap();
    assert_eq!((r.revision, r.body), (1, json!({"a": 1})));
    let missing = s
        .put(Kind::Tier, "never", &json!({}), Expect::Revision(1))
        .await;
    assert!(matches!(missing, Err(StoreError::Conflict { .. })));
    s.delete(Kind::Tier, "stale", Expect::Any).await.unwrap();
}

async fn list_pages_in_id_order(s: &dyn Store) {
    for id in ["p-c", "p-a", "p-e", "p-b", "p-d"] {
        s.put(Kind::Job, id, &json!({"id": id}), Expect::Absent)
            .await
            .unwrap();
    }
    let page1: Vec<String> = s
        .list(Kind::Job, None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page1, ["p-a", "p-b"]);
    let page2: Vec<String> = s
        .list(Kind::Job, Some("p-b"), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page2, ["p-c", "p-d"]);
    let rest: Vec<String> = s
        .list(Kind::Job, Some("p-d"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(rest, ["p-e"]);
    for id in ["p-a", "p-b", "p-c", "p-d", "p-e"] {
        s.delete(Kind::Job, id, Expect::Any).await.unwrap();
    }
}

async fn typed_records_round_trip(s: &dyn Store) {
    let asset = Asset {
        id: AssetId::parse("bbb").unwrap(),
        title: Some("Big Buck Bunny".into()),
        min_tier: Some(TierName::parse("premium").unwrap()),
        status: AssetStatus::Ready,
        current_version: Some(2),
        renditions: vec!["720p".into(), "1080p".into()],
        thumbnails: Vec::new(),
        failure: None,
        playability: None,
        source: None,
        // The wrapped form only (what `protect` stores).
        content_keys: vec![playgate::protect::ContentKey {
            id: "0123456789abcdef0123456789abcdef".into(),
            version: 2,
            rendition: "720p".into(),
            wrapped: "AAECAw==".into(),
            wrapper: "local:abcdef".into(),
        }],
        created_at: 1,
    };
    let rev = s.put_asset(&asset, Expect::Absent).await.unwrap();
    let got = s.get_asset(&asset.id).await.unwrap().unwrap();
    assert_eq!((got.value, got.revision), (asset, rev));

    let job = Job {
        id: JobId::parse("job-1").unwrap(),
        asset_id: AssetId::parse("bbb").unwrap(),
        attempt: 1,
        version: 2,
        state: JobState::Progressing,
        progress: 40,
        backend_job_id: Some("1700000000000-abc".into()),
        error: None,
        created_at: 2,
        submissions: 0,
    };
    s.put_job(&job, Expect::Absent).await.unwrap();
    assert_eq!(s.get_job(&job.id).await.unwrap().unwrap().value, job);

    let name = TierName::parse("contract").unwrap();
    let rules = TierRules {
        max_height: Some(720),
        ..Default::default()
    };
    s.put_tier(&name, &rules, Expect::Absent).await.unwrap();
    let tiers = s.list_tiers().await.unwrap();
    assert!(tiers.iter().any(|(n, v)| n == &name && v.value == rules));
    // Seeding never overwrites.
    let other = TierRules {
        max_height: Some(144),
        ..Default::default()
    };
    let inserted = s.seed_tiers([(&name, &other)]).await.unwrap();
    assert!(inserted.is_empty());
    assert_eq!(s.get_tier(&name).await.unwrap().unwrap().value, rules);
}

async fn concurrent_creates_have_one_winner(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.put(Kind::Asset, "race", &json!({"writer": i}), Expect::Absent)
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
}

pub async fn two_handles_see_each_other(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.put(
        Kind::Tier,
        "shared",
        &json!({"max_height": 1}),
        Expect::Absent,
    )
    .await
    .unwrap();
    let seen = b.get(Kind::Tier, "shared").await.unwrap().unwrap();
    assert_eq!(seen.body, json!({"max_height": 1}));
    b.put(
        Kind::Tier,
        "shared",
        &json!({"max_height": 2}),
        Expect::Revision(1),
    )
    .await
    .unwrap();
    let stale = a
        .put(
            Kind::Tier,
            "shared",
            &json!({"max_height": 3}),
            Expect::Revision(1),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })));
}
