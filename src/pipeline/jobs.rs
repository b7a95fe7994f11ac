//! The job state machine, pure: SUBMITTED → PROGRESSING → COMPLETE |
//! ERROR | CANCELED. Transitions only move forward; a terminal state never
//! changes; progress only grows. So a duplicate, late or out-of-order
//! event (MediaConvert's EventBridge delivery promises none of these) is
//! `None`: nothing to write.

use crate::backends::store::{Job, JobState};

/// What a backend reports about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// The backend accepted the job under this id (MediaConvert's job id),
    /// writing `version` (from the job's own `userMetadata.version`: a
    /// job found again after a lost answer may have been sent for an
    /// earlier version). Recorded once; a different id later changes
    /// nothing.
    Accepted {
        backend_job_id: String,
        version: Option<u32>,
    },
    /// A CreateJob request is about to be sent for `version`: counted, so
    /// a later resubmission knows one may have gone through. Only before
    /// a backend id is recorded.
    Submitting {
        version: u32,
    },
    /// Running; `progress` in percent when known.
    Progressing {
        progress: Option<u8>,
    },
    Complete,
    Error {
        message: String,
    },
    Canceled,
}

fn rank(s: JobState) -> u8 {
    match s {
        JobState::Submitted => 0,
        JobState::Progressing => 1,
        JobState::Complete | JobState::Error | JobState::Canceled => 2,
    }
}

pub fn is_terminal(s: JobState) -> bool {
    rank(s) == 2
}

/// The job after `event`, or `None` when the event changes nothing.
pub fn apply(job: &Job, event: &JobEvent) -> Option<Job> {
    if is_terminal(job.state) {
        return None;
    }
    let mut next = job.clone();
    match event {
        JobEvent::Accepted {
            backend_job_id,
            version,
        } => {
            if job.backend_job_id.is_some() {
                return None;
            }
            next.backend_job_id = Some(backend_job_id.clone());
            if let Some(v) = version {
                next.version = *v;
            }
            return Some(next);
        }
        JobEvent::Submitting { version } => {
            if job.backend_job_id.is_some() {
                return None;
            }
            next.submissions = job.submissions.saturating_add(1);
            next.version = *version;
            return Some(next);
        }
        JobEvent::Progressing { progress } => {
            let p = progress.unwrap_or(job.progress).min(99);
            if job.state == JobState::Progressing && p <= job.progress {
                return None;
            }
            next.state = JobState::Progressing;
            next.progress = p.max(job.progress);
        }
        JobEvent::Complete => {
            next.state = JobState::Complete;
            next.progress = 100;
        }
        JobEvent::Error { message } => {
            next.state = JobState::Error;
            next.error = Some(message.clone());
        }
        JobEvent::Canceled => next.state = JobState::Canceled,
    }
    (rank(next.state) > rank(job.state) || next.progress > job.progress).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssetId, JobId};
    use proptest::prelude::*;

    fn job() -> Job {
        Job {
            id: JobId::parse("j1").unwrap(),
            asset_id: AssetId::parse("a").unwrap(),
            attempt: 1,
            version: 1,
            state: JobState::Submitted,
            progress: 0,
            backend_job_id: None,
            error: None,
            created_at: 0,
            submissions: 0,
        }
    }

    fn event() -> impl Strategy<Value = JobEvent> {
        prop_oneof![
            ("[0-9]{1,4}", proptest::option::of(1u32..5)).prop_map(|(backend_job_id, version)| {
                JobEvent::Accepted {
                    backend_job_id,
                    version,
                }
            }),
            (1u32..5).prop_map(|version| JobEvent::Submitting { version }),
            proptest::option::of(0u8..=100).prop_map(|progress| JobEvent::Progressing { progress }),
            Just(JobEvent::Complete),
            "[a-z]{1,8}".prop_map(|message| JobEvent::Error { message }),
            Just(JobEvent::Canceled),
        ]
    }

    #[test]
    fn the_happy_path() {
        let j = apply(&job(), &JobEvent::Progressing { progress: Some(10) }).unwrap();
        assert_eq!((j.state, j.progress), (JobState::Progressing, 10));
        let j = apply(&j, &JobEvent::Progressing { progress: Some(60) }).unwrap();
        assert_eq!(j.progress, 60);
        let done = apply(&j, &JobEvent::Complete).unwrap();
        assert_eq!((done.state, done.progress), (JobState::Complete, 100));
    }

    #[test]
    fn the_backend_id_is_recorded_once_in_any_running_state() {
        let accepted = |b: &str| JobEvent::Accepted {
            backend_job_id: b.into(),
            version: None,
        };
        let j = apply(&job(), &accepted("1")).unwrap();
        assert_eq!(
            (j.state, j.backend_job_id.as_deref()),
            (JobState::Submitted, Some("1"))
        );
        assert_eq!(apply(&j, &accepted("1")), None);
        assert_eq!(apply(&j, &accepted("2")), None, "never replaced");
        // An event can overtake the CreateJob answer.
        let running = apply(&job(), &JobEvent::Progressing { progress: Some(5) }).unwrap();
        let j = apply(&running, &accepted("1")).unwrap();
        assert_eq!((j.state, j.progress), (JobState::Progressing, 5));
        let done = apply(&job(), &JobEvent::Complete).unwrap();
        assert_eq!(apply(&done, &accepted("1")), None);
    }

    #[test]
    fn submissions_are_counted_until_a_job_is_accepted_with_its_version() {
        let j = apply(&job(), &JobEvent::Submitting { version: 1 }).unwrap();
        let j = apply(&j, &JobEvent::Submitting { version: 3 }).unwrap();
        assert_eq!((j.submissions, j.version), (2, 3));
        let adopted = apply(
            &j,
            &JobEvent::Accepted {
                backend_job_id: "found".into(),
                version: Some(1),
            },
        )
        .unwrap();
        assert_eq!(
            (adopted.backend_job_id.as_deref(), adopted.version),
            (Some("found"), 1),
            "a job found again writes the version it was sent for"
        );
        assert_eq!(apply(&adopted, &JobEvent::Submitting { version: 4 }), None);
    }

    #[test]
    fn duplicate_late_and_out_of_order_events_change_nothing() {
        let j = apply(&job(), &JobEvent::Progressing { progress: Some(50) }).unwrap();
        assert_eq!(
            apply(&j, &JobEvent::Progressing { progress: Some(50) }),
            None
        );
        assert_eq!(
            apply(&j, &JobEvent::Progressing { progress: Some(20) }),
            None
        );
        assert_eq!(apply(&j, &JobEvent::Progressing { progress: None }), None);
        let done = apply(&j, &JobEvent::Complete).unwrap();
        for late in [
            JobEvent::Progressing { progress: Some(90) },
            JobEvent::Complete,
            JobEvent::Error {
                message: "late".into(),
            },
            JobEvent::Canceled,
        ] {
            assert_eq!(apply(&done, &late), None, "{late:?} after COMPLETE");
        }
        let failed = apply(
            &job(),
            &JobEvent::Error {
                message: "1010".into(),
            },
        )
        .unwrap();
        assert_eq!(apply(&failed, &JobEvent::Complete), None);
    }

    proptest! {
        /// Any event sequence: the state never goes back, progress never
        /// shrinks, and applying an event twice is the same as once.
        #[test]
        fn monotonic_and_idempotent(events in proptest::collection::vec(event(), 0..20)) {
            let mut j = job();
            for e in &events {
                if let Some(next) = apply(&j, e) {
                    prop_assert!(rank(next.state) >= rank(j.state));
                    prop_assert!(next.progress >= j.progress);
                    prop_assert!(j.backend_job_id.is_none() || next.backend_job_id == j.backend_job_id);
                    // Counting a CreateJob request is the one event that
                    // repeats by design.
                    if !matches!(e, JobEvent::Submitting { .. }) {
                        prop_assert_eq!(apply(&next, e), None);
                    }
                    j = next;
                }
            }
        }
    }
}
