//! The agent's buffer on a full disk (issue 17, "bad input: a full disk under the buffer"):
//! a tmpfs of 1 MiB filled by the buffer itself. Appends that do not fit fail with the
//! error (the agent logs it and counts the record as dropped); the segment is cut back to
//! whole records, so everything buffered before is still read back, in order; once space
//! returns, appends work again. Needs root to mount the tmpfs (as CI runs); skipped
//! elsewhere with a note.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sightline_agent::buffer::{Buffer, Kind};

struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn mount(bytes: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        let root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        assert!(
            mounted || !root,
            "running as root but could not mount a tmpfs"
        );
        if !mounted {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(SmallFs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Sends (reads and acknowledges) up to `n` records, returning their numbers.
fn drain(buffer: &Buffer, n: usize) -> Vec<usize> {
    let mut read = Vec::new();
    while read.len() < n
        && let Some(r) = buffer.peek(Duration::ZERO).unwrap()
    {
        read.push(String::from_utf8_lossy(&r.payload[..6]).parse().unwrap());
        buffer.ack(&r).unwrap();
    }
    read
}

#[test]
fn a_full_disk_refuses_new_records_and_keeps_the_buffered_ones() {
    let Some(fs) = SmallFs::mount(1 << 20) else {
        return;
    };
    let dir = fs.path().join("buffer");
    // A cap far above the disk: the disk fills first.
    let buffer = Buffer::open(&dir, 1 << 30).unwrap();
    let record = |i: usize| format!("{i:06}{}", "r".repeat(10_000)).into_bytes();
    let mut stored = Vec::new();
    let mut failures = 0;
    for i in 0..200 {
        match buffer.push(Kind::RemoteWrite, &record(i)) {
            Ok(()) => stored.push(i),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected, got {e}");
                failures += 1;
            }
        }
    }
    assert!(
        failures > 0 && stored.len() > 50,
        "{failures} failures, {} stored",
        stored.len()
    );
    // Everything accepted before is read back whole, in order; reading frees the space.
    let mut read = drain(&buffer, stored.len() / 2);
    assert_eq!(read, stored[..stored.len() / 2]);
    // A reopen (a restart on the full disk) finds no torn record either.
    drop(buffer);
    let buffer = Buffer::open(&dir, 1 << 30).unwrap();
    assert_eq!(buffer.stats().dropped_corrupt, 0);
    read.extend(drain(&buffer, usize::MAX));
    assert_eq!(read, stored);
    // Space is back (sent segments deleted): appends work again.
    buffer.push(Kind::RemoteWrite, &record(999)).unwrap();
    let r = buffer.peek(Duration::ZERO).unwrap().unwrap();
    assert_eq!(&r.payload[..6], b"000999");
}
