//! The latest process list of a host as `process_lists` stores it: one
//! JSON array per host (mysql/migrations/0004_process_lists.sql), which the
//! `processes` view expands into one row per process.
//!
//! Encoding a 400-process list is the most CPU a sample costs the sink, so
//! it is done before the batch's transaction opens ([`ProcessLists`]), on a
//! blocking thread while MySQL writes the previous batch, and its hot parts
//! (the start time as text, the state letter) are written without
//! allocating.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::{Serialize, Serializer};
use vigia_schema::{ProcsBody, Sample};

use super::rows::{datetime, fit, unique_processes, Plan};

/// One process of a stored list: the columns of the `processes` view.
#[derive(Serialize)]
struct ListedProcess<'a> {
    pid: i32,
    ppid: i32,
    name: &'a str,
    uid: u32,
    user: &'a str,
    state: &'a str,
    rss: u64,
    mem_pct: f32,
    cpu_pct: f32,
    threads: u32,
    started: DateTime6,
}

/// A time written as MySQL's DATETIME(6) text, `YYYY-MM-DD HH:MM:SS.ffffff`.
struct DateTime6(NaiveDateTime);

impl DateTime6 {
    fn text(&self) -> [u8; 26] {
        fn put(out: &mut [u8], mut n: u32) {
            for slot in out.iter_mut().rev() {
                *slot = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        let t = &self.0;
        let mut out = *b"0000-00-00 00:00:00.000000";
        // `datetime()` covers 1677 to 2262 (i64 nanoseconds): the clamp
        // only keeps the text four digits wide, whatever it is given.
        put(&mut out[0..4], t.year().clamp(0, 9999) as u32);
        put(&mut out[5..7], t.month());
        put(&mut out[8..10], t.day());
        put(&mut out[11..13], t.hour());
        put(&mut out[14..16], t.minute());
        put(&mut out[17..19], t.second());
        // A leap second (never made from unix nanoseconds) would show as
        // nanosecond >= 1e9; DATETIME has none.
        put(&mut out[20..26], (t.nanosecond() / 1_000).min(999_999));
        out
    }
}

impl Serialize for DateTime6 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.text();
        // Digits and punctuation only: always UTF-8.
        serializer.serialize_str(std::str::from_utf8(&text).unwrap_or("1970-01-01 00:00:00.000000"))
    }
}

/// The state letter as in ps; `?` when the publisher sent something else.
pub fn state_letter(state: &str) -> &str {
    match state.as_bytes().first() {
        // An ASCII byte is a whole character: the slice ends on a boundary.
        Some(b) if b.is_ascii_graphic() => &state[..1],
        _ => "?",
    }
}

/// The JSON array `process_lists.processes` holds: each pid once, text cut
/// to the view's column sizes, times as DATETIME(6) text.
pub fn process_list_json(body: &ProcsBody) -> String {
    let list: Vec<ListedProcess> = unique_processes(body)
        .into_iter()
        .map(|p| ListedProcess {
            pid: p.pid,
            ppid: p.ppid,
            name: fit(&p.name, 255),
            uid: p.uid,
            user: fit(&p.user, 64),
            state: state_letter(&p.state),
            rss: p.rss,
            mem_pct: p.mem_pct,
            cpu_pct: p.cpu_pct,
            threads: p.threads,
            started: DateTime6(datetime(p.start_ts)),
        })
        .collect();
    // About 150 bytes a process; one allocation in the common case.
    let mut out = Vec::with_capacity(list.len() * 160 + 2);
    // Plain structs of numbers and strings always serialize.
    if serde_json::to_writer(&mut out, &list).is_err() {
        return "[]".to_owned();
    }
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_else(|_| "[]".to_owned())
}

/// The encoded list of the newest procs snapshot of each host in a batch,
/// made before the batch's transaction opens so that the transaction holds
/// its locks only for the SQL.
#[derive(Default)]
pub struct ProcessLists {
    /// host → (boot, seq, ts, list) of that host's newest snapshot.
    by_host: HashMap<String, (String, u64, i64, String)>,
}

impl ProcessLists {
    /// Encodes the list of the newest procs snapshot of each host in
    /// `samples`: the only one of a host that the batch can store.
    pub fn encode(samples: &[&Sample]) -> Self {
        let plan = Plan::new(samples);
        let by_host = plan
            .hosts
            .values()
            .filter_map(|seen| seen.procs)
            .map(|(s, body)| {
                (
                    s.host.clone(),
                    (s.boot.clone(), s.seq, s.ts, process_list_json(body)),
                )
            })
            .collect();
        Self { by_host }
    }

    /// The encoded list of `sample`, if it is the one encoded for its host.
    pub fn get(&self, sample: &Sample) -> Option<&str> {
        self.by_host
            .get(&sample.host)
            .filter(|(boot, seq, ts, _)| {
                *boot == sample.boot && *seq == sample.seq && *ts == sample.ts
            })
            .map(|(_, _, _, json)| json.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::{ProcessEntry, SampleBody, SCHEMA_VERSION};

    #[test]
    fn datetime6_text_matches_chrono() {
        for ns in [
            0,
            1_700_000_000_123_456_789,
            1_700_000_000_000_000_000,
            -1_000,
            253_402_300_799_999_999, // 9999-12-31 23:59:59.999999999
        ] {
            let t = datetime(ns);
            let ours = DateTime6(t).text();
            assert_eq!(
                std::str::from_utf8(&ours).unwrap(),
                t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                "{ns}"
            );
        }
    }

    #[test]
    fn list_is_the_views_columns_each_pid_once() {
        let p = |pid, name: &str, state: &str| ProcessEntry {
            pid,
            name: name.into(),
            state: state.into(),
            start_ts: 1_700_000_000_123_456_000,
            ..ProcessEntry::default()
        };
        let body = ProcsBody {
            processes: vec![p(1, "init", "S"), p(1, "dup", "R"), p(2, "x", "\u{7f}")],
        };
        let json: serde_json::Value = serde_json::from_str(&process_list_json(&body)).unwrap();
        let list = json.as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["name"], "init");
        assert_eq!(list[0]["state"], "S");
        assert_eq!(list[0]["started"], "2023-11-14 22:13:20.123456");
        assert_eq!(list[1]["state"], "?");
        let keys: Vec<&str> = list[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys.len(), 11);
    }

    #[test]
    fn lists_are_kept_for_each_hosts_newest_snapshot_only() {
        let s = |host: &str, seq: u64| Sample {
            v: SCHEMA_VERSION,
            host: host.into(),
            boot: "b".into(),
            seq,
            ts: seq as i64,
            body: SampleBody::Procs(ProcsBody::default()),
        };
        let (a1, a2, b1) = (s("a", 1), s("a", 2), s("b", 1));
        let lists = ProcessLists::encode(&[&a1, &a2, &b1]);
        assert!(lists.get(&a1).is_none(), "an older snapshot is not encoded");
        assert_eq!(lists.get(&a2), Some("[]"));
        assert_eq!(lists.get(&b1), Some("[]"));
    }
}
