//! The alert manager's durable state for one tenant: alerts, silences and the notification
//! log as JSON lines in `<data>/alertmanager/<tenant>/state.log`, each change appended and
//! synced before it is acknowledged.
//!
//! Replay reads every record (later ones of the same alert, silence or log entry replace
//! earlier ones) and stops at a torn last line, which a crash mid-write can leave and
//! which was never acknowledged; the file is cut there so that what is appended next is
//! readable (issue 10's lesson: records after a torn one are lost to replay). A write that
//! fails (a full disk) is cut back the same way before the error is returned. The log is compacted — the live state written to a new
//! file, synced, renamed over the old one — at open and once it holds many more records
//! than the state it describes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sightline_alerting::alertmanager::alerts::Alert;
use sightline_alerting::alertmanager::dispatch::NflogEntry;
use sightline_alerting::alertmanager::silence::Silence;

/// One change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Alert(Alert),
    Silence(Silence),
    Nflog(NflogEntry),
}

/// What a replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    pub records: Vec<Record>,
    /// A torn or unreadable line stopped the replay there (the line's number).
    pub torn_at: Option<usize>,
}

pub struct StateLog {
    path: PathBuf,
    file: File,
    /// The length of the file's intact records.
    len: u64,
    /// Records appended since the last compaction.
    appended: usize,
}

impl StateLog {
    /// Opens (creating) the log in `dir` and returns it with the records it held.
    pub fn open(dir: &Path) -> anyhow::Result<(StateLog, Replayed)> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("state.log");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let (replayed, len) = replay(&bytes);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if len < bytes.len() as u64 {
            file.set_len(len)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot cut the torn tail of {}", path.display()))?;
        }
        Ok((
            StateLog {
                path,
                file,
                len,
                appended: replayed.records.len(),
            },
            replayed,
        ))
    }

    /// Appends records and syncs them to disk; only then may the change be acknowledged.
    pub fn append(&mut self, records: &[Record]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).context("cannot encode a state record")?;
            buf.push(b'\n');
        }
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
        {
            // Cut a partial write so that later records stay readable.
            let _ = self.file.set_len(self.len);
            return Err(e).with_context(|| format!("cannot write {}", self.path.display()));
        }
        self.len += buf.len() as u64;
        self.appended += records.len();
        Ok(())
    }

    /// Whether the log holds so many more records than `live` that it should be
    /// compacted.
    pub fn wants_compaction(&self, live: usize) -> bool {
        self.appended > 10_000.max(4 * live)
    }

    /// Replaces the log with exactly `live`, atomically.
    pub fn compact(&mut self, live: &[Record]) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("log.tmp");
        let write = || -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            let mut w = std::io::BufWriter::new(&mut f);
            for r in live {
                serde_json::to_writer(&mut w, r)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            drop(w);
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            OpenOptions::new().append(true).open(&self.path)
        };
        self.file = write().with_context(|| format!("cannot compact {}", self.path.display()))?;
        self.len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        self.appended = live.len();
        Ok(())
    }
}

/// Parses the records and returns them with the length of the intact prefix.
fn replay(bytes: &[u8]) -> (Replayed, u64) {
    let mut out = Replayed::default();
    let mut good = 0usize;
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let complete = line.ends_with(b"\n");
        match serde_json::from_slice::<Record>(line)
            .ok()
            .filter(|_| complete)
        {
            Some(r) => {
                out.records.push(r);
                good += line.len();
            }
            None => {
                out.torn_at = Some(i + 1);
                break;
            }
        }
    }
    (out, good as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(name: &str) -> Record {
        let t = "2026-12-07T10:00:00Z".parse().unwrap();
        Record::Alert(Alert {
            labels: BTreeMap::from([("alertname".to_owned(), name.to_owned())]),
            annotations: BTreeMap::new(),
            starts_at: t,
            ends_at: t,
            generator_url: String::new(),
            updated_at: t,
            timeout: false,
        })
    }

    #[test]
    fn records_survive_reopening_and_a_torn_tail_is_dropped() {
        let dir = std::env::temp_dir().join(format!("am-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut log, replayed) = StateLog::open(&dir).unwrap();
        assert!(replayed.records.is_empty());
        log.append(&[alert("A"), alert("B")]).unwrap();
        drop(log);
        // A crash in the middle of a write leaves half a line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("state.log"))
            .unwrap();
        f.write_all(b"{\"alert\":{\"lab").unwrap();
        let (mut log, replayed) = StateLog::open(&dir).unwrap();
        assert_eq!(replayed.records.len(), 2);
        assert_eq!(replayed.torn_at, Some(3));
        // What is appended after the cut tail is read back.
        log.append(&[alert("D")]).unwrap();
        let (mut log, replayed) = StateLog::open(&dir).unwrap();
        assert_eq!(replayed.records.len(), 3);
        assert_eq!(replayed.torn_at, None);
        log.compact(&replayed.records[1..2]).unwrap();
        log.append(&[alert("C")]).unwrap();
        let (_, replayed) = StateLog::open(&dir).unwrap();
        assert_eq!(replayed.records.len(), 2);
        assert_eq!(replayed.torn_at, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
