//! Host metrics from `/proc` and `/sys`, named and labelled exactly as Prometheus's
//! node_exporter names them, so that existing dashboards, rule packs and the topology's
//! node views work on what the agent sends (issue 17).
//!
//! Each [`Collector`] is one of node_exporter's collectors of the same name and reads the
//! same files: `cpu` and `stat` (`/proc/stat`), `meminfo`, `loadavg`, `filefd`
//! (`/proc/sys/fs/file-nr`), `netdev` (`/proc/net/dev`, plus `rx_nohandler` from
//! `/sys/class/net`), `pressure` (`/proc/pressure/*`), `diskstats`, `filesystem`
//! (`/proc/1/mounts` and `statvfs`) and `time`. Device and mount filters default to
//! node_exporter 1.5's (Debian's) flags. The parsers are in [`parse`] (pure, on fixtures);
//! this module reads the files and assembles families. Hand-written rather than the
//! `procfs` crate: node_exporter derives names from the files' own field names (every
//! `meminfo` field, whatever the kernel adds), which fixed structs drop.
//!
//! Roots are configurable ([`HostPaths`]) as node_exporter's `--path.procfs`/`--path.sysfs`
//! are, for an agent in a container that mounts the host's `/proc` elsewhere.

pub mod parse;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use regex::Regex;

/// Counter or gauge, as the exposition's `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric family: a name, its help and kind, and its samples (label pairs, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    pub fn new(name: impl Into<String>, help: &'static str, kind: Kind) -> Self {
        Family {
            name: name.into(),
            help,
            kind,
            samples: Vec::new(),
        }
    }

    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }
}

/// node_exporter's collectors that the agent implements, by node_exporter's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collector {
    Cpu,
    Stat,
    Meminfo,
    Loadavg,
    Filefd,
    Netdev,
    Pressure,
    Diskstats,
    Filesystem,
    Time,
}

impl Collector {
    pub const ALL: [Collector; 10] = [
        Collector::Cpu,
        Collector::Stat,
        Collector::Meminfo,
        Collector::Loadavg,
        Collector::Filefd,
        Collector::Netdev,
        Collector::Pressure,
        Collector::Diskstats,
        Collector::Filesystem,
        Collector::Time,
    ];

    /// node_exporter's name for it (`--collector.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Collector::Cpu => "cpu",
            Collector::Stat => "stat",
            Collector::Meminfo => "meminfo",
            Collector::Loadavg => "loadavg",
            Collector::Filefd => "filefd",
            Collector::Netdev => "netdev",
            Collector::Pressure => "pressure",
            Collector::Diskstats => "diskstats",
            Collector::Filesystem => "filesystem",
            Collector::Time => "time",
        }
    }
}

/// Where the host's `/proc` and `/sys` are, and which devices and mounts to leave out.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub proc: PathBuf,
    pub sys: PathBuf,
    /// Network devices left out (node_exporter: `--collector.netdev.device-exclude`).
    pub netdev_exclude: Regex,
    /// Block devices left out (`--collector.diskstats.device-exclude`).
    pub diskstats_exclude: Regex,
    /// Mount points left out (`--collector.filesystem.mount-points-exclude`).
    pub mount_points_exclude: Regex,
    /// File-system types left out (`--collector.filesystem.fs-types-exclude`).
    pub fs_types_exclude: Regex,
}

impl Default for HostPaths {
    /// The real `/proc` and `/sys` with node_exporter 1.5's default filters.
    fn default() -> Self {
        let re = |s: &str| Regex::new(s).expect("a valid built-in filter");
        HostPaths {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            netdev_exclude: re("^lo$"),
            diskstats_exclude: re(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"),
            mount_points_exclude: re(
                "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
            ),
            fs_types_exclude: re(
                "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$",
            ),
        }
    }
}

/// A collector that could not read what it needs, named with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectError {
    pub collector: &'static str,
    pub message: String,
}

impl std::fmt::Display for CollectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "collector {}: {}", self.collector, self.message)
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Runs the collectors once. A collector that fails (a file missing in this kernel or
/// container) is reported and the others still give their families.
pub fn collect(paths: &HostPaths, collectors: &[Collector]) -> (Vec<Family>, Vec<CollectError>) {
    let mut families = Vec::new();
    let mut errors = Vec::new();
    let mut proc_stat = None;
    for &collector in collectors {
        match collect_one(paths, collector, &mut proc_stat) {
            Ok(mut f) => families.append(&mut f),
            Err(message) => errors.push(CollectError {
                collector: collector.name(),
                message,
            }),
        }
    }
    (families, errors)
}

/// `/proc/stat` parsed into the `cpu` and `stat` collectors' families.
type ProcStat = Result<(Vec<Family>, Vec<Family>), String>;

/// `cpu` and `stat` both come from `/proc/stat`: it is read and parsed once per collection,
/// in `proc_stat`, and each takes its half.
fn collect_one(
    paths: &HostPaths,
    collector: Collector,
    proc_stat: &mut Option<ProcStat>,
) -> Result<Vec<Family>, String> {
    let proc = |p: &str| paths.proc.join(p);
    Ok(match collector {
        Collector::Cpu => std::mem::take(&mut proc_stat_once(paths, proc_stat)?.0),
        Collector::Stat => std::mem::take(&mut proc_stat_once(paths, proc_stat)?.1),
        Collector::Meminfo => parse::meminfo(&read(&proc("meminfo"))?),
        Collector::Loadavg => parse::loadavg(&read(&proc("loadavg"))?),
        Collector::Filefd => parse::file_nr(&read(&proc("sys/fs/file-nr"))?),
        Collector::Netdev => netdev(paths, &read(&proc("net/dev"))?),
        Collector::Pressure => pressure(paths)?,
        Collector::Diskstats => diskstats(paths, &read(&proc("diskstats"))?),
        Collector::Filesystem => filesystem(paths, &read(&proc("1/mounts"))?),
        Collector::Time => time(paths),
    })
}

fn proc_stat_once<'a>(
    paths: &HostPaths,
    proc_stat: &'a mut Option<ProcStat>,
) -> Result<&'a mut (Vec<Family>, Vec<Family>), String> {
    proc_stat
        .get_or_insert_with(|| read(&paths.proc.join("stat")).map(|text| parse::stat(&text)))
        .as_mut()
        .map_err(|e| e.clone())
}

fn netdev(paths: &HostPaths, text: &str) -> Vec<Family> {
    let devices: Vec<_> = parse::net_dev(text)
        .into_iter()
        .filter(|(device, _)| !paths.netdev_exclude.is_match(device))
        .collect();
    let mut families: Vec<Family> = parse::NET_DEV_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let mut family = Family::new(
                format!("node_network_{column}_total"),
                "Network device statistic from /proc/net/dev.",
                Kind::Counter,
            );
            for (device, values) in &devices {
                family.push(vec![("device", device.clone())], values[i]);
            }
            family
        })
        .collect();
    // Packets dropped for want of a protocol handler: not in /proc/net/dev, but in the
    // device's statistics (node_exporter reads it over netlink).
    let mut nohandler = Family::new(
        "node_network_receive_nohandler_total",
        "Network device statistic receive_nohandler.",
        Kind::Counter,
    );
    for (device, _) in &devices {
        let file = paths
            .sys
            .join("class/net")
            .join(device)
            .join("statistics/rx_nohandler");
        if let Some(v) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
        {
            nohandler.push(vec![("device", device.clone())], v);
        }
    }
    families.push(nohandler);
    families.retain(|f| !f.samples.is_empty());
    families
}

fn pressure(paths: &HostPaths) -> Result<Vec<Family>, String> {
    let mut families = Vec::new();
    for resource in ["cpu", "io", "memory"] {
        let (some, full) = parse::pressure(&read(&paths.proc.join("pressure").join(resource))?);
        let mut add = |kind: &str, value: Option<f64>, help: &'static str| {
            if let Some(v) = value {
                let mut family = Family::new(
                    format!("node_pressure_{resource}_{kind}_seconds_total"),
                    help,
                    Kind::Counter,
                );
                family.push(Vec::new(), v);
                families.push(family);
            }
        };
        add(
            "waiting",
            some,
            "Total time in seconds that processes have waited for the resource.",
        );
        // node_exporter 1.5 exports no `full` line for the CPU.
        if resource != "cpu" {
            add(
                "stalled",
                full,
                "Total time in seconds no process could make progress for want of the resource.",
            );
        }
    }
    Ok(families)
}

fn diskstats(paths: &HostPaths, text: &str) -> Vec<Family> {
    let disks: Vec<_> = parse::diskstats(text)
        .into_iter()
        .filter(|(device, _)| !paths.diskstats_exclude.is_match(device))
        .collect();
    parse::DISKSTATS_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (name, factor, kind))| {
            let mut family = Family::new(*name, "Disk statistic from /proc/diskstats.", *kind);
            for (device, values) in &disks {
                if let Some(v) = values.get(i) {
                    family.push(vec![("device", device.clone())], v * factor);
                }
            }
            family
        })
        .filter(|f| !f.samples.is_empty())
        .collect()
}

fn filesystem(paths: &HostPaths, text: &str) -> Vec<Family> {
    const NAMES: [(&str, &str); 7] = [
        ("node_filesystem_size_bytes", "Filesystem size in bytes."),
        (
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes.",
        ),
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
        ),
        ("node_filesystem_files", "Filesystem total file nodes."),
        (
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
        ),
        ("node_filesystem_readonly", "Filesystem read-only status."),
        (
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
        ),
    ];
    let mut families: Vec<Family> = NAMES
        .iter()
        .map(|(name, help)| Family::new(*name, help, Kind::Gauge))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for mount in parse::mounts(text) {
        if paths.mount_points_exclude.is_match(&mount.mount_point)
            || paths.fs_types_exclude.is_match(&mount.fs_type)
            || !seen.insert((mount.device.clone(), mount.mount_point.clone()))
        {
            continue;
        }
        let labels = || {
            vec![
                ("device", mount.device.clone()),
                ("fstype", mount.fs_type.clone()),
                ("mountpoint", mount.mount_point.clone()),
            ]
        };
        // The mount point as this process sees it (node_exporter's `--path.rootfs`, for an
        // agent in a container, is not supported yet).
        match rustix::fs::statvfs(Path::new(&mount.mount_point)) {
            Ok(st) => {
                let block = st.f_frsize as f64;
                let values = [
                    st.f_blocks as f64 * block,
                    st.f_bfree as f64 * block,
                    st.f_bavail as f64 * block,
                    st.f_files as f64,
                    st.f_ffree as f64,
                    f64::from(u8::from(mount.read_only)),
                    0.0,
                ];
                for (family, value) in families.iter_mut().zip(values) {
                    family.push(labels(), value);
                }
            }
            Err(_) => families[6].push(labels(), 1.0),
        }
    }
    families.retain(|f| !f.samples.is_empty());
    families
}

fn time(paths: &HostPaths) -> Vec<Family> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut seconds = Family::new(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        Kind::Gauge,
    );
    seconds.push(Vec::new(), now);
    let mut families = vec![seconds];
    let dir = paths.sys.join("devices/system/clocksource");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return families;
    };
    let mut available = Family::new(
        "node_time_clocksource_available_info",
        "Available clocksources read from '/sys/devices/system/clocksource'.",
        Kind::Gauge,
    );
    let mut current = Family::new(
        "node_time_clocksource_current_info",
        "Current clocksource read from '/sys/devices/system/clocksource'.",
        Kind::Gauge,
    );
    let mut devices: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("clocksource")
                .map(str::to_string)
        })
        .collect();
    devices.sort();
    for device in devices {
        let base = dir.join(format!("clocksource{device}"));
        if let Ok(text) = std::fs::read_to_string(base.join("available_clocksource")) {
            for source in text.split_ascii_whitespace() {
                available.push(
                    vec![
                        ("clocksource", source.to_string()),
                        ("device", device.clone()),
                    ],
                    1.0,
                );
            }
        }
        if let Ok(text) = std::fs::read_to_string(base.join("current_clocksource")) {
            current.push(
                vec![
                    ("clocksource", text.trim().to_string()),
                    ("device", device.clone()),
                ],
                1.0,
            );
        }
    }
    families.extend(
        [available, current]
            .into_iter()
            .filter(|f| !f.samples.is_empty()),
    );
    families
}

/// The families in the Prometheus text exposition format (0.0.4), as node_exporter
/// serves them.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for (labels, value) in &family.samples {
            out.push_str(&family.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (name, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let escaped = v
                        .replace('\\', r"\\")
                        .replace('"', "\\\"")
                        .replace('\n', r"\n");
                    let _ = write!(out, "{name}=\"{escaped}\"");
                }
                out.push('}');
            }
            let _ = writeln!(out, " {value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc` and `/sys` of fixtures: what every collector reads.
    fn fixture_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("proc/stat", "cpu0 100 0 50 1000 0 0 0 0 0 0\nctxt 5\n");
        write(
            "proc/net/dev",
            "h1\nh2\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n",
        );
        write("sys/class/net/eth0/statistics/rx_nohandler", "3\n");
        write(
            "proc/pressure/cpu",
            "some avg10=0 avg60=0 avg300=0 total=1000000\nfull avg10=0 avg60=0 avg300=0 total=0\n",
        );
        write(
            "proc/pressure/io",
            "some avg10=0 avg60=0 avg300=0 total=2000000\nfull avg10=0 avg60=0 avg300=0 total=1000000\n",
        );
        write("proc/pressure/memory", "some total=0\nfull total=0\n");
        write(
            "proc/diskstats",
            " 254 0 vda 1 2 3 4 5 6 7 8 9 10 11\n 254 1 vda1 1 2 3 4 5 6 7 8 9 10 11\n",
        );
        write(
            "proc/1/mounts",
            "/dev/vda / ext4 rw 0 0\nproc /proc proc rw 0 0\n",
        );
        dir
    }

    fn paths(root: &Path) -> HostPaths {
        HostPaths {
            proc: root.join("proc"),
            sys: root.join("sys"),
            ..HostPaths::default()
        }
    }

    #[test]
    fn collectors_apply_node_exporters_filters_and_report_what_they_cannot_read() {
        let root = fixture_root();
        let (families, errors) = collect(&paths(root.path()), &Collector::ALL);
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        let text = render(&families);
        assert!(
            text.contains("node_network_receive_bytes_total{device=\"eth0\"} 10\n"),
            "{text}"
        );
        assert!(!text.contains("device=\"lo\""), "lo is excluded by default");
        assert!(text.contains("node_network_receive_nohandler_total{device=\"eth0\"} 3\n"));
        assert!(text.contains("node_pressure_io_stalled_seconds_total 1\n"));
        assert!(!names.contains(&"node_pressure_cpu_stalled_seconds_total"));
        assert!(text.contains("node_disk_read_bytes_total{device=\"vda\"} 1536\n"));
        assert!(!text.contains("vda1"), "partitions are excluded by default");
        assert!(text.contains(
            "node_filesystem_size_bytes{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"}"
        ));
        assert!(!text.contains("mountpoint=\"/proc\""));
        assert!(text.contains("# TYPE node_cpu_seconds_total counter\n"));
        assert!(names.contains(&"node_time_seconds"));
        // meminfo, loadavg and file-nr are missing from the fixture: named, not fatal.
        let failed: Vec<&str> = errors.iter().map(|e| e.collector).collect();
        assert_eq!(failed, ["meminfo", "loadavg", "filefd"]);
        assert!(errors[0].to_string().contains("meminfo"));
    }
}
