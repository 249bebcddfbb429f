//! The log on a filesystem that runs out of space: nothing synced is lost, nothing is
//! written behind a torn record, and it takes writes again once space is back.
//!
//! Needs root to mount a small tmpfs (as CI runs); elsewhere the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use sightline_wal::{Wal, WalError, WalOptions};

/// A tmpfs of a few MiB mounted on a temporary directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .ok()?;
        status.success().then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn small_fs(bytes: u64) -> Option<SmallFs> {
    let fs = SmallFs::mount(bytes);
    assert!(
        fs.is_some() || !is_root(),
        "running as root but could not mount a tmpfs"
    );
    if fs.is_none() {
        eprintln!("skipped: mounting a tmpfs needs root");
    }
    fs
}

fn record(i: u32) -> Vec<u8> {
    let mut r = i.to_le_bytes().to_vec();
    r.resize(10_000, (i % 251) as u8);
    r
}

#[test]
fn wal_refuses_writes_after_a_failed_write_until_repaired_and_loses_nothing_synced() {
    let Some(fs) = small_fs(4 << 20) else { return };
    let wal_dir: PathBuf = fs.path().join("wal");
    // Space the test gives back later, as an operator freeing the disk would.
    let reserve = fs.path().join("reserve");
    std::fs::write(&reserve, vec![0u8; 2 << 20]).unwrap();
    let filler = fs.path().join("filler");
    let options = WalOptions {
        segment_bytes: 256 << 10,
    };
    let mut wal = Wal::open(&wal_dir, options.clone(), |_| {}).unwrap();
    let mut synced: Vec<u32> = Vec::new();
    let mut i = 0u32;
    // Fill the disk: groups of three records per sync until a write fails.
    let failure = loop {
        let group: Vec<u32> = (i..i + 3).collect();
        i += 3;
        let appended = group.iter().try_for_each(|&n| {
            let seq = wal.append(1, &record(n))?;
            assert_eq!(seq, synced.len() as u64 + 1 + (n - group[0]) as u64);
            Ok::<_, WalError>(())
        });
        match appended.and_then(|()| wal.sync()) {
            Ok(()) => synced.extend(group),
            Err(e) => break e,
        }
        assert!(i < 10_000, "the disk never filled");
    };
    assert!(
        failure.to_string().contains("No space left on device"),
        "{failure}"
    );
    assert!(wal.failure().is_some());
    // Failed closed: nothing more is appended, even once space is back, until repaired.
    let refused = wal.append(1, &record(99_999)).unwrap_err();
    assert!(matches!(refused, WalError::Failed { .. }), "{refused}");
    assert!(wal.sync().is_err());
    // Still full: a repair that probes for space fails and can be retried.
    std::fs::write(&filler, vec![0u8; 0]).unwrap();
    let big = vec![1u8; 1 << 20];
    while std::fs::OpenOptions::new()
        .append(true)
        .open(&filler)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &big))
        .is_ok()
    {}
    assert!(wal.repair(1 << 20).is_err(), "repair must probe for space");
    assert!(wal.failure().is_some());
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&reserve).unwrap();
    wal.repair(1 << 20).unwrap();
    assert!(wal.failure().is_none());
    // Numbering resumes right after the last synced record.
    for n in 0..5 {
        let seq = wal.append(1, &record(50_000 + n)).unwrap();
        assert_eq!(seq, synced.len() as u64 + 1);
        wal.sync().unwrap();
        synced.push(50_000 + n);
    }
    drop(wal);
    let mut replayed = Vec::new();
    Wal::open(&wal_dir, options, |r| {
        assert_eq!(r.seq, replayed.len() as u64 + 1);
        replayed.push(u32::from_le_bytes(r.payload[..4].try_into().unwrap()));
    })
    .unwrap();
    assert_eq!(replayed, synced);
}
