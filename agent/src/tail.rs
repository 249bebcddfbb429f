//! Log files tailed into the buffer, with checkpoints: globs, files that appear later,
//! rotation by rename and by copy-truncate, multi-line records, lines too long or not UTF-8
//! reported, not mangled.
//!
//! Polling (every `poll`, 250 ms by default), not inotify: it sees renames, truncations and
//! files on any file system the same way, and costs a `stat` per file per poll.
//!
//! - A file is known by its device and inode. A path whose inode changed was **renamed
//!   away**: the old file is read to its end through the descriptor still open (a last line
//!   without its newline included), then closed; the new file at the path is read from its
//!   start. A file **shorter than what was read** was truncated (copy-truncate): it is read
//!   again from its start. (Lines written between the copy and the truncation are lost by
//!   that scheme itself, whatever the reader.)
//! - **Checkpoints**: after each batch is in the disk buffer, the position of every file (the
//!   byte after the last line in a buffered batch) is written to `positions` (replaced by
//!   rename). A restart seeks there, so a `kill -9` repeats at most the one batch buffered
//!   but not yet checkpointed (≤ `MAX_BATCH_LINES` lines) and loses none.
//! - **Multi-line records**: with `multiline_start`, a line that does not match it continues
//!   the record before it (a stack trace); a record is complete at the next start or after
//!   a second without more lines.
//! - **Bad input**: a line over `max_line_bytes` is cut to that length (counted, and never
//!   held whole in memory); a line that is not UTF-8 is dropped and counted, with a warning
//!   naming the file and offset, once per file; a file whose first KiB holds a NUL byte is
//!   binary and skipped with a warning; an unreadable file is reported once and tried again
//!   when it changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use regex::Regex;
use serde::Deserialize;

/// Lines per batch at most (the repeat bound after a kill).
pub const MAX_BATCH_LINES: usize = 5_000;
/// Bytes of lines per batch at most.
const MAX_BATCH_BYTES: usize = 2 << 20;
/// Bytes read from one file per poll at most, so that one busy file cannot starve the others.
const MAX_READ_PER_POLL: u64 = 4 << 20;
/// A pending multi-line record is complete after this long without a new line.
const MULTILINE_FLUSH: Duration = Duration::from_secs(1);

/// One `[[logs]]` entry of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Globs: `*` and `?` in the file name (`/var/log/*.log`, `/var/log/app/*.txt`).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// A regex a record's first line matches (`^\d{4}-\d{2}-\d{2}`); others continue it.
    pub multiline_start: Option<String>,
    /// Labels on these files' streams (beside the agent's and `filename`).
    pub labels: BTreeMap<String, String>,
    /// Longest line (or record) sent; longer ones are cut. Loki's default `max_line_size`.
    pub max_line_bytes: usize,
    #[serde(deserialize_with = "crate::config::duration")]
    pub poll: Duration,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            include: vec!["/var/log/*.log".into()],
            exclude: Vec::new(),
            multiline_start: None,
            labels: BTreeMap::new(),
            max_line_bytes: 256 << 10,
            poll: Duration::from_millis(250),
        }
    }
}

/// Counts for the agent's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
    pub truncated_lines: u64,
    pub invalid_utf8_lines: u64,
    pub skipped_binary_files: u64,
    pub unreadable_files: u64,
    pub rotations: u64,
}

/// A batch of lines ready for the buffer: streams (labels → entries of (ns, line)).
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub streams: BTreeMap<PathBuf, Vec<(i64, String)>>,
    pub lines: usize,
    bytes: usize,
}

impl Batch {
    fn full(&self) -> bool {
        self.lines >= MAX_BATCH_LINES || self.bytes >= MAX_BATCH_BYTES
    }

    /// The Loki push JSON body, every stream with `labels` and its `filename`.
    pub fn to_loki_json(&self, labels: &BTreeMap<String, String>) -> Vec<u8> {
        let streams: Vec<serde_json::Value> = self
            .streams
            .iter()
            .map(|(path, entries)| {
                let mut l: serde_json::Map<String, serde_json::Value> = labels
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                l.insert("filename".into(), path.display().to_string().into());
                let values: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|(ts, line)| serde_json::json!([ts.to_string(), line]))
                    .collect();
                serde_json::json!({ "stream": l, "values": values })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "streams": streams }))
            .expect("JSON of strings serialises")
    }
}

#[derive(Debug)]
struct Tailed {
    file: File,
    dev: u64,
    ino: u64,
    /// Next byte to read.
    read_at: u64,
    /// The start of the bytes not yet in an emitted line (the checkpoint once buffered).
    line_start: u64,
    /// An incomplete last line (at most `max_line_bytes` of it kept).
    partial: Vec<u8>,
    partial_len: u64,
    /// A multi-line record being gathered: its text and where it started.
    pending: Option<(String, u64)>,
    last_data: Instant,
    warned_utf8: bool,
}

/// The tailer of one `[[logs]]` entry.
pub struct Tailer {
    config: LogsConfig,
    multiline: Option<Regex>,
    include: Vec<(PathBuf, Regex)>,
    exclude: Vec<(PathBuf, Regex)>,
    files: HashMap<PathBuf, Tailed>,
    /// Files renamed away, read to their end before they are closed.
    draining: Vec<(PathBuf, Tailed)>,
    /// Positions from the last checkpoint: path → (dev, ino, offset).
    positions: HashMap<PathBuf, (u64, u64, u64)>,
    positions_path: PathBuf,
    /// Paths reported (binary, unreadable) with the (dev, ino, size) they had, so that they
    /// are reported once and tried again only when they change.
    reported: HashMap<PathBuf, (u64, u64, u64)>,
    pub stats: TailStats,
}

fn glob_regex(pattern: &str) -> (PathBuf, Regex) {
    let path = Path::new(pattern);
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut re = String::from("^");
    for c in name.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    (
        dir,
        Regex::new(&re).expect("an escaped glob is a valid regex"),
    )
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Tailer {
    /// A tailer whose checkpoints are in `positions_path`.
    pub fn new(config: LogsConfig, positions_path: PathBuf) -> Result<Tailer, String> {
        let multiline = config
            .multiline_start
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| format!("logs.multiline_start: {e}"))?;
        for p in config.include.iter().chain(&config.exclude) {
            let dir = Path::new(p)
                .parent()
                .map(|d| d.to_string_lossy().into_owned());
            if !p.starts_with('/') || dir.is_some_and(|d| d.contains(['*', '?'])) {
                return Err(format!(
                    "logs.include/exclude: {p:?} must be an absolute path with wildcards in the file name only"
                ));
            }
        }
        let positions = read_positions(&positions_path);
        Ok(Tailer {
            include: config.include.iter().map(|p| glob_regex(p)).collect(),
            exclude: config.exclude.iter().map(|p| glob_regex(p)).collect(),
            multiline,
            config,
            files: HashMap::new(),
            draining: Vec::new(),
            positions,
            positions_path,
            reported: HashMap::new(),
            stats: TailStats::default(),
        })
    }

    pub fn poll_interval(&self) -> Duration {
        self.config.poll
    }

    fn matching_paths(&self) -> HashSet<PathBuf> {
        let mut out = HashSet::new();
        for (dir, re) in &self.include {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = dir.join(&name);
                if re.is_match(&name)
                    && !self
                        .exclude
                        .iter()
                        .any(|(d, x)| d == dir && x.is_match(&name))
                    && e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink())
                {
                    out.insert(path);
                }
            }
        }
        out
    }

    /// Opens a file found by the globs, at its checkpoint if it has one for this inode.
    fn open(&mut self, path: &Path) -> Option<Tailed> {
        let meta = fs::metadata(path).ok()?;
        let id = (meta.dev(), meta.ino(), meta.len());
        if self.reported.get(path) == Some(&id) {
            return None; // reported as it is; tried again once it changes
        }
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a log file; skipped until it changes");
                self.stats.unreadable_files += 1;
                self.reported.insert(path.to_path_buf(), id);
                return None;
            }
        };
        let mut head = [0u8; 1024];
        let n = file.read(&mut head).unwrap_or(0);
        if head[..n].contains(&0) {
            tracing::warn!(path = %path.display(), "a binary file (a NUL byte in its first KiB) matches the log globs; skipped");
            self.stats.skipped_binary_files += 1;
            self.reported.insert(path.to_path_buf(), id);
            return None;
        }
        self.reported.remove(path);
        let start = match self.positions.get(path) {
            Some(&(dev, ino, offset)) if dev == meta.dev() && ino == meta.ino() => {
                offset.min(meta.len())
            }
            _ => 0,
        };
        self.stats.files += 1;
        Some(Tailed {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            read_at: start,
            line_start: start,
            partial: Vec::new(),
            partial_len: 0,
            pending: None,
            last_data: Instant::now(),
            warned_utf8: false,
        })
    }

    /// One poll: finds files, notices rotations, reads what is new. Returns the batches (in
    /// order) and, for each, the positions to checkpoint once it is buffered.
    pub fn poll(&mut self) -> Vec<(Batch, Positions)> {
        let paths = self.matching_paths();
        // Rotations and disappearances.
        let tracked: Vec<PathBuf> = self.files.keys().cloned().collect();
        for path in tracked {
            let same = fs::metadata(&path).ok().is_some_and(|m| {
                (m.dev(), m.ino()) == (self.files[&path].dev, self.files[&path].ino)
            });
            if !same || !paths.contains(&path) {
                let t = self.files.remove(&path).expect("tracked");
                if fs::metadata(&path).is_ok() {
                    self.stats.rotations += 1;
                }
                self.draining.push((path, t));
            }
        }
        for path in &paths {
            if !self.files.contains_key(path)
                && let Some(t) = self.open(path)
            {
                self.files.insert(path.clone(), t);
            }
        }
        let mut out = Vec::new();
        let mut batch = Batch::default();
        let max = self.config.max_line_bytes;
        let multiline = self.multiline.clone();
        // What a batch cut in the middle of this poll may checkpoint: the last checkpoint,
        // moved past each line as it joins a batch.
        let mut running = Positions(self.positions.clone());
        let emit = |batch: &mut Batch,
                    out: &mut Vec<(Batch, Positions)>,
                    running: &mut Positions,
                    path: &Path,
                    id: Option<(u64, u64)>,
                    (line, after): (String, u64),
                    stats: &mut TailStats| {
            stats.lines += 1;
            stats.bytes += line.len() as u64;
            batch.bytes += line.len();
            batch.lines += 1;
            batch
                .streams
                .entry(path.to_path_buf())
                .or_default()
                .push((now_ns(), line));
            if let Some((dev, ino)) = id {
                running.0.insert(path.to_path_buf(), (dev, ino, after));
            }
            if batch.full() {
                out.push((std::mem::take(batch), running.clone()));
            }
        };
        // Draining (rotated-away) files first: their lines are older. (Their path now
        // names the new file, so they have no checkpoint of their own: a kill between
        // buffering their last batch and the next checkpoint can lose that batch.)
        let draining = std::mem::take(&mut self.draining);
        for (path, mut t) in draining {
            let lines = read_lines(
                &mut t,
                max,
                &mut self.stats,
                &path,
                true,
                multiline.as_ref(),
            );
            for line in lines {
                emit(
                    &mut batch,
                    &mut out,
                    &mut running,
                    &path,
                    None,
                    line,
                    &mut self.stats,
                );
            }
        }
        let paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        for path in paths {
            let t = self.files.get_mut(&path).expect("tracked");
            // Copy-truncate: shorter than what was read.
            if let Ok(m) = t.file.metadata()
                && m.len() < t.read_at
            {
                tracing::info!(path = %path.display(), "log file truncated; reading it from its start");
                self.stats.rotations += 1;
                t.read_at = 0;
                t.line_start = 0;
                t.partial.clear();
                t.partial_len = 0;
                t.pending = None;
            }
            let id = Some((t.dev, t.ino));
            let lines = read_lines(t, max, &mut self.stats, &path, false, multiline.as_ref());
            for line in lines {
                emit(
                    &mut batch,
                    &mut out,
                    &mut running,
                    &path,
                    id,
                    line,
                    &mut self.stats,
                );
            }
        }
        if batch.lines > 0 || out.is_empty() {
            let positions = positions_of(&self.files);
            out.push((batch, positions));
        }
        out
    }

    /// Records positions once their batch is buffered.
    pub fn checkpoint(&mut self, positions: &Positions) -> io::Result<()> {
        self.positions = positions.0.clone();
        write_positions(&self.positions_path, &self.positions)
    }
}

/// Positions to checkpoint: path → (dev, ino, offset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Positions(HashMap<PathBuf, (u64, u64, u64)>);

fn positions_of(files: &HashMap<PathBuf, Tailed>) -> Positions {
    Positions(
        files
            .iter()
            .map(|(p, t)| (p.clone(), (t.dev, t.ino, t.line_start)))
            .collect(),
    )
}

/// Reads what is new in `t` and returns the complete lines (or records), each with the
/// offset a checkpoint may name once it is buffered. At `eof_is_end` (a rotated file), a
/// last line without a newline and a pending record are complete.
fn read_lines(
    t: &mut Tailed,
    max: usize,
    stats: &mut TailStats,
    path: &Path,
    eof_is_end: bool,
    multiline: Option<&Regex>,
) -> Vec<(String, u64)> {
    let mut lines: Vec<(Vec<u8>, u64, u64)> = Vec::new(); // (bytes, start, end)
    let mut budget = MAX_READ_PER_POLL;
    let mut buf = vec![0u8; 256 << 10];
    if t.file.seek(SeekFrom::Start(t.read_at)).is_err() {
        return Vec::new();
    }
    while budget > 0 {
        let n = match t.file.read(&mut buf[..(budget.min(256 << 10)) as usize]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        budget -= n as u64;
        t.last_data = Instant::now();
        let mut rest = &buf[..n];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i);
            push_partial(t, head, max);
            let end = t.read_at + i as u64 + 1;
            let start = end - 1 - t.partial_len;
            lines.push((std::mem::take(&mut t.partial), start, end));
            if t.partial_len > max as u64 {
                stats.truncated_lines += 1;
            }
            t.partial_len = 0;
            t.read_at = end;
            rest = &tail[1..];
        }
        push_partial(t, rest, max);
        t.read_at += rest.len() as u64;
    }
    if eof_is_end && t.partial_len > 0 {
        let start = t.read_at - t.partial_len;
        lines.push((std::mem::take(&mut t.partial), start, t.read_at));
        t.partial_len = 0;
    }
    let mut out = Vec::new();
    for (bytes, start, end) in lines {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes).to_vec();
        let line = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => {
                stats.invalid_utf8_lines += 1;
                if !t.warned_utf8 {
                    t.warned_utf8 = true;
                    tracing::warn!(path = %path.display(), offset = start,
                        "a log line is not UTF-8; such lines of this file are dropped and counted");
                }
                if t.pending.is_none() {
                    t.line_start = end;
                }
                continue;
            }
        };
        match multiline {
            None => {
                out.push((line, end));
                t.line_start = end;
            }
            Some(re) => {
                if re.is_match(&line) || t.pending.is_none() {
                    if let Some((record, _)) = t.pending.take() {
                        out.push((record, start));
                    }
                    t.line_start = start;
                    t.pending = Some((line, start));
                } else if let Some((record, _)) = &mut t.pending {
                    if record.len() + 1 + line.len() <= max {
                        record.push('\n');
                        record.push_str(&line);
                    } else {
                        stats.truncated_lines += 1;
                    }
                }
            }
        }
    }
    if multiline.is_some()
        && (eof_is_end || t.last_data.elapsed() >= MULTILINE_FLUSH)
        && t.partial_len == 0
        && let Some((record, _)) = t.pending.take()
    {
        out.push((record, t.read_at));
        t.line_start = t.read_at;
    }
    out
}

/// Keeps at most `max` bytes of an incomplete line (the rest is counted, not held).
fn push_partial(t: &mut Tailed, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(t.partial.len());
    let take = room.min(bytes.len());
    let mut keep = &bytes[..take];
    // Cut at a character boundary so that a cut line stays UTF-8.
    if take < bytes.len() {
        while !keep.is_empty() && std::str::from_utf8(keep).is_err() && keep.len() + 4 > take {
            keep = &keep[..keep.len() - 1];
        }
    }
    t.partial.extend_from_slice(keep);
    t.partial_len += bytes.len() as u64;
}

fn read_positions(path: &Path) -> HashMap<PathBuf, (u64, u64, u64)> {
    let Ok(text) = fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let dev = it.next()?.parse().ok()?;
            let ino = it.next()?.parse().ok()?;
            let off = it.next()?.parse().ok()?;
            Some((PathBuf::from(it.next()?), (dev, ino, off)))
        })
        .collect()
}

fn write_positions(path: &Path, positions: &HashMap<PathBuf, (u64, u64, u64)>) -> io::Result<()> {
    let mut text = String::new();
    for (p, (dev, ino, off)) in positions {
        text.push_str(&format!("{dev} {ino} {off} {}\n", p.display()));
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tailer(dir: &Path, f: impl FnOnce(&mut LogsConfig)) -> Tailer {
        let mut c = LogsConfig {
            include: vec![format!("{}/*.log", dir.join("logs").display())],
            ..LogsConfig::default()
        };
        f(&mut c);
        fs::create_dir_all(dir.join("logs")).unwrap();
        Tailer::new(c, dir.join("positions")).unwrap()
    }

    fn append(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Polls, "buffers" every batch and checkpoints it, returning the lines.
    fn poll(t: &mut Tailer) -> Vec<String> {
        let mut lines = Vec::new();
        for (batch, positions) in t.poll() {
            for entries in batch.streams.values() {
                lines.extend(entries.iter().map(|(_, l)| l.clone()));
            }
            t.checkpoint(&positions).unwrap();
        }
        lines
    }

    #[test]
    fn new_lines_new_files_and_a_restart_at_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("logs/a.log");
        append(&a, "one\ntwo\nthr");
        let mut t = tailer(dir.path(), |_| {});
        assert_eq!(poll(&mut t), ["one", "two"]);
        append(&a, "ee\n");
        append(&dir.path().join("logs/b.log"), "bee\n");
        append(&dir.path().join("logs/c.txt"), "not matched\n");
        let mut got = poll(&mut t);
        got.sort();
        assert_eq!(got, ["bee", "three"]);
        append(&a, "four\n");
        drop(t); // a restart: the positions are on disk
        let mut t = tailer(dir.path(), |_| {});
        assert_eq!(poll(&mut t), ["four"]);
        assert_eq!(poll(&mut t), Vec::<String>::new());
    }

    #[test]
    fn rotation_by_rename_and_by_copy_truncate_loses_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("logs/app.log");
        append(&a, "1\n2\n");
        let mut t = tailer(dir.path(), |_| {});
        assert_eq!(poll(&mut t), ["1", "2"]);
        // Written, then renamed before the next poll, then a new file.
        append(&a, "3\n4-no-newline");
        fs::rename(&a, dir.path().join("logs/app.log.1")).unwrap();
        append(&a, "5\n");
        assert_eq!(poll(&mut t), ["3", "4-no-newline", "5"]);
        // Copy-truncate: the file shrinks.
        append(&a, "6\n");
        assert_eq!(poll(&mut t), ["6"]);
        fs::copy(&a, dir.path().join("logs/app.log.2")).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&a)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&a, "7\n");
        assert_eq!(poll(&mut t), ["7"]);
        assert_eq!(t.stats.rotations, 2);
    }

    #[test]
    fn multi_line_records_join_until_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("logs/java.log");
        append(
            &a,
            "2026-12-07 ERROR boom\n  at A.b(A.java:1)\n  at C.d(C.java:2)\n2026-12-07 INFO ok\n",
        );
        let mut t = tailer(dir.path(), |c| {
            c.multiline_start = Some(r"^\d{4}-\d{2}-\d{2}".into())
        });
        // The second record waits for the next start (or a quiet second).
        assert_eq!(
            poll(&mut t),
            ["2026-12-07 ERROR boom\n  at A.b(A.java:1)\n  at C.d(C.java:2)"]
        );
        // Not checkpointed past the pending record: a restart reads it again.
        let mut t2 = tailer(dir.path(), |c| {
            c.multiline_start = Some(r"^\d{4}-\d{2}-\d{2}".into())
        });
        assert_eq!(poll(&mut t2), Vec::<String>::new(), "first poll: pending");
        std::thread::sleep(MULTILINE_FLUSH);
        assert_eq!(poll(&mut t2), ["2026-12-07 INFO ok"]);
    }

    #[test]
    fn long_lines_are_cut_bad_utf8_dropped_binary_files_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("logs/a.log");
        let long = "x".repeat(10 << 20);
        append(&a, &format!("before\n{long}\nafter\n"));
        let mut bad = b"good\n".to_vec();
        bad.extend_from_slice(b"caf\xe9 latin-1\n");
        bad.extend_from_slice(b"fine\n");
        append(&dir.path().join("logs/b.log"), "");
        fs::write(dir.path().join("logs/b.log"), &bad).unwrap();
        fs::write(
            dir.path().join("logs/bin.log"),
            b"\x7fELF\x00\x00\x01binary\n",
        )
        .unwrap();
        let mut t = tailer(dir.path(), |c| c.max_line_bytes = 1000);
        let mut lines = Vec::new();
        for _ in 0..4 {
            lines.extend(poll(&mut t)); // 10 MiB takes a few polls of 4 MiB
        }
        let mut short: Vec<String> = lines.iter().filter(|l| l.len() < 100).cloned().collect();
        short.sort();
        assert_eq!(short, ["after", "before", "fine", "good"]);
        let cut: Vec<&String> = lines.iter().filter(|l| l.len() >= 100).collect();
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].len(), 1000);
        assert_eq!(t.stats.truncated_lines, 1);
        assert_eq!(t.stats.invalid_utf8_lines, 1);
        assert_eq!(t.stats.skipped_binary_files, 1);
        // Reported once, not every poll.
        poll(&mut t);
        assert_eq!(t.stats.skipped_binary_files, 1);
    }

    #[test]
    fn globs_must_be_absolute_with_wildcards_in_the_name_only() {
        let c = LogsConfig {
            include: vec!["/var/*/x.log".into()],
            ..LogsConfig::default()
        };
        assert!(Tailer::new(c, "/tmp/p".into()).is_err());
        let c = LogsConfig {
            include: vec!["logs/*.log".into()],
            ..LogsConfig::default()
        };
        assert!(Tailer::new(c, "/tmp/p".into()).is_err());
    }
}
