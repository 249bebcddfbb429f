use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"SLWAL\x00\x00\x01";
const RECORD_HEADER_LEN: usize = 4 + 4 + 8 + 1;
/// Refuse records larger than this: a length field beyond it is corruption, not data.
const MAX_RECORD_LEN: u32 = 256 << 20;

/// WAL failures, with the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("wal segment {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("wal record of {len} bytes exceeds the limit of {MAX_RECORD_LEN} bytes")]
    RecordTooLarge { len: usize },
    /// An earlier write or fsync failed; nothing is appended until [`Wal::repair`] succeeds.
    #[error("wal {path} is not writable since a write failed ({reason}); waiting to repair it")]
    Failed { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Tunables of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is closed and a new one started once it grows past this many bytes.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
        }
    }
}

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub seq: u64,
    pub kind: u8,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct SegmentInfo {
    first_seq: u64,
    path: PathBuf,
}

/// An open write-ahead log. Appends are buffered until [`Wal::sync`].
///
/// A failed write or fsync (a full disk) leaves the segment with a torn record whose extent
/// is unknown; appending after it would put acknowledged records behind a tear that replay
/// stops at. So the log *fails closed*: the buffered records are discarded, numbering goes
/// back to the last synced record, and every append and sync is refused until
/// [`Wal::repair`] has cut the segment back to what was synced.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    /// Closed segments, oldest first; the open one is `current`.
    closed: Vec<SegmentInfo>,
    current: SegmentInfo,
    /// `None` while failed: the buffer of a failed writer must never be flushed.
    writer: Option<BufWriter<File>>,
    current_bytes: u64,
    next_seq: u64,
    /// Length of the open segment, and the next sequence number, as of the last sync.
    synced_bytes: u64,
    synced_next_seq: u64,
    /// Why the log is failed, until repaired.
    failure: Option<String>,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, calling `replay` for every intact record in order.
    /// A torn tail of the last segment is truncated away.
    pub fn open(
        dir: &Path,
        options: WalOptions,
        mut replay: impl FnMut(WalRecord),
    ) -> Result<Self, WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut segments = list_segments(dir)?;
        let mut next_seq = 1;
        let last_index = segments.len().checked_sub(1);
        for (i, seg) in segments.iter().enumerate() {
            let is_last = Some(i) == last_index;
            let end = read_segment(&seg.path, is_last, &mut |r| {
                next_seq = r.seq + 1;
                replay(r);
            })?;
            if let Some(valid_len) = end {
                tracing::warn!(path = %seg.path.display(), valid_len, "truncating torn wal tail");
                let f = OpenOptions::new()
                    .write(true)
                    .open(&seg.path)
                    .map_err(io_err(&seg.path))?;
                f.set_len(valid_len).map_err(io_err(&seg.path))?;
                f.sync_all().map_err(io_err(&seg.path))?;
            }
        }
        // A segment's name says where numbering resumes even if it holds no records yet.
        if let Some(last) = segments.last() {
            next_seq = next_seq.max(last.first_seq);
        }
        let (current, writer, current_bytes) = match segments.pop() {
            // A crash between creating a segment and syncing its magic: start it again.
            Some(last) if fs::metadata(&last.path).map_err(io_err(&last.path))?.len() == 0 => {
                let (info, w) = create_segment(dir, last.first_seq)?;
                (info, w, SEGMENT_MAGIC.len() as u64)
            }
            Some(last) => {
                let mut f = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(io_err(&last.path))?;
                let len = f.seek(SeekFrom::End(0)).map_err(io_err(&last.path))?;
                (last, BufWriter::with_capacity(1 << 20, f), len)
            }
            None => {
                let (info, w) = create_segment(dir, next_seq)?;
                (info, w, SEGMENT_MAGIC.len() as u64)
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            options,
            closed: segments,
            current,
            writer: Some(writer),
            current_bytes,
            next_seq,
            synced_bytes: current_bytes,
            synced_next_seq: next_seq,
            failure: None,
        })
    }

    /// Why the log refuses writes, while it does (see [`Wal::repair`]).
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Makes a failed log writable again: cuts the open segment back to its last synced
    /// length, then checks that `probe_bytes` more can be written and synced (the space a
    /// group needs) before giving them back. A no-op while the log is healthy. On error the
    /// log stays failed and the call can be repeated.
    pub fn repair(&mut self, probe_bytes: u64) -> Result<(), WalError> {
        if self.failure.is_none() {
            return Ok(());
        }
        let path = self.current.path.clone();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.set_len(self.synced_bytes).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        if probe_bytes > 0 {
            let probe = (|| {
                file.seek(SeekFrom::Start(self.synced_bytes))?;
                io::copy(&mut io::repeat(0).take(probe_bytes), &mut file)?;
                file.sync_data()
            })();
            // Give the probe back whatever happened, then report it.
            file.set_len(self.synced_bytes).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            probe.map_err(io_err(&path))?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        self.writer = Some(BufWriter::with_capacity(1 << 20, file));
        self.current_bytes = self.synced_bytes;
        self.next_seq = self.synced_next_seq;
        tracing::info!(path = %path.display(), reason = self.failure.as_deref(), "wal repaired after a failed write");
        self.failure = None;
        Ok(())
    }

    /// Enters the failed state after `e`: the unsynced records are dropped, not written.
    fn fail(&mut self, e: WalError) -> WalError {
        if let Some(writer) = self.writer.take() {
            // `into_parts` hands back the buffer instead of flushing it, as drop would.
            let _ = writer.into_parts();
        }
        self.current_bytes = self.synced_bytes;
        self.next_seq = self.synced_next_seq;
        self.failure = Some(e.to_string());
        tracing::error!(error = %e, "wal write failed; refusing writes until repaired");
        e
    }

    fn failed_error(&self) -> WalError {
        WalError::Failed {
            path: self.current.path.clone(),
            reason: self.failure.clone().unwrap_or_default(),
        }
    }

    /// Appends a record to the buffer and returns its sequence number. Not durable until
    /// [`Wal::sync`] returns.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<u64, WalError> {
        if payload.len() > MAX_RECORD_LEN as usize {
            return Err(WalError::RecordTooLarge { len: payload.len() });
        }
        if self.failure.is_some() {
            return Err(self.failed_error());
        }
        if self.current_bytes >= self.options.segment_bytes {
            self.roll()?;
        }
        let seq = self.next_seq;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&seq.to_le_bytes());
        crc.update(&[kind]);
        crc.update(payload);
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        header[8..16].copy_from_slice(&seq.to_le_bytes());
        header[16] = kind;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.failed_error());
        };
        let written = writer
            .write_all(&header)
            .and_then(|()| writer.write_all(payload));
        if let Err(e) = written {
            let e = io_err(&self.current.path)(e);
            return Err(self.fail(e));
        }
        self.current_bytes += (RECORD_HEADER_LEN + payload.len()) as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes buffered records and waits until they are on stable storage. An error means
    /// none of the records appended since the last successful sync will be replayed.
    pub fn sync(&mut self) -> Result<(), WalError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.failed_error());
        };
        if let Err(e) = writer.flush().and_then(|()| writer.get_ref().sync_data()) {
            let e = io_err(&self.current.path)(e);
            return Err(self.fail(e));
        }
        self.synced_bytes = self.current_bytes;
        self.synced_next_seq = self.next_seq;
        Ok(())
    }

    /// The sequence number the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Deletes every closed segment whose records all have `seq <= through`, i.e. are
    /// durably stored elsewhere. Returns how many segments were removed.
    pub fn remove_through(&mut self, through: u64) -> Result<usize, WalError> {
        let mut removed = 0;
        // A closed segment ends where the next one starts.
        while self.closed.len() > removed {
            let next_first = self
                .closed
                .get(removed + 1)
                .map_or(self.current.first_seq, |s| s.first_seq);
            if next_first - 1 > through {
                break;
            }
            let path = &self.closed[removed].path;
            fs::remove_file(path).map_err(io_err(path))?;
            removed += 1;
        }
        self.closed.drain(..removed);
        Ok(removed)
    }

    /// Number of segment files, the open one included.
    pub fn segment_count(&self) -> usize {
        self.closed.len() + 1
    }

    fn roll(&mut self) -> Result<(), WalError> {
        self.sync()?;
        let (info, writer) = match create_segment(&self.dir, self.next_seq) {
            Ok(created) => created,
            Err(e) => {
                // A half-made segment must not outlive the failure: it would be the last
                // segment at the next open, ahead of the open one's records.
                let _ = fs::remove_file(segment_path(&self.dir, self.next_seq));
                return Err(self.fail(e));
            }
        };
        let old = std::mem::replace(&mut self.current, info);
        self.writer = Some(writer);
        self.current_bytes = SEGMENT_MAGIC.len() as u64;
        self.synced_bytes = self.current_bytes;
        self.synced_next_seq = self.next_seq;
        self.closed.push(old);
        Ok(())
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.wal"))
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<(SegmentInfo, BufWriter<File>), WalError> {
    let path = segment_path(dir, first_seq);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(SEGMENT_MAGIC).map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))?;
    // The new file's directory entry must be durable too, or a crash could lose the file.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok((
        SegmentInfo { first_seq, path },
        BufWriter::with_capacity(1 << 20, f),
    ))
}

fn list_segments(dir: &Path) -> Result<Vec<SegmentInfo>, WalError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if let Ok(first_seq) = stem.parse::<u64>() {
            segments.push(SegmentInfo {
                first_seq,
                path: entry.path(),
            });
        }
    }
    segments.sort_by_key(|s| s.first_seq);
    Ok(segments)
}

/// Reads one segment. Returns `Some(valid_len)` when the last segment has a torn tail to cut.
fn read_segment(
    path: &Path,
    is_last: bool,
    on_record: &mut dyn FnMut(WalRecord),
) -> Result<Option<u64>, WalError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err(path))?;
    let corrupt = |offset: usize, reason: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if data.len() < SEGMENT_MAGIC.len() {
        // A crash between creating the file and writing the magic.
        return if is_last {
            Ok(Some(0))
        } else {
            Err(corrupt(0, "segment shorter than its magic".into()))
        };
    }
    if &data[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        return Err(corrupt(
            0,
            "bad magic (not a sightline wal v1 segment)".into(),
        ));
    }
    let mut pos = SEGMENT_MAGIC.len();
    while pos < data.len() {
        let fault = match parse_record(&data[pos..]) {
            Ok((record, used)) => {
                on_record(record);
                pos += used;
                continue;
            }
            Err(fault) => fault,
        };
        return if is_last {
            tracing::warn!(path = %path.display(), offset = pos, fault, "torn wal record");
            Ok(Some(pos as u64))
        } else {
            Err(corrupt(pos, fault.to_string()))
        };
    }
    Ok(None)
}

fn parse_record(buf: &[u8]) -> Result<(WalRecord, usize), &'static str> {
    if buf.len() < RECORD_HEADER_LEN {
        return Err("record header cut short");
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    if len > MAX_RECORD_LEN {
        return Err("record length beyond the limit");
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    let end = RECORD_HEADER_LEN + len as usize;
    if buf.len() < end {
        return Err("record payload cut short");
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&buf[8..end]);
    if hasher.finalize() != crc {
        return Err("record checksum mismatch");
    }
    let seq = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
    Ok((
        WalRecord {
            seq,
            kind: buf[16],
            payload: buf[RECORD_HEADER_LEN..end].to_vec(),
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(dir: &Path) -> (Wal, Vec<WalRecord>) {
        let mut seen = Vec::new();
        let wal = Wal::open(dir, WalOptions::default(), |r| seen.push(r)).unwrap();
        (wal, seen)
    }

    #[test]
    fn appended_records_replay_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, seen) = reopen(dir.path());
        assert!(seen.is_empty());
        assert_eq!(wal.append(1, b"one").unwrap(), 1);
        assert_eq!(wal.append(2, b"").unwrap(), 2);
        wal.sync().unwrap();
        drop(wal);
        let (mut wal, seen) = reopen(dir.path());
        assert_eq!(
            seen,
            vec![
                WalRecord {
                    seq: 1,
                    kind: 1,
                    payload: b"one".to_vec()
                },
                WalRecord {
                    seq: 2,
                    kind: 2,
                    payload: vec![]
                },
            ]
        );
        assert_eq!(wal.append(1, b"three").unwrap(), 3);
    }

    #[test]
    fn torn_tail_is_truncated_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = reopen(dir.path());
        wal.append(1, b"kept").unwrap();
        wal.append(1, b"torn away").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 1);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut wal, seen) = reopen(dir.path());
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].payload, b"kept");
        assert_eq!(wal.append(1, b"next").unwrap(), 2);
        wal.sync().unwrap();
        drop(wal);
        let (_, seen) = reopen(dir.path());
        assert_eq!(seen.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn corrupt_middle_segment_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), WalOptions { segment_bytes: 1 }, |_| {}).unwrap();
        wal.append(1, b"a").unwrap();
        wal.append(1, b"b").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let first = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&first, bytes).unwrap();
        let err = Wal::open(dir.path(), WalOptions::default(), |_| {}).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(
            err.to_string().contains("00000000000000000001.wal"),
            "{err}"
        );
    }

    #[test]
    fn segments_roll_and_are_removed_only_when_fully_covered() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), WalOptions { segment_bytes: 40 }, |_| {}).unwrap();
        for i in 0..6u8 {
            wal.append(1, &[i; 20]).unwrap();
        }
        wal.sync().unwrap();
        // 8 magic + 37 per record: every record after the first in a segment rolls.
        assert_eq!(wal.segment_count(), 6);
        assert_eq!(wal.remove_through(0).unwrap(), 0);
        assert_eq!(wal.remove_through(2).unwrap(), 2);
        assert_eq!(wal.segment_count(), 4);
        // The open segment is never removed.
        assert_eq!(wal.remove_through(100).unwrap(), 3);
        assert_eq!(wal.segment_count(), 1);
        drop(wal);
        let mut seen = Vec::new();
        Wal::open(dir.path(), WalOptions::default(), |r| seen.push(r.seq)).unwrap();
        assert_eq!(seen, vec![6]);
    }

    /// Pins segment format v1. To regenerate after a deliberate format change (which also
    /// needs a new magic), delete `testdata/segment_v1.wal` and run this test once.
    #[test]
    fn golden_segment() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/segment_v1.wal");
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), WalOptions::default(), |_| {}).unwrap();
        wal.append(1, b"hello").unwrap();
        wal.append(7, &[0, 1, 2, 255]).unwrap();
        wal.sync().unwrap();
        let written = fs::read(segment_path(dir.path(), 1)).unwrap();
        if !golden.exists() {
            fs::write(&golden, &written).unwrap();
        }
        assert_eq!(
            written,
            fs::read(&golden).unwrap(),
            "segment format changed"
        );
        fs::copy(&golden, segment_path(dir.path(), 1)).unwrap();
        drop(wal);
        let mut seen = Vec::new();
        Wal::open(dir.path(), WalOptions::default(), |r| seen.push(r)).unwrap();
        assert_eq!(
            seen[1],
            WalRecord {
                seq: 2,
                kind: 7,
                payload: vec![0, 1, 2, 255]
            }
        );
    }
}
