//! The local job runner: a queue drained by at most
//! `pipeline.concurrency` encodes at once. A job probes the source, plans
//! the ladder, runs ffmpeg into a scratch directory, publishes the result
//! as the asset's next version (`publish::publish_dir`, record last) and
//! records every step through `jobs::apply`, so the job record only ever
//! moves forward. At start-up, jobs that were queued or running when the
//! process stopped are run again from scratch (their scratch directory is
//! emptied first).
//!
//! With the MediaConvert backend (mode aws) a job is probed (ffprobe on a
//! presigned GET of the source) and planned here, then created at
//! MediaConvert; its events arrive at `/hooks/mediaconvert`, and a
//! reconciler asks GetJob about jobs that have been silent for
//! `pipeline.reconcile_after`.

use super::jobs::{JobEvent, apply, is_terminal};
use super::mediaconvert::SubmitError;
use super::source::{Container, SNIFF_BYTES, SourceInput};
use crate::backends::storage::{ObjectKey, ObjectStore};
use crate::backends::store::{
    Asset, AssetStatus, Expect, Job, JobState, Kind, Store, StoreError, StoreExt,
};
use crate::config::Config;
use crate::domain::{AssetId, JobId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no such asset")]
    UnknownAsset,
    #[error("no such job")]
    UnknownJob,
    #[error("the asset has no uploaded source yet")]
    NoSource,
    #[error("the asset is deleted")]
    Deleted,
    #[error("{0}")]
    Backend(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who runs the encodes.
pub enum Backend {
    /// ffmpeg on this machine, sources and outputs on its disk.
    Local,
    /// MediaConvert; sources in the S3 source bucket (`sources` presigns
    /// the GET the probe reads).
    MediaConvert {
        mc: super::mediaconvert::MediaConvert,
        sources: Arc<crate::backends::storage::s3::S3Uploads>,
    },
}

pub struct Pipeline {
    config: Arc<Config>,
    backend: Backend,
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectStore>,
    clock: crate::clock::SharedClock,
    queue: tokio::sync::mpsc::UnboundedSender<JobId>,
    cancels: Mutex<HashMap<JobId, tokio::sync::watch::Sender<bool>>>,
    /// Told when a job ends (webhook, SNS).
    notifiers: Vec<Arc<dyn super::notify::Notifier>>,
    /// Jobs whose output is being moved into per-rendition directories
    /// (a duplicate COMPLETE meanwhile changes nothing).
    publishing: Mutex<std::collections::HashSet<JobId>>,
    /// Makes the content keys of encrypted encodes (`pipeline.encrypt`).
    protection: Option<Arc<crate::protect::Protection>>,
}

fn job_id(asset: &AssetId, attempt: u32) -> JobId {
    // An asset id is at most 64 characters, so this is a valid job id.
    JobId::parse(&format!("{asset}-a{attempt}")).unwrap_or_else(|_| {
        JobId::parse(&uuid::Uuid::new_v4().simple().to_string()).unwrap_or_else(|_| unreachable!())
    })
}

impl Pipeline {
    /// Starts the dispatcher; call `resume` once the state is built.
    pub fn start(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectStore>,
        clock: crate::clock::SharedClock,
        notifiers: Vec<Arc<dyn super::notify::Notifier>>,
        backend: Backend,
        protection: Option<Arc<crate::protect::Protection>>,
    ) -> Arc<Self> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<JobId>();
        let permits = Arc::new(tokio::sync::Semaphore::new(config.pipeline.concurrency));
        let p = Arc::new(Pipeline {
            config,
            backend,
            store,
            objects,
            clock,
            queue: tx,
            cancels: Mutex::new(HashMap::new()),
            notifiers,
            publishing: Mutex::new(Default::default()),
            protection,
        });
        let weak = Arc::downgrade(&p);
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let Some(p) = weak.upgrade() else { break };
                tokio::spawn(async move {
                    p.run(&id).await;
                    drop(permit);
                });
            }
        });
        if matches!(p.backend, Backend::MediaConvert { .. }) {
            let weak = Arc::downgrade(&p);
            let every = p.config.pipeline.reconcile_every;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(p) = weak.upgrade() else { break };
                    match p.reconcile().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(jobs = n, "reconciler: jobs changed after GetJob"),
                        Err(e) => tracing::warn!(reason = %e, "reconciler: could not list jobs"),
                    }
                }
            });
        }
        p
    }

    /// Queues again every job that was not finished when the process
    /// stopped (local), or that never reached MediaConvert (the others are
    /// MediaConvert's; the reconciler follows them).
    pub async fn resume(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for v in self.unfinished_jobs().await? {
            if v.value.backend_job_id.is_none() {
                tracing::info!(job = %v.value.id, "resuming an interrupted job from scratch");
                self.enqueue(v.value.id.clone());
                n += 1;
            }
        }
        Ok(n)
    }

    /// Every job record not in a final state, read page by page.
    async fn unfinished_jobs(
        &self,
    ) -> Result<Vec<crate::backends::store::Versioned<Job>>, StoreError> {
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .list_typed::<Job>(Kind::Job, after.as_deref(), 200)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.value.id.to_string());
            let full = page.len() == 200;
            out.extend(page.into_iter().filter(|v| !is_terminal(v.value.state)));
            if !full {
                break;
            }
        }
        Ok(out)
    }

    fn enqueue(&self, id: JobId) {
        let (tx, _) = tokio::sync::watch::channel(false);
        if let Ok(mut c) = self.cancels.lock() {
            c.insert(id.clone(), tx);
        }
        let _ = self.queue.send(id);
    }

    /// Starts an encode of the asset's source, or returns the one already
    /// queued or running (`false`: nothing new was started).
    pub async fn transcode(&self, asset_id: &AssetId) -> Result<(Job, bool), PipelineError> {
        let v = self
            .store
            .get_asset(asset_id)
            .await?
            .ok_or(PipelineError::UnknownAsset)?;
        let asset = v.value;
        if asset.status == AssetStatus::Deleted {
            return Err(PipelineError::Deleted);
        }
        if !asset.source.as_ref().is_some_and(|s| s.is_complete()) {
            return Err(PipelineError::NoSource);
        }
        let mut attempt = 1;
        // Above every version an earlier job wrote or may still write (a
        // MediaConvert job whose CreateJob answer was lost writes on).
        let mut highest = asset.current_version.unwrap_or(0);
        loop {
            let id = job_id(asset_id, attempt);
            match self.store.get_job(&id).await? {
                Some(j) if !is_terminal(j.value.state) => return Ok((j.value, false)),
                Some(j) => {
                    highest = highest.max(j.value.version);
                    attempt += 1;
                }
                None => break,
            }
        }
        let job = Job {
            id: job_id(asset_id, attempt),
            asset_id: asset_id.clone(),
            attempt,
            version: highest + 1,
            state: JobState::Submitted,
            progress: 0,
            backend_job_id: None,
            error: None,
            created_at: self.clock.now_epoch(),
            submissions: 0,
        };
        // Created only once: a concurrent request for the same attempt
        // loses the race here and reads the winner's job.
        match self.store.put_job(&job, Expect::Absent).await {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                let j = self
                    .store
                    .get_job(&job.id)
                    .await?
                    .ok_or(PipelineError::UnknownJob)?;
                return Ok((j.value, false));
            }
            Err(e) => return Err(e.into()),
        }
        self.set_asset(asset_id, |a| a.status = AssetStatus::Processing)
            .await?;
        self.enqueue(job.id.clone());
        Ok((job, true))
    }

    pub async fn job(&self, id: &JobId) -> Result<Job, PipelineError> {
        Ok(self
            .store
            .get_job(id)
            .await?
            .ok_or(PipelineError::UnknownJob)?
            .value)
    }

    /// Cancels a queued or running job (a finished one is returned as is).
    pub async fn cancel(&self, id: &JobId) -> Result<Job, PipelineError> {
        let job = self.job(id).await?;
        if let (Backend::MediaConvert { mc, .. }, Some(backend), false) =
            (&self.backend, &job.backend_job_id, is_terminal(job.state))
        {
            // Only a job MediaConvert stopped is recorded as canceled.
            mc.cancel(backend).await.map_err(PipelineError::Backend)?;
            self.restore_after_cancel(&job.asset_id).await?;
        }
        if let Some(tx) = self.cancels.lock().ok().and_then(|c| c.get(id).cloned()) {
            // `send` drops the value when nobody listens yet; this keeps it.
            tx.send_replace(true);
        }
        Ok(self
            .record(&job.id, JobEvent::Canceled)
            .await?
            .unwrap_or(job))
    }

    /// Applies `event` to the stored job; `None` when it changed nothing.
    async fn record(&self, id: &JobId, event: JobEvent) -> Result<Option<Job>, StoreError> {
        for _ in 0..5 {
            let Some(v) = self.store.get_job(id).await? else {
                return Ok(None);
            };
            let Some(next) = apply(&v.value, &event) else {
                return Ok(None);
            };
            match self
                .store
                .put_job(&next, Expect::Revision(v.revision))
                .await
            {
                Ok(_) => return Ok(Some(next)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable("job record kept changing".into()))
    }

    /// An encode failed: the asset says why, and is `failed` unless an
    /// earlier version still plays (then it is `ready` again).
    async fn mark_failed(&self, id: &AssetId, why: &str) -> Result<(), StoreError> {
        self.set_asset(id, |a| {
            a.failure = Some(why.to_owned());
            if a.status != AssetStatus::Deleted {
                a.status = if a.current_version.is_some() {
                    AssetStatus::Ready
                } else {
                    AssetStatus::Failed
                };
            }
        })
        .await
    }

    /// A canceled encode leaves the asset where it was: playable at its old
    /// version, or waiting for a transcode.
    async fn restore_after_cancel(&self, id: &AssetId) -> Result<(), StoreError> {
        self.set_asset(id, |a| {
            if a.status == AssetStatus::Processing {
                a.status = if a.current_version.is_some() {
                    AssetStatus::Ready
                } else {
                    AssetStatus::Uploaded
                };
            }
        })
        .await
    }

    async fn set_asset(&self, id: &AssetId, edit: impl Fn(&mut Asset)) -> Result<(), StoreError> {
        for _ in 0..5 {
            let Some(v) = self.store.get_asset(id).await? else {
                return Ok(());
            };
            let mut a = v.value;
            edit(&mut a);
            match self.store.put_asset(&a, Expect::Revision(v.revision)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable("asset record kept changing".into()))
    }

    async fn run(self: &Arc<Self>, id: &JobId) {
        if let Backend::MediaConvert { mc, sources } = &self.backend {
            return self.submit(id, mc, sources).await;
        }
        let outcome = self.encode(id).await;
        let cancelled = self.cancels.lock().ok().and_then(|mut c| c.remove(id));
        let work = self.config.pipeline.work_dir.join(id.as_str());
        let _ = tokio::fs::remove_dir_all(&work).await;
        let Ok(job) = self.job(id).await else { return };
        let event = match outcome {
            Ok(version) => {
                tracing::info!(job = %id, asset = %job.asset_id, version, "encode complete; asset ready");
                JobEvent::Complete
            }
            Err(_) if cancelled.is_some_and(|c| *c.borrow()) => {
                let _ = self.restore_after_cancel(&job.asset_id).await;
                JobEvent::Canceled
            }
            Err(why) => {
                tracing::warn!(job = %id, asset = %job.asset_id, reason = %why, "encode failed");
                let _ = self.mark_failed(&job.asset_id, &why).await;
                JobEvent::Error { message: why }
            }
        };
        match self.record(id, event).await {
            Err(e) => tracing::error!(job = %id, reason = %e, "could not record the job's end"),
            Ok(_) => self.announce(id).await,
        }
    }

    /// Probes and plans the source, then creates the MediaConvert job and
    /// records its id. A failure before MediaConvert has the job fails it
    /// with the reason.
    async fn submit(
        &self,
        id: &JobId,
        mc: &super::mediaconvert::MediaConvert,
        sources: &crate::backends::storage::s3::S3Uploads,
    ) {
        let job = match self.job(id).await {
            Ok(j) if !is_terminal(j.state) && j.backend_job_id.is_none() => Some(j),
            _ => None,
        };
        let created = match &job {
            Some(j) => Some(self.probe_and_create(j, mc, sources).await),
            None => None,
        };
        // Out of the queue only now, so the reconciler does not submit it twice.
        let cancel = self.cancels.lock().ok().and_then(|mut c| c.remove(id));
        let (Some(job), Some(created)) = (job, created) else {
            return;
        };
        match created {
            Ok((backend, version)) => {
                tracing::info!(job = %id, asset = %job.asset_id, mediaconvert_job = %backend, version, "MediaConvert job created");
                let accepted = JobEvent::Accepted {
                    backend_job_id: backend.clone(),
                    version: Some(version),
                };
                if let Err(e) = self.record(id, accepted).await {
                    tracing::error!(job = %id, reason = %e, "could not record the MediaConvert job id; the reconciler will resubmit with the same token");
                }
                let canceled = cancel.is_some_and(|c| *c.borrow())
                    || self
                        .job(id)
                        .await
                        .is_ok_and(|j| j.state == JobState::Canceled);
                if canceled {
                    let _ = mc.cancel(&backend).await;
                }
            }
            Err(SubmitError::Retry(why)) => {
                tracing::warn!(job = %id, asset = %job.asset_id, reason = %why, "MediaConvert unavailable; the reconciler looks the job up, then submits it again");
            }
            Err(SubmitError::Fail(why)) => {
                tracing::warn!(job = %id, asset = %job.asset_id, reason = %why, "transcode not started");
                let _ = self.mark_failed(&job.asset_id, &why).await;
                if let Ok(Some(_)) = self.record(id, JobEvent::Error { message: why }).await {
                    self.announce(id).await;
                }
            }
        }
    }

    async fn probe_and_create(
        &self,
        job: &Job,
        mc: &super::mediaconvert::MediaConvert,
        sources: &crate::backends::storage::s3::S3Uploads,
    ) -> Result<(String, u32), SubmitError> {
        use crate::backends::storage::StorageError;
        let key = self.source_key(job).await?;
        // A CreateJob was sent before: it may have made a job whose answer
        // never came. Find and adopt it rather than encode twice; the
        // request token alone guards only a minute.
        if job.submissions > 0 {
            match mc.find(job).await {
                Ok(Some((backend, version))) => {
                    tracing::info!(job = %job.id, mediaconvert_job = %backend, version, "found the MediaConvert job an earlier CreateJob made; adopting it");
                    return Ok((backend, version));
                }
                Ok(None) => {}
                Err(why) => return Err(SubmitError::Retry(why)),
            }
        }
        // The container from the source's own first bytes, before ffprobe
        // opens anything.
        let head = match sources.read_head(&key, SNIFF_BYTES + 1).await {
            Ok(h) => h,
            Err(StorageError::NotFound(_)) => {
                return Err(SubmitError::Fail(
                    "the uploaded source is gone from the source bucket".into(),
                ));
            }
            Err(e) => {
                return Err(SubmitError::Retry(format!(
                    "the source bucket did not answer: {e}"
                )));
            }
        };
        let whole = head.len() <= SNIFF_BYTES;
        let container = Container::sniff(&head[..head.len().min(SNIFF_BYTES)], whole)
            .map_err(|e| SubmitError::Fail(e.to_string()))?;
        let url = sources
            .presign_get(&key, std::time::Duration::from_secs(900))
            .await
            .map_err(|e| SubmitError::Fail(e.to_string()))?;
        let input = SourceInput::remote(&url.url, container)
            .map_err(|e| SubmitError::Fail(e.to_string()))?;
        let probed = match super::probe::probe(&input, self.config.pipeline.probe_timeout).await {
            Ok(p) => p,
            Err(e) => return Err(Self::probe_failure(e, &key, sources).await),
        };
        let plan = crate::engine::ladder::plan(&probed.source, &self.config.pipeline.ladder)
            .map_err(|e| SubmitError::Fail(e.to_string()))?;
        // Counted before it is sent. A resubmission writes a fresh version,
        // so it never writes the keys an unfound earlier job may be writing
        // (CloudFront keeps segments a year: they must never change).
        let version = if job.submissions > 0 {
            job.version + 1
        } else {
            job.version
        };
        let job = self
            .record(&job.id, JobEvent::Submitting { version })
            .await
            .map_err(|e| SubmitError::Retry(e.to_string()))?
            .ok_or_else(|| SubmitError::Retry("the job changed before CreateJob".into()))?;
        let keys = self.job_keys(&job, &plan).await?;
        mc.submit(&job, key.as_str(), &plan, &keys).await
    }

    /// An encrypted job's keys (none when `pipeline.encrypt` is off): one
    /// per rendition, stored (wrapped) on the asset for the job's version
    /// before MediaConvert is asked, so no output exists whose keys are
    /// not kept.
    async fn job_keys(
        &self,
        job: &Job,
        plan: &crate::engine::ladder::Plan,
    ) -> Result<Vec<super::mediaconvert::JobKey>, SubmitError> {
        if !self.config.pipeline.encrypt {
            return Ok(Vec::new());
        }
        let p = self.protection.as_ref().ok_or_else(|| {
            SubmitError::Fail("pipeline.encrypt is on but nothing wraps keys".into())
        })?;
        let names = plan
            .renditions
            .iter()
            .map(|r| r.name.clone())
            .chain(plan.audio_bitrate.map(|_| "audio".to_owned()));
        let (mut stored, mut keys) = (Vec::new(), Vec::new());
        for rendition in names {
            let (mut record, key) = p
                .new_key(&job.asset_id, &rendition)
                .await
                .map_err(|e| SubmitError::Retry(e.to_string()))?;
            record.version = job.version;
            keys.push(super::mediaconvert::JobKey {
                url: p.key_url(&job.asset_id, &record.id),
                rendition,
                key,
            });
            stored.push(record);
        }
        self.set_asset(&job.asset_id, |a| {
            a.content_keys.retain(|k| k.version != job.version);
            a.content_keys.extend(stored.iter().cloned());
        })
        .await
        .map_err(|e| SubmitError::Retry(format!("the content keys could not be stored: {e}")))?;
        Ok(keys)
    }

    /// A probe of the source failed: fatal for the job only when S3 served
    /// the source and ffprobe still could not read it. While S3 is away,
    /// the job waits (SUBMITTED) and the reconciler submits it again.
    async fn probe_failure(
        e: super::probe::ProbeError,
        key: &ObjectKey,
        sources: &crate::backends::storage::s3::S3Uploads,
    ) -> SubmitError {
        use super::probe::ProbeError;
        use crate::backends::storage::StorageError;
        if matches!(e, ProbeError::Unreachable(_) | ProbeError::Tool(_)) {
            return SubmitError::Retry(e.to_string());
        }
        // ffprobe words some fetch failures like bad files; S3 knows.
        match sources.head(key).await {
            Ok(_) => SubmitError::Fail(e.to_string()),
            Err(StorageError::NotFound(_)) => {
                SubmitError::Fail("the uploaded source is gone from the source bucket".into())
            }
            Err(StorageError::Unavailable(why)) => {
                SubmitError::Retry(format!("the source bucket did not answer: {why}"))
            }
        }
    }

    /// Asks MediaConvert about every unfinished job that has been silent
    /// for `pipeline.reconcile_after`, and applies the answer as if its
    /// event had arrived; a job that never reached MediaConvert is
    /// submitted again (with the same request token). How many changed.
    pub async fn reconcile(self: &Arc<Self>) -> Result<usize, StoreError> {
        let Backend::MediaConvert { mc, .. } = &self.backend else {
            return Ok(0);
        };
        let now = self.clock.now_epoch();
        let quiet = self.config.pipeline.reconcile_after.as_secs();
        let mut changed = 0;
        for v in self.unfinished_jobs().await? {
            let job = &v.value;
            if now.saturating_sub(v.updated_at) < quiet {
                continue;
            }
            let Some(backend) = &job.backend_job_id else {
                let queued = self.cancels.lock().is_ok_and(|c| c.contains_key(&job.id));
                if !queued {
                    tracing::info!(job = %job.id, "reconciler: the job never reached MediaConvert; submitting again");
                    self.enqueue(job.id.clone());
                }
                continue;
            };
            let event = match mc.status(backend).await {
                Ok(e) => e,
                Err(why) => {
                    tracing::warn!(job = %job.id, reason = %why, "reconciler: GetJob failed");
                    continue;
                }
            };
            match self.on_backend_event(&event).await {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = %job.id, reason = %e, "reconciler: could not apply GetJob's answer")
                }
            }
        }
        Ok(changed)
    }

    /// A backend's event (MediaConvert via EventBridge) for one of our
    /// jobs; `false` when it is not ours or changed nothing.
    pub async fn on_backend_event(
        self: &Arc<Self>,
        event: &super::events::Event,
    ) -> Result<bool, PipelineError> {
        use super::events::Action;
        let meta = &event.detail.user_metadata;
        let Some(id) = meta.get("job_id").and_then(|j| JobId::parse(j).ok()) else {
            return Ok(false);
        };
        let Some(mut job) = self.store.get_job(&id).await?.map(|v| v.value) else {
            return Ok(false);
        };
        // The event must name the job's asset, and the MediaConvert job once
        // its id is recorded. Before that, only a MediaConvert pipeline has
        // jobs an event may reach first; jobs ffmpeg runs here take none.
        let same_asset = meta
            .get("asset_id")
            .is_some_and(|a| a == job.asset_id.as_str());
        let mc = match &self.backend {
            Backend::MediaConvert { mc, .. } => Some(mc),
            Backend::Local => None,
        };
        if !same_asset || event.detail.job_id.is_empty() {
            tracing::warn!(job = %id, "an event names our job but not its asset; ignored");
            return Ok(false);
        }
        match job.backend_job_id.as_deref() {
            Some(b) if b == event.detail.job_id => {}
            Some(b) => {
                // A second MediaConvert job for our job (made by a CreateJob
                // whose answer was lost, then not found): it writes its own
                // version, so nothing of ours is touched. Stop it.
                tracing::warn!(job = %id, recorded = %b, duplicate = %event.detail.job_id, "an event from a duplicate MediaConvert job; canceling it");
                if let Some(mc) = mc
                    && !matches!(
                        event.detail.status.as_str(),
                        "COMPLETE" | "ERROR" | "CANCELED"
                    )
                {
                    let _ = mc.cancel(&event.detail.job_id).await;
                }
                return Ok(false);
            }
            None if mc.is_none() => {
                tracing::warn!(job = %id, "an event names a job ffmpeg runs here; ignored");
                return Ok(false);
            }
            None => {
                // The event overtook the CreateJob answer (or the answer was
                // lost): adopt the job it names, with the version it writes.
                let version = super::mediaconvert::version_of(Some(meta));
                let adopted = JobEvent::Accepted {
                    backend_job_id: event.detail.job_id.clone(),
                    version,
                };
                if let Some(j) = self.record(&id, adopted).await? {
                    tracing::info!(job = %id, mediaconvert_job = %event.detail.job_id, "adopted the MediaConvert job an event names");
                    job = j;
                }
            }
        }
        let changed = match event.action() {
            Action::Ignore => return Ok(false),
            Action::Apply(e) => {
                // The asset says why before the job says ERROR, so whoever
                // sees the failed job finds the reason.
                if let (JobEvent::Error { message }, Some(_)) = (&e, apply(&job, &e)) {
                    self.mark_failed(&job.asset_id, message).await?;
                }
                self.record(&id, e).await?.is_some()
            }
            Action::Complete { .. } => self.complete_from_output(&job).await?,
        };
        if changed {
            self.announce(&id).await;
        }
        Ok(changed)
    }

    /// The backend wrote `assets/{id}/v{n}/hls/`: read its master and
    /// playlists, make the layout one directory per rendition when it is
    /// not (`layout`: MediaConvert's is flat), then point the asset at
    /// `v{n}` with its renditions and complete the job. When files must
    /// move, that runs in the background (a long title is thousands of S3
    /// copies; EventBridge waits 5 s for an answer) and the job completes
    /// when it is done; a failure there leaves the job for the reconciler.
    async fn complete_from_output(self: &Arc<Self>, job: &Job) -> Result<bool, PipelineError> {
        use super::layout::{Inspection, LayoutError};
        if is_terminal(job.state) {
            return Ok(false);
        }
        if self.publishing.lock().is_ok_and(|p| p.contains(&job.id)) {
            return Ok(false);
        }
        let version = format!("assets/{}/v{}", job.asset_id, job.version);
        let fail = |why: String| JobEvent::Error {
            message: format!("the job completed but its output cannot be published: {why}"),
        };
        // An encrypted job wrote a master per rendition group, none for
        // the whole: write it (idempotent: a master there is kept).
        if let Err(e) = super::layout::compose_master(self.objects.as_ref(), &version).await {
            return match e {
                LayoutError::Storage(e) => Err(PipelineError::Backend(format!(
                    "cannot read the job's output yet: {e}"
                ))),
                e => Ok(self.record(&job.id, fail(e.to_string())).await?.is_some()),
            };
        }
        let moves = match super::layout::inspect(self.objects.as_ref(), &version).await {
            Ok(Inspection::Separable(renditions)) => {
                return self.publish_version(job, renditions).await;
            }
            Ok(Inspection::Moves(m)) => m,
            // S3 not answering is no verdict on the job: the hook answers
            // 503 (EventBridge delivers again) and the reconciler asks again.
            Err(LayoutError::Storage(e)) => {
                return Err(PipelineError::Backend(format!(
                    "cannot read the job's output yet: {e}"
                )));
            }
            Err(e) => {
                return Ok(self.record(&job.id, fail(e.to_string())).await?.is_some());
            }
        };
        if let Ok(mut p) = self.publishing.lock()
            && !p.insert(job.id.clone())
        {
            return Ok(false);
        }
        tracing::info!(job = %job.id, files = moves.len(), "the output is not one directory per rendition; moving it");
        let (me, job) = (self.clone(), job.clone());
        tokio::spawn(async move {
            let moved = super::layout::apply(me.objects.as_ref(), &moves).await;
            let outcome = match moved {
                Ok(done) => me.publish_version(&job, done.renditions).await.map(|_| ()),
                Err(LayoutError::Storage(e)) => Err(PipelineError::Backend(e.to_string())),
                Err(e) => me
                    .record(&job.id, fail(e.to_string()))
                    .await
                    .map(|_| ())
                    .map_err(PipelineError::from),
            };
            if let Ok(mut p) = me.publishing.lock() {
                p.remove(&job.id);
            }
            match outcome {
                Ok(()) => me.announce(&job.id).await,
                Err(e) => {
                    tracing::warn!(job = %job.id, reason = %e, "moving the output failed; the reconciler tries again");
                }
            }
        });
        Ok(true)
    }

    /// Points the asset at the job's version with `renditions` and
    /// completes the job.
    async fn publish_version(
        &self,
        job: &Job,
        mut renditions: Vec<String>,
    ) -> Result<bool, PipelineError> {
        renditions.sort();
        renditions.dedup();
        let version = job.version;
        let thumbnails = crate::pipeline::publish::thumbnails_of(
            self.objects.as_ref(),
            &format!("assets/{}/v{version}", job.asset_id),
        )
        .await
        .map_err(|e| PipelineError::Backend(e.to_string()))?;
        let playability = crate::pipeline::publish::report_for(
            self.store.as_ref(),
            self.objects.as_ref(),
            &job.asset_id,
            version,
            self.clock.now_epoch(),
        )
        .await
        .map_err(|e| PipelineError::Backend(e.to_string()))?;
        playability.log(&job.asset_id);
        self.set_asset(&job.asset_id, move |a| {
            if a.status == AssetStatus::Deleted {
                return;
            }
            if a.current_version.is_none_or(|v| v < version) {
                a.current_version = Some(version);
                a.renditions = renditions.clone();
                a.thumbnails = thumbnails.clone();
                a.playability = Some(playability.clone());
            }
            a.status = AssetStatus::Ready;
            a.failure = None;
        })
        .await?;
        Ok(self.record(&job.id, JobEvent::Complete).await?.is_some())
    }

    /// Notifies the job's end (log, webhook) as recorded.
    async fn announce(&self, id: &JobId) {
        let Ok(job) = self.job(id).await else { return };
        if !is_terminal(job.state) {
            return;
        }
        let asset = self
            .store
            .get_asset(&job.asset_id)
            .await
            .ok()
            .flatten()
            .map(|v| v.value);
        let complete = job.state == JobState::Complete;
        let status = serde_json::to_value(job.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        super::notify::send(
            &super::notify::Notification {
                asset_id: job.asset_id.to_string(),
                job_id: job.id.to_string(),
                status,
                renditions: if complete {
                    asset
                        .as_ref()
                        .map(|a| a.renditions.clone())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
                // The job's version, once the asset points at it.
                playability: asset
                    .and_then(|a| a.playability)
                    .filter(|p| complete && p.version == job.version),
                playback_path: complete.then(|| format!("/v1/play/{}/master.m3u8", job.asset_id)),
                error: job.error.clone(),
            },
            &self.notifiers,
            self.clock.now_epoch(),
        );
    }

    /// Where the job's asset keeps its uploaded source (a store that cannot
    /// answer is worth trying again; a missing source is not).
    async fn source_key(&self, job: &Job) -> Result<ObjectKey, SubmitError> {
        let asset = self
            .store
            .get_asset(&job.asset_id)
            .await
            .map_err(|e| SubmitError::Retry(e.to_string()))?
            .ok_or_else(|| SubmitError::Fail("the asset is gone".into()))?
            .value;
        let source = asset
            .source
            .as_ref()
            .ok_or_else(|| SubmitError::Fail("the asset has no source".into()))?;
        ObjectKey::parse(&source.key).map_err(|e| SubmitError::Fail(e.to_string()))
    }

    /// Probe, plan, encode, publish; the published version.
    async fn encode(self: &Arc<Self>, id: &JobId) -> Result<u32, String> {
        let job = self.job(id).await.map_err(|e| e.to_string())?;
        if is_terminal(job.state) {
            return Err("the job had already ended".into());
        }
        self.record(id, JobEvent::Progressing { progress: Some(0) })
            .await
            .map_err(|e| e.to_string())?;
        let key = self.source_key(&job).await.map_err(|e| e.to_string())?;
        let path = self
            .objects
            .local_path(&key)
            .ok_or("the local encoder needs the source on a local disk")?;
        let (head, whole) = super::source::head_of(&path)
            .await
            .map_err(|e| format!("the uploaded source cannot be read: {e}"))?;
        let container = Container::sniff(&head, whole).map_err(|e| e.to_string())?;
        let input = SourceInput::local(&path, container);
        let probed = super::probe::probe(&input, self.config.pipeline.probe_timeout)
            .await
            .map_err(|e| e.to_string())?;
        let plan = crate::engine::ladder::plan(&probed.source, &self.config.pipeline.ladder)
            .map_err(|e| e.to_string())?;
        let work = self.config.pipeline.work_dir.join(id.as_str());
        let cancel = self
            .cancels
            .lock()
            .ok()
            .and_then(|c| c.get(id).map(|tx| tx.subscribe()))
            .unwrap_or_else(|| tokio::sync::watch::channel(false).1);
        let progress = Arc::new(AtomicU8::new(0));
        let reporter = {
            let (p, me, id) = (progress.clone(), self.clone(), id.clone());
            tokio::spawn(async move {
                let mut told = 0;
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let now = p.load(Ordering::Relaxed);
                    if now > told {
                        told = now;
                        let _ = me
                            .record(
                                &id,
                                JobEvent::Progressing {
                                    progress: Some(now),
                                },
                            )
                            .await;
                    }
                }
            })
        };
        let encoded = super::ffmpeg::encode(
            &input,
            &plan,
            &work,
            probed.source.duration,
            self.config.pipeline.encode_limit(probed.source.duration),
            |pct| progress.store(pct, Ordering::Relaxed),
            cancel,
        )
        .await;
        reporter.abort();
        encoded.map_err(|e| e.to_string())?;
        // Encrypted before anything leaves the work directory: the clear
        // segments are never published.
        let keys = match (&self.protection, self.config.pipeline.encrypt) {
            (Some(p), true) => p
                .encrypt_dir(&job.asset_id, &work)
                .await
                .map_err(|e| format!("the encode could not be encrypted: {e}"))?,
            (None, true) => return Err("pipeline.encrypt is on but nothing wraps keys".into()),
            (_, false) => Vec::new(),
        };
        crate::pipeline::publish::publish_dir_with_keys(
            self.store.as_ref(),
            self.objects.as_ref(),
            &job.asset_id,
            None,
            &work,
            self.clock.now_epoch(),
            keys,
        )
        .await
        .map_err(|e| e.to_string())
    }
}
