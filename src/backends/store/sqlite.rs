//! `Store` on SQLite (local mode): one file, WAL, migrations applied at
//! open. One connection behind a mutex, used from `spawn_blocking`; local
//! mode is one process, and WAL lets other processes (a second replica in
//! tests, `sqlite3` for an operator) read and write the same file safely.

use super::{Expect, Kind, Record, Store, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Schema changes, applied in order; `PRAGMA user_version` records how far.
const MIGRATIONS: &[&str] = &["CREATE TABLE records (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        body TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID;
    CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);"];

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// (device, inode) of the file we opened, to notice it being replaced.
    identity: (u64, u64),
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn now() -> u64 {
    crate::clock::Clock::now_epoch(&crate::clock::SystemClock)
}

fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path).map_err(unavailable)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        migrate(&mut conn)?;
        let identity = file_identity(path).map_err(unavailable)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            identity,
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Unavailable("sqlite connection poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("sqlite task: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(unavailable)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this playgate ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(unavailable)?;
        tx.execute_batch(m).map_err(unavailable)?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
    }
    Ok(())
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_record((id, revision, body, updated_at): (String, i64, String, i64)) -> StoreResult<Record> {
    let body =
        serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("{id}: {e}")))?;
    Ok(Record {
        id,
        revision: u64::try_from(revision).unwrap_or(0),
        body,
        updated_at: u64::try_from(updated_at).unwrap_or(0),
    })
}

fn current_revision(tx: &Connection, kind: Kind, id: &str) -> StoreResult<Option<u64>> {
    tx.query_row(
        "SELECT revision FROM records WHERE kind = ?1 AND id = ?2",
        params![kind.as_str(), id],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|o| o.map(|v| u64::try_from(v).unwrap_or(0)))
    .map_err(unavailable)
}

fn check_expect(found: Option<u64>, expect: Expect) -> StoreResult<()> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Absent => found.is_none(),
        Expect::Revision(r) => found == Some(r),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict { expected: expect })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn check(&self) -> StoreResult<()> {
        // The file must still be the one we opened: a deleted or replaced
        // file would swallow our writes into an unlinked inode.
        match file_identity(&self.path) {
            Ok(id) if id == self.identity => {}
            Ok(_) => return Err(unavailable(format!("{} was replaced", self.path.display()))),
            Err(e) => return Err(unavailable(format!("{}: {e}", self.path.display()))),
        }
        self.with(|c| {
            c.execute(
                "INSERT INTO heartbeat (id, at) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                params![now() as i64],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn get(&self, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        let id = id.to_owned();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT id, revision, body, updated_at FROM records WHERE kind = ?1 AND id = ?2",
                    params![kind.as_str(), id],
                    row_to_record,
                )
                .optional()
                .map_err(unavailable)?;
            row.map(to_record).transpose()
        })
        .await
    }

    async fn put(
        &self,
        kind: Kind,
        id: &str,
        body: &serde_json::Value,
        expect: Expect,
    ) -> StoreResult<u64> {
        let id = id.to_owned();
        let body = body.to_string();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let found = current_revision(&tx, kind, &id)?;
            check_expect(found, expect)?;
            let revision = found.unwrap_or(0) + 1;
            tx.execute(
                "INSERT INTO records (kind, id, revision, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, id) DO UPDATE SET revision = excluded.revision,
                   body = excluded.body, updated_at = excluded.updated_at",
                params![kind.as_str(), id, revision as i64, body, now() as i64],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(revision)
        })
        .await
    }

    async fn delete(&self, kind: Kind, id: &str, expect: Expect) -> StoreResult<bool> {
        let id = id.to_owned();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let found = current_revision(&tx, kind, &id)?;
            if found.is_none() && expect != Expect::Absent {
                return match expect {
                    Expect::Revision(_) => Err(StoreError::Conflict { expected: expect }),
                    _ => Ok(false),
                };
            }
            check_expect(found, expect)?;
            let n = tx
                .execute(
                    "DELETE FROM records WHERE kind = ?1 AND id = ?2",
                    params![kind.as_str(), id],
                )
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(n > 0)
        })
        .await
    }

    async fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Record>> {
        let after = after.unwrap_or("").to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, revision, body, updated_at FROM records
                     WHERE kind = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![kind.as_str(), after, limit], row_to_record)
                .map_err(unavailable)?;
            rows.map(|r| r.map_err(unavailable).and_then(to_record))
                .collect()
        })
        .await
    }
}
