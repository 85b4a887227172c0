//! Simulated hosts: samples that look like a real publisher's, made
//! without reading /proc, and the messages that carry them.

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;
use vigia_schema::subject::{CONTENT_TYPE_MSGPACK, HEADER_CONTENT_TYPE, HEADER_MSG_ID};
use vigia_schema::{CpuBody, ProcessEntry, ProcsBody, RamBody, Sample, SampleBody, SCHEMA_VERSION};

/// How many processes of each snapshot go to `process_samples` with the
/// sink's default `--history-top 10`: the generated CPU and RSS orders are
/// chosen so that the top 10 by CPU and the top 10 by RSS never overlap.
pub const HISTORY_ROWS: usize = 20;
pub const HISTORY_TOP: usize = 10;

const NAMES: [&str; 12] = [
    "systemd",
    "kworker/0:1-events",
    "sshd",
    "postgres",
    "nginx",
    "java",
    "python3",
    "containerd-shim",
    "rsyslogd",
    "node",
    "bash",
    "cron",
];
const USERS: [(u32, &str); 4] = [
    (0, "root"),
    (33, "www-data"),
    (105, "postgres"),
    (1000, "app"),
];

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub fn host_name(i: usize) -> String {
    format!("sim-{i:04}")
}

pub fn boot_id(i: usize, tag: &str) -> String {
    format!("{tag}{i:012x}")
}

/// A process table of `n` processes. The first `HISTORY_TOP` are the
/// busiest by CPU and small; the next `HISTORY_TOP` are the largest by
/// RSS and idle; the rest are idle and small. So the history of a snapshot
/// is exactly `HISTORY_ROWS` rows, and the bench can count every row.
pub fn processes(host: usize, n: usize) -> ProcsBody {
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let pid = 1 + k as i32 * 7 + (host % 5) as i32;
        let (cpu_pct, rss) = if k < HISTORY_TOP {
            (90.0 - k as f32, 4 << 20)
        } else if k < 2 * HISTORY_TOP {
            (0.0, (2 << 30) - (k as u64) * (1 << 20))
        } else {
            (0.0, (1 << 20) + (k as u64) * 4096)
        };
        let (uid, user) = USERS[k % USERS.len()];
        out.push(ProcessEntry {
            pid,
            ppid: if k == 0 { 0 } else { 1 },
            name: NAMES[k % NAMES.len()].to_owned(),
            uid,
            user: user.to_owned(),
            state: if k % 50 == 0 { "R" } else { "S" }.to_owned(),
            rss,
            mem_pct: rss as f32 / (16u64 << 30) as f32 * 100.0,
            cpu_pct,
            threads: 1 + (k % 8) as u32,
            start_ts: 1_700_000_000_000_000_000 + k as i64 * 1_000_000_000,
        });
    }
    ProcsBody { processes: out }
}

pub fn cpu_body() -> CpuBody {
    CpuBody {
        busy_pct: 12.5,
        user_pct: 8.0,
        system_pct: 4.0,
        iowait_pct: 0.5,
        steal_pct: 0.0,
        idle_pct: 87.0,
        per_cpu_busy_pct: vec![10.0, 15.0, 11.0, 14.0],
        load1: 0.4,
        load5: 0.3,
        load15: 0.2,
        cpus: 4,
    }
}

pub fn ram_body() -> RamBody {
    RamBody {
        total: 16 << 30,
        used: 6 << 30,
        free: 2 << 30,
        available: 10 << 30,
        buffers: 200 << 20,
        cached: 7 << 30,
        swap_total: 2 << 30,
        swap_free: 2 << 30,
    }
}

pub fn sample(host: &str, boot: &str, seq: u64, ts: i64, body: SampleBody) -> Sample {
    Sample {
        v: SCHEMA_VERSION,
        host: host.to_owned(),
        boot: boot.to_owned(),
        seq,
        ts,
        body,
    }
}

/// Subject, headers (with `Nats-Msg-Id`) and payload, as the publisher
/// sends them.
pub struct Message {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

pub fn message(sample: &Sample) -> Message {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_MSG_ID, sample.msg_id().as_str());
    headers.insert(HEADER_CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    Message {
        subject: sample.subject(),
        headers,
        payload: Bytes::from(sample.encode()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_cpu_and_top_rss_do_not_overlap() {
        let body = processes(3, 400);
        let mut by_cpu: Vec<&ProcessEntry> = body.processes.iter().collect();
        let mut by_rss = by_cpu.clone();
        by_cpu.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.pid.cmp(&b.pid)));
        by_rss.sort_by(|a, b| b.rss.cmp(&a.rss).then(a.pid.cmp(&b.pid)));
        let mut pids: Vec<i32> = by_cpu[..HISTORY_TOP]
            .iter()
            .chain(&by_rss[..HISTORY_TOP])
            .map(|p| p.pid)
            .collect();
        pids.sort();
        pids.dedup();
        assert_eq!(pids.len(), HISTORY_ROWS);
    }
}
