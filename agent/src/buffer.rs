//! The agent's disk buffer: what was collected and not yet accepted by the server, in
//! order, within a size cap.
//!
//! A directory of segment files (`00000000000000000001.seg`, …) holding records
//! (`len u32 LE | crc32 u32 LE | kind u8 | payload`, the CRC over kind and payload) and a
//! `cursor` file naming the first record not yet acknowledged (segment and offset, with a
//! CRC, overwritten in place). Collection appends; the sender reads the record at the cursor and
//! acknowledges it once the server has answered 2xx (or refused it for good). So:
//!
//! - **The server down**: records accumulate on disk and are sent in order when it returns.
//! - **The cap**: when the segments together pass `max_bytes`, the oldest segment is
//!   deleted, sent or not; its unsent records are counted as dropped (the newest data is
//!   worth more to an operator than the oldest).
//! - **`kill -9` of the agent**: appends reach the page cache before `push` returns and the
//!   cursor is rewritten after each acknowledgement, so a restart resends at most
//!   the one record that was in flight (the server took it, the cursor had not moved). A
//!   record torn by the kill (a partial tail) fails its CRC on open and is cut off.
//!   Power loss is not covered: nothing is fsynced (what the page cache loses on power loss
//!   is seconds of host metrics, which the next collection supersedes).
//! - **A full disk**: a failed append is cut back to the last whole record and reported to
//!   the caller, which counts the record as dropped; what is already buffered is untouched
//!   and still sent (recording progress needs no new block), and sent segments are deleted,
//!   so space comes back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const HEADER: u64 = 9;
/// A fully sent active segment at least this large is closed and deleted.
const ROLL_WHEN_SENT: u64 = 64 << 10;
/// A record's payload at most: a corrupt length must not make the reader allocate gigabytes.
pub const MAX_RECORD: u64 = 64 << 20;

/// What a record holds, so the sender knows where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A snappy-compressed remote-write 1.0 `WriteRequest`.
    RemoteWrite = 1,
    /// An OTLP `ExportLogsServiceRequest` (protobuf).
    OtlpLogs = 2,
    /// A Loki push request (JSON).
    LokiPush = 3,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::RemoteWrite),
            2 => Some(Kind::OtlpLogs),
            3 => Some(Kind::LokiPush),
            _ => None,
        }
    }
}

/// One buffered record, as the sender reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub payload: Vec<u8>,
    /// Where it is: acknowledging it moves the cursor past it.
    seq: u64,
    offset: u64,
}

/// Counts for the agent's own metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes on disk, sent or not.
    pub bytes: u64,
    /// Records not yet acknowledged.
    pub pending: u64,
    /// Records deleted unsent because the buffer was over its cap.
    pub dropped_over_cap: u64,
    /// Records cut off as corrupt (a torn tail after a crash, a damaged file).
    pub dropped_corrupt: u64,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes of whole records.
    len: u64,
    records: u64,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: Vec<Segment>,
    /// The active segment (the last one), open for appending.
    writer: File,
    /// First unacknowledged record: segment and offset.
    cursor: (u64, u64),
    /// Records before the cursor in the cursor's segment.
    acked_in_segment: u64,
    reader: Option<(u64, File)>,
    stats: Stats,
}

/// The buffer; shared by the collectors (push) and the sender (peek, ack).
#[derive(Debug)]
pub struct Buffer {
    inner: Mutex<Inner>,
    pushed: Condvar,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// Reads the header at `offset`: `Some((kind byte, payload length, crc))` if a whole header is
/// there and its length is plausible.
fn read_header(file: &mut File, offset: u64, file_len: u64) -> io::Result<Option<(u8, u64, u32)>> {
    if offset + HEADER > file_len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut h = [0u8; HEADER as usize];
    file.read_exact(&mut h)?;
    let len = u64::from(u32::from_le_bytes(h[0..4].try_into().unwrap()));
    let crc = u32::from_le_bytes(h[4..8].try_into().unwrap());
    if len > MAX_RECORD || offset + HEADER + len > file_len {
        return Ok(None);
    }
    Ok(Some((h[8], len, crc)))
}

fn checksum(kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

/// Whole records of a segment from the start: (records, bytes). With `verify`, payloads are
/// read and checked (the last segment, which a crash may have torn); otherwise only
/// headers are followed.
fn scan(path: &Path, verify: bool) -> io::Result<(u64, u64)> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let (mut records, mut offset) = (0, 0);
    while let Some((kind, len, crc)) = read_header(&mut file, offset, file_len)? {
        if verify {
            let mut payload = vec![0; len as usize];
            file.read_exact(&mut payload)?;
            if Kind::from_byte(kind).is_none() || checksum(kind, &payload) != crc {
                break;
            }
        }
        records += 1;
        offset += HEADER + len;
    }
    Ok((records, offset))
}

/// Records of a segment from `offset` to its end, following headers.
fn count_from(path: &Path, offset: u64) -> u64 {
    let Ok(mut file) = File::open(path) else {
        return 0;
    };
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (mut n, mut at) = (0, offset);
    while let Ok(Some((_, len, _))) = read_header(&mut file, at, file_len) {
        n += 1;
        at += HEADER + len;
    }
    n
}

impl Buffer {
    /// Opens (or creates) the buffer in `dir`, keeping at most about `max_bytes` on disk.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Buffer> {
        fs::create_dir_all(dir)?;
        let mut seqs: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut stats = Stats::default();
        let mut segments = Vec::with_capacity(seqs.len().max(1));
        for (i, &seq) in seqs.iter().enumerate() {
            let path = segment_path(dir, seq);
            let last = i + 1 == seqs.len();
            let (records, len) = scan(&path, last)?;
            let on_disk = fs::metadata(&path)?.len();
            if on_disk > len {
                // A torn or damaged tail: cut it off so appends follow whole records.
                stats.dropped_corrupt += 1;
                OpenOptions::new().write(true).open(&path)?.set_len(len)?;
            }
            segments.push(Segment { seq, len, records });
        }
        if segments.is_empty() {
            segments.push(Segment {
                seq: 1,
                len: 0,
                records: 0,
            });
        }
        let active = segments.last().expect("one segment at least");
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(dir, active.seq))?;
        let first = segments[0].seq;
        let cursor = read_cursor(dir)
            .filter(|&(seq, _)| seq >= first && seq <= active.seq)
            .unwrap_or((first, 0));
        let mut inner = Inner {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(4 * HEADER),
            segment_bytes: (max_bytes / 8).clamp(64 << 10, 8 << 20),
            segments,
            writer,
            cursor,
            acked_in_segment: 0,
            reader: None,
            stats,
        };
        // Segments wholly before the cursor were sent: delete them.
        while inner.segments.len() > 1 && inner.segments[0].seq < inner.cursor.0 {
            let s = inner.segments.remove(0);
            let _ = fs::remove_file(segment_path(dir, s.seq));
        }
        let cursor_seg = &inner.segments[0];
        let offset = inner.cursor.1.min(cursor_seg.len);
        inner.cursor.1 = offset;
        inner.acked_in_segment =
            cursor_seg.records - count_from(&segment_path(dir, cursor_seg.seq), offset);
        inner.refresh_stats();
        Ok(Buffer {
            inner: Mutex::new(inner),
            pushed: Condvar::new(),
        })
    }

    /// Appends a record. On an I/O error (a full disk) the segment is cut back to its last
    /// whole record and the error returned: the record is not buffered.
    pub fn push(&self, kind: Kind, payload: &[u8]) -> io::Result<()> {
        if payload.len() as u64 > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a record of {} bytes is over the buffer's limit of {MAX_RECORD}",
                    payload.len()
                ),
            ));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.append(kind, payload)?;
        inner.enforce_cap();
        inner.refresh_stats();
        drop(inner);
        self.pushed.notify_all();
        Ok(())
    }

    /// The first unacknowledged record, waiting up to `wait` for one to be pushed.
    pub fn peek(&self, wait: Duration) -> io::Result<Option<Record>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = inner.read_at_cursor()? {
            return Ok(Some(r));
        }
        let (mut inner, _) = self
            .pushed
            .wait_timeout(inner, wait)
            .unwrap_or_else(|e| e.into_inner());
        inner.read_at_cursor()
    }

    /// Marks `record` (the one [`Buffer::peek`] returned) as delivered: the cursor moves past
    /// it, durably. A record the cap deleted meanwhile is already gone; nothing happens.
    pub fn ack(&self, record: &Record) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.cursor != (record.seq, record.offset) {
            return Ok(());
        }
        inner.cursor.1 += HEADER + record.payload.len() as u64;
        inner.acked_in_segment += 1;
        write_cursor(&inner.dir, inner.cursor)?;
        inner.refresh_stats();
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).stats
    }
}

impl Inner {
    fn append(&mut self, kind: Kind, payload: &[u8]) -> io::Result<()> {
        if self
            .segments
            .last()
            .is_some_and(|s| s.len >= self.segment_bytes)
        {
            self.roll()?;
        }
        let mut rec = Vec::with_capacity(HEADER as usize + payload.len());
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&checksum(kind as u8, payload).to_le_bytes());
        rec.push(kind as u8);
        rec.extend_from_slice(payload);
        let active = self.segments.last_mut().expect("one segment at least");
        if let Err(e) = self.writer.write_all(&rec) {
            // Whatever part was written would tear the segment: cut back to whole records.
            let _ = self.writer.set_len(active.len);
            return Err(e);
        }
        active.len += rec.len() as u64;
        active.records += 1;
        Ok(())
    }

    fn roll(&mut self) -> io::Result<()> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        self.writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, seq))?;
        self.segments.push(Segment {
            seq,
            len: 0,
            records: 0,
        });
        Ok(())
    }

    /// Deletes the oldest segments while over the cap, counting their unsent records.
    fn enforce_cap(&mut self) {
        while self.segments.len() > 1 && self.total_bytes() > self.max_bytes {
            let s = self.segments.remove(0);
            let unsent = if s.seq > self.cursor.0 {
                s.records
            } else if s.seq == self.cursor.0 {
                s.records - self.acked_in_segment
            } else {
                0
            };
            self.stats.dropped_over_cap += unsent;
            if s.seq >= self.cursor.0 {
                self.cursor = (self.segments[0].seq, 0);
                self.acked_in_segment = 0;
                let _ = write_cursor(&self.dir, self.cursor);
            }
            if self.reader.as_ref().is_some_and(|(seq, _)| *seq == s.seq) {
                self.reader = None;
            }
            let _ = fs::remove_file(segment_path(&self.dir, s.seq));
        }
    }

    fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    fn refresh_stats(&mut self) {
        self.stats.bytes = self.total_bytes();
        let mut pending = 0;
        for s in &self.segments {
            if s.seq > self.cursor.0 {
                pending += s.records;
            } else if s.seq == self.cursor.0 {
                pending += s.records - self.acked_in_segment;
            }
        }
        self.stats.pending = pending;
    }

    fn read_at_cursor(&mut self) -> io::Result<Option<Record>> {
        loop {
            let (seq, offset) = self.cursor;
            let Some(pos) = self.segments.iter().position(|s| s.seq == seq) else {
                return Ok(None);
            };
            let seg_len = self.segments[pos].len;
            if offset >= seg_len {
                if pos + 1 == self.segments.len() {
                    // Everything sent. A sizeable active segment is rolled so that it can
                    // be deleted: its space comes back (on a full disk, for new records).
                    if seg_len >= ROLL_WHEN_SENT {
                        self.roll()?;
                        continue;
                    }
                    return Ok(None);
                }
                // This segment is done: delete it (first: on a full disk that is the space
                // the cursor may need; a crash before the cursor moves finds the cursor's
                // segment gone and starts at the next one, as it should), then move on.
                let done = self.segments.remove(pos);
                self.reader = None;
                let _ = fs::remove_file(segment_path(&self.dir, done.seq));
                self.cursor = (self.segments[pos].seq, 0);
                self.acked_in_segment = 0;
                if let Err(e) = write_cursor(&self.dir, self.cursor) {
                    tracing::warn!(error = %e, "recording the buffer's cursor");
                }
                self.refresh_stats();
                continue;
            }
            if self.reader.as_ref().is_none_or(|(s, _)| *s != seq) {
                self.reader = Some((seq, File::open(segment_path(&self.dir, seq))?));
            }
            let file = &mut self.reader.as_mut().expect("just opened").1;
            let header = read_header(file, offset, seg_len)?;
            let record = match header {
                Some((kind_byte, len, crc)) => {
                    let mut payload = vec![0; len as usize];
                    file.read_exact(&mut payload)?;
                    match Kind::from_byte(kind_byte) {
                        Some(kind) if checksum(kind_byte, &payload) == crc => Some(Record {
                            kind,
                            payload,
                            seq,
                            offset,
                        }),
                        _ => None,
                    }
                }
                None => None,
            };
            match record {
                Some(r) => return Ok(Some(r)),
                None => {
                    // Damaged since it was written: skip the rest of the segment.
                    let seg = &self.segments[pos];
                    let rest = seg.records - self.acked_in_segment;
                    self.stats.dropped_corrupt += rest;
                    self.acked_in_segment = seg.records;
                    self.cursor.1 = seg_len;
                    if pos + 1 == self.segments.len() {
                        self.roll()?;
                    }
                }
            }
        }
    }
}

/// The cursor file: one fixed-width line `seq offset crc`, overwritten in place — no new
/// block is needed to record progress, so acknowledging works on a full disk (a rename
/// would need one). A torn or damaged line fails its CRC and the cursor falls back to the
/// first segment's start: records are sent again, none is lost.
fn read_cursor(dir: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(dir.join("cursor")).ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    let (seq, offset, crc) = (it.next()??, it.next()??, it.next()??);
    (u64::from(cursor_crc(seq, offset)) == crc).then_some((seq, offset))
}

fn cursor_crc(seq: u64, offset: u64) -> u32 {
    crc32fast::hash(format!("{seq} {offset}").as_bytes())
}

fn write_cursor(dir: &Path, (seq, offset): (u64, u64)) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let line = format!("{seq:020} {offset:020} {:010}\n", cursor_crc(seq, offset));
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(dir.join("cursor"))?;
    file.write_all_at(line.as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(b: &Buffer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = b.peek(Duration::ZERO).unwrap() {
            out.push(r.payload.clone());
            b.ack(&r).unwrap();
        }
        out
    }

    fn payload(i: usize) -> Vec<u8> {
        format!("record {i:05} {}", "x".repeat(i % 97)).into_bytes()
    }

    #[test]
    fn records_come_back_in_order_once_each_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(dir.path(), 1 << 30).unwrap();
        b.inner.lock().unwrap().segment_bytes = 1000; // many segments
        for i in 0..300 {
            b.push(Kind::RemoteWrite, &payload(i)).unwrap();
        }
        assert_eq!(b.stats().pending, 300);
        // Half sent, then the agent stops (a kill: nothing is flushed or closed).
        let mut got = Vec::new();
        for _ in 0..150 {
            let r = b.peek(Duration::ZERO).unwrap().unwrap();
            got.push(r.payload.clone());
            b.ack(&r).unwrap();
        }
        // One in flight: read, sent, not acknowledged.
        let in_flight = b.peek(Duration::ZERO).unwrap().unwrap();
        drop(b);
        let b = Buffer::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(b.stats().pending, 150);
        let rest = drain(&b);
        assert_eq!(
            rest[0], in_flight.payload,
            "the unacknowledged record is sent again"
        );
        got.extend(rest);
        assert_eq!(got, (0..300).map(payload).collect::<Vec<_>>());
        // Sent segments are deleted; the directory holds the active one.
        let segs = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count();
        assert_eq!(segs, 1);
        b.push(Kind::OtlpLogs, b"after").unwrap();
        let r = b.peek(Duration::ZERO).unwrap().unwrap();
        assert_eq!(
            (r.kind, r.payload.as_slice()),
            (Kind::OtlpLogs, &b"after"[..])
        );
    }

    #[test]
    fn over_the_cap_the_oldest_records_go_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(dir.path(), 20_000).unwrap();
        b.inner.lock().unwrap().segment_bytes = 2_000;
        for i in 0..1000 {
            b.push(Kind::RemoteWrite, &payload(i)).unwrap();
        }
        let s = b.stats();
        assert!(s.bytes <= 20_000 + 2_000 + 200, "{s:?}");
        let kept = drain(&b);
        assert_eq!(kept.len() as u64 + s.dropped_over_cap, 1000, "{s:?}");
        assert!(s.dropped_over_cap > 500);
        // What is kept is the newest, in order, without a gap.
        let first = 1000 - kept.len();
        assert_eq!(kept, (first..1000).map(payload).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appends_follow_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(dir.path(), 1 << 20).unwrap();
        for i in 0..10 {
            b.push(Kind::RemoteWrite, &payload(i)).unwrap();
        }
        drop(b);
        // A kill in the middle of an append: half a record at the end.
        let seg = segment_path(dir.path(), 1);
        let len = fs::metadata(&seg).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 1, b'p', b'a'])
            .unwrap();
        drop(f);
        let b = Buffer::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(fs::metadata(&seg).unwrap().len(), len);
        assert_eq!(b.stats().dropped_corrupt, 1);
        b.push(Kind::RemoteWrite, &payload(10)).unwrap();
        assert_eq!(drain(&b), (0..11).map(payload).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_damaged_on_disk_is_skipped_with_the_rest_of_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(dir.path(), 1 << 30).unwrap();
        b.inner.lock().unwrap().segment_bytes = 500;
        for i in 0..40 {
            b.push(Kind::RemoteWrite, &payload(i)).unwrap();
        }
        // Flip a payload byte of the first record.
        let seg = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[12] ^= 0xff;
        fs::write(&seg, bytes).unwrap();
        let got = drain(&b);
        let s = b.stats();
        assert!(s.dropped_corrupt > 0);
        assert_eq!(got.len() as u64 + s.dropped_corrupt, 40);
        assert_eq!(got.last().unwrap(), &payload(39));
    }

    #[test]
    fn peek_waits_for_a_push() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(Buffer::open(dir.path(), 1 << 20).unwrap());
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.peek(Duration::from_secs(30)).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        b.push(Kind::RemoteWrite, b"now").unwrap();
        assert_eq!(t.join().unwrap().unwrap().payload, b"now");
    }
}
