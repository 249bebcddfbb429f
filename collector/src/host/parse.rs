//! Pure parsers of the kernel's text files into metric families named as node_exporter
//! names them. No I/O: each takes a file's contents (so tests use fixtures) and returns
//! families; a malformed line is skipped, never a reason to lose the others.

use super::{Family, Kind};

/// The kernel's clock ticks per second in `/proc/stat` (USER_HZ, 100 on every Linux
/// architecture node_exporter supports; it uses the same constant).
const USER_HZ: f64 = 100.0;

fn number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

/// `/proc/stat`: the `cpu` collector's per-CPU times and the `stat` collector's counters.
pub fn stat(text: &str) -> (Vec<Family>, Vec<Family>) {
    let mut seconds = Family::new(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        Kind::Counter,
    );
    let mut guest = Family::new(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
        Kind::Counter,
    );
    let mut others = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        let values: Vec<f64> = fields.filter_map(number).collect();
        if let Some(cpu) = key.strip_prefix("cpu").filter(|n| !n.is_empty()) {
            const MODES: [&str; 8] = [
                "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
            ];
            for (mode, ticks) in MODES.iter().zip(&values) {
                seconds.push(
                    vec![("cpu", cpu.to_string()), ("mode", mode.to_string())],
                    ticks / USER_HZ,
                );
            }
            for (mode, ticks) in ["user", "nice"].iter().zip(values.iter().skip(8)) {
                guest.push(
                    vec![("cpu", cpu.to_string()), ("mode", mode.to_string())],
                    ticks / USER_HZ,
                );
            }
            continue;
        }
        let (name, help, kind) = match key {
            "btime" => (
                "node_boot_time_seconds",
                "Node boot time, in unixtime.",
                Kind::Gauge,
            ),
            "ctxt" => (
                "node_context_switches_total",
                "Total number of context switches.",
                Kind::Counter,
            ),
            "processes" => ("node_forks_total", "Total number of forks.", Kind::Counter),
            "intr" => (
                "node_intr_total",
                "Total number of interrupts serviced.",
                Kind::Counter,
            ),
            "procs_running" => (
                "node_procs_running",
                "Number of processes in runnable state.",
                Kind::Gauge,
            ),
            "procs_blocked" => (
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                Kind::Gauge,
            ),
            _ => continue,
        };
        if let Some(&value) = values.first() {
            let mut family = Family::new(name, help, kind);
            family.push(Vec::new(), value);
            others.push(family);
        }
    }
    let cpu = [seconds, guest]
        .into_iter()
        .filter(|f| !f.samples.is_empty())
        .collect();
    (cpu, others)
}

/// `/proc/meminfo`: every field as `node_memory_<Field>[_bytes]`, `(x)` written `_x`, kB
/// turned into bytes, as node_exporter's `meminfo` collector does.
pub fn meminfo(text: &str) -> Vec<Family> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_ascii_whitespace();
        let Some(value) = parts.next().and_then(number) else {
            continue;
        };
        let key = key.trim().replace('(', "_").replace(')', "");
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let (name, value) = match parts.next() {
            Some("kB") => (format!("node_memory_{key}_bytes"), value * 1024.0),
            _ => (format!("node_memory_{key}"), value),
        };
        let mut family = Family::new(
            name,
            "Memory information field from /proc/meminfo.",
            Kind::Gauge,
        );
        family.push(Vec::new(), value);
        out.push(family);
    }
    out
}

/// `/proc/loadavg`: `node_load1`, `node_load5`, `node_load15`.
pub fn loadavg(text: &str) -> Vec<Family> {
    let loads: Vec<f64> = text
        .split_ascii_whitespace()
        .take(3)
        .filter_map(number)
        .collect();
    ["node_load1", "node_load5", "node_load15"]
        .iter()
        .zip(&loads)
        .map(|(name, &value)| {
            let mut family = Family::new(*name, "Load average over the period.", Kind::Gauge);
            family.push(Vec::new(), value);
            family
        })
        .collect()
}

/// `/proc/sys/fs/file-nr` (allocated, unused, maximum): the `filefd` collector.
pub fn file_nr(text: &str) -> Vec<Family> {
    let values: Vec<f64> = text.split_ascii_whitespace().filter_map(number).collect();
    let [allocated, _, maximum] = values[..] else {
        return Vec::new();
    };
    let mut a = Family::new(
        "node_filefd_allocated",
        "File descriptor statistics: allocated.",
        Kind::Gauge,
    );
    a.push(Vec::new(), allocated);
    let mut m = Family::new(
        "node_filefd_maximum",
        "File descriptor statistics: maximum.",
        Kind::Gauge,
    );
    m.push(Vec::new(), maximum);
    vec![a, m]
}

/// `/proc/net/dev`: per device, the receive and transmit counters, keyed by device name.
pub fn net_dev(text: &str) -> Vec<(String, [f64; 16])> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((device, rest)) = line.split_once(':') else {
            continue;
        };
        let values: Vec<f64> = rest.split_ascii_whitespace().filter_map(number).collect();
        if let Ok(values) = <[f64; 16]>::try_from(values) {
            out.push((device.trim().to_string(), values));
        }
    }
    out
}

/// The names of `/proc/net/dev`'s columns as node_exporter's `netdev` collector exports
/// them (`node_network_<name>_total`).
pub const NET_DEV_COLUMNS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// One `/proc/pressure/<resource>` file: the `total=` of its `some` and `full` lines, in
/// seconds.
pub fn pressure(text: &str) -> (Option<f64>, Option<f64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let kind = fields.next();
        let total = fields
            .find_map(|f| f.strip_prefix("total="))
            .and_then(number)
            .map(|micros| micros / 1e6);
        match kind {
            Some("some") => some = total,
            Some("full") => full = total,
            _ => {}
        }
    }
    (some, full)
}

/// One line of `/proc/diskstats`: the device name and its statistics after it (11 on old
/// kernels, 15 with discards since 4.18, 17 with flushes since 5.5).
pub fn diskstats(text: &str) -> Vec<(String, Vec<f64>)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (_major, _minor, device) = (fields.next()?, fields.next()?, fields.next()?);
            let values: Vec<f64> = fields.filter_map(number).collect();
            (values.len() >= 11).then(|| (device.to_string(), values))
        })
        .collect()
}

/// `/proc/diskstats`' columns as node_exporter's `diskstats` collector exports them: the
/// name and the factor from the kernel's unit (sectors of 512 bytes, milliseconds).
pub const DISKSTATS_COLUMNS: [(&str, f64, Kind); 17] = [
    ("node_disk_reads_completed_total", 1.0, Kind::Counter),
    ("node_disk_reads_merged_total", 1.0, Kind::Counter),
    ("node_disk_read_bytes_total", 512.0, Kind::Counter),
    ("node_disk_read_time_seconds_total", 0.001, Kind::Counter),
    ("node_disk_writes_completed_total", 1.0, Kind::Counter),
    ("node_disk_writes_merged_total", 1.0, Kind::Counter),
    ("node_disk_written_bytes_total", 512.0, Kind::Counter),
    ("node_disk_write_time_seconds_total", 0.001, Kind::Counter),
    ("node_disk_io_now", 1.0, Kind::Gauge),
    ("node_disk_io_time_seconds_total", 0.001, Kind::Counter),
    (
        "node_disk_io_time_weighted_seconds_total",
        0.001,
        Kind::Counter,
    ),
    ("node_disk_discards_completed_total", 1.0, Kind::Counter),
    ("node_disk_discards_merged_total", 1.0, Kind::Counter),
    ("node_disk_discarded_sectors_total", 1.0, Kind::Counter),
    ("node_disk_discard_time_seconds_total", 0.001, Kind::Counter),
    ("node_disk_flush_requests_total", 1.0, Kind::Counter),
    (
        "node_disk_flush_requests_time_seconds_total",
        0.001,
        Kind::Counter,
    ),
];

/// One mount of `/proc/<pid>/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
}

/// `/proc/<pid>/mounts`, with the kernel's octal escapes (`\040` for a space) undone.
pub fn mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let device = unescape_octal(fields.next()?);
            let mount_point = unescape_octal(fields.next()?);
            let fs_type = fields.next()?.to_string();
            let options = fields.next().unwrap_or("");
            Some(Mount {
                device,
                mount_point,
                fs_type,
                read_only: options.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let code = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(code) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        families.iter().find(|f| f.name == name).and_then(|f| {
            f.samples
                .iter()
                .find(|(l, _)| {
                    l.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, v)| *v)
        })
    }

    #[test]
    fn proc_stat_gives_cpu_seconds_and_the_stat_counters() {
        let text = "cpu  10 20 30 40 50 60 70 80 90 100\n\
                    cpu0 130446 55020 28467 8697 629 0 234 392 7 3\n\
                    intr 5136554 0 9 0\nctxt 9876543\nbtime 1796670701\n\
                    processes 4242\nprocs_running 10\nprocs_blocked 1\nsoftirq 1 2 3\n";
        let (cpu, stat) = stat(text);
        assert_eq!(
            value(
                &cpu,
                "node_cpu_seconds_total",
                &[("cpu", "0"), ("mode", "user")]
            ),
            Some(1304.46)
        );
        assert_eq!(
            value(
                &cpu,
                "node_cpu_seconds_total",
                &[("cpu", "0"), ("mode", "steal")]
            ),
            Some(3.92)
        );
        assert_eq!(
            value(
                &cpu,
                "node_cpu_guest_seconds_total",
                &[("cpu", "0"), ("mode", "nice")]
            ),
            Some(0.03)
        );
        // The aggregate `cpu` line is node_exporter's to skip too.
        assert_eq!(cpu[0].samples.len(), 8);
        assert_eq!(
            value(&stat, "node_boot_time_seconds", &[]),
            Some(1796670701.0)
        );
        assert_eq!(
            value(&stat, "node_context_switches_total", &[]),
            Some(9876543.0)
        );
        assert_eq!(value(&stat, "node_forks_total", &[]), Some(4242.0));
        assert_eq!(value(&stat, "node_intr_total", &[]), Some(5136554.0));
        assert_eq!(value(&stat, "node_procs_running", &[]), Some(10.0));
        assert_eq!(value(&stat, "node_procs_blocked", &[]), Some(1.0));
    }

    #[test]
    fn meminfo_names_follow_node_exporter() {
        let text = "MemTotal:       24000000 kB\nActive(anon):     1000 kB\n\
                    HugePages_Total:       0\nbroken line\nHugepagesize:    2048 kB\n";
        let families = meminfo(text);
        assert_eq!(
            value(&families, "node_memory_MemTotal_bytes", &[]),
            Some(24000000.0 * 1024.0)
        );
        assert_eq!(
            value(&families, "node_memory_Active_anon_bytes", &[]),
            Some(1024000.0)
        );
        assert_eq!(
            value(&families, "node_memory_HugePages_Total", &[]),
            Some(0.0)
        );
        assert_eq!(
            value(&families, "node_memory_Hugepagesize_bytes", &[]),
            Some(2097152.0)
        );
        assert_eq!(families.len(), 4);
    }

    #[test]
    fn loadavg_filefd_and_pressure() {
        let loads = loadavg("7.79 7.88 6.91 12/800 4242\n");
        assert_eq!(value(&loads, "node_load15", &[]), Some(6.91));
        let fds = file_nr("6762\t0\t2466239\n");
        assert_eq!(value(&fds, "node_filefd_maximum", &[]), Some(2466239.0));
        assert!(file_nr("garbage").is_empty());
        let (some, full) = pressure(
            "some avg10=85.22 avg60=82.69 avg300=83.40 total=1756079308\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n",
        );
        assert_eq!((some, full), (Some(1756.079308), Some(2.5)));
    }

    #[test]
    fn net_dev_and_diskstats_columns() {
        let text = "Inter-|   Receive\n face |bytes\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 101126204    5251    0    0    0     0          0         0   314365    2888    0    0    0     0       0          0\n";
        let devices = net_dev(text);
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[1].0, "eth0");
        assert_eq!(devices[1].1[8], 314365.0);
        let disks = diskstats(
            " 254       0 vda 98994 7326 5181546 489903 1 2 3 4 0 5 6 7 8 9 10 11 12\n   7 0 loop0 0 0\n",
        );
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].1.len(), 17);
    }

    #[test]
    fn mounts_are_unescaped_and_read_only_is_an_option() {
        let text = "/dev/vda / ext4 rw,relatime 0 0\n\
                    /dev/vdb /mnt/my\\040disk xfs ro,noatime 0 0\n";
        let m = mounts(text);
        assert_eq!(m[1].mount_point, "/mnt/my disk");
        assert!(m[1].read_only && !m[0].read_only);
        assert_eq!(m[0].fs_type, "ext4");
    }
}
