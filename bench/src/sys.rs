//! The machine (from /proc and /etc/os-release) and CPU time per process group during a
//! phase: the server, PostgreSQL's processes, the load generator, everything else.

use std::collections::BTreeMap;
use std::time::Instant;

/// What the report says about the machine.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory: String,
    pub os: String,
    pub kernel: String,
}

impl Machine {
    /// Reads /proc/cpuinfo, /proc/meminfo, /etc/os-release and the kernel release.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_else(|| "unknown".to_owned());
        let processors = cpuinfo.lines().filter(|line| line.starts_with("processor")).count();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(processors.max(1));
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".to_owned());
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let os = os_release
            .lines()
            .find_map(|line| line.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|v| v.trim().to_owned()).unwrap_or_default();
        Self { cpu_model, cores, memory, os, kernel }
    }
}

/// CPU ticks (USER_HZ) per process group, and the machine's total and idle ticks.
#[derive(Clone, Debug, Default)]
pub struct CpuSnapshot {
    by_group: BTreeMap<&'static str, u64>,
    total: u64,
    idle: u64,
    at: Option<Instant>,
}

/// The groups the report names; `other` is the rest of the machine's busy time (other
/// processes, including ones that ended during the phase, and the kernel's own threads).
pub const GROUPS: [&str; 3] = ["rekomi-server", "postgres", "rekomi-bench"];

impl CpuSnapshot {
    /// Reads /proc/stat and every `/proc/<pid>/stat` (a process's line counts all its threads);
    /// `server_pids` are the benchmarked servers.
    pub fn take(server_pids: &[u32]) -> Self {
        let mut snapshot = CpuSnapshot { at: Some(Instant::now()), ..Self::default() };
        if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
            if let Some(cpu) = stat.lines().find(|line| line.starts_with("cpu ")) {
                let fields: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal (guest time is inside user).
                snapshot.total = fields.iter().take(8).sum();
                snapshot.idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
            }
        }
        let me = std::process::id();
        let Ok(entries) = std::fs::read_dir("/proc") else { return snapshot };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid … utime(14) stime(15): split after the closing parenthesis,
            // since comm may contain spaces.
            let Some((head, rest)) = stat.rsplit_once(')') else { continue };
            let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let group = if server_pids.contains(&pid) {
                "rekomi-server"
            } else if pid == me {
                "rekomi-bench"
            } else if comm == "postgres" {
                "postgres"
            } else {
                continue;
            };
            *snapshot.by_group.entry(group).or_default() += ticks;
        }
        snapshot
    }

    /// CPU used between `self` and `later`, in cores (1.0 = one core busy all the time), per
    /// group, plus the machine's busy cores. Assumes USER_HZ = 100 (Linux's default) only to
    /// convert ticks to seconds; shares do not depend on it.
    pub fn usage_until(&self, later: &CpuSnapshot) -> CpuUsage {
        let seconds = match (self.at, later.at) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let cores = |ticks: u64| if seconds > 0.0 { ticks as f64 / 100.0 / seconds } else { 0.0 };
        let mut groups = Vec::new();
        for group in GROUPS {
            let before = self.by_group.get(group).copied().unwrap_or(0);
            let after = later.by_group.get(group).copied().unwrap_or(0);
            groups.push((group, cores(after.saturating_sub(before))));
        }
        let total = later.total.saturating_sub(self.total);
        let idle = later.idle.saturating_sub(self.idle);
        let machine_busy = cores(total.saturating_sub(idle));
        let known: f64 = groups.iter().map(|(_, c)| c).sum();
        groups.push(("other", (machine_busy - known).max(0.0)));
        CpuUsage { groups, machine_busy, machine_total: cores(total) }
    }
}

/// CPU use over a phase, in cores.
#[derive(Clone, Debug, Default)]
pub struct CpuUsage {
    pub groups: Vec<(&'static str, f64)>,
    pub machine_busy: f64,
    pub machine_total: f64,
}

impl CpuUsage {
    /// `rekomi-server 0.92, postgres 0.71, …` for the report.
    pub fn describe(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(|(group, cores)| format!("{group} {cores:.2}")).collect();
        format!("{} — machine busy {:.2} of {:.2} cores", groups.join(", "), self.machine_busy, self.machine_total)
    }
}
