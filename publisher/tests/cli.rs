//! The publisher binary from the outside: `--once`, and bad input at the
//! edges.

use std::collections::BTreeSet;
use std::process::Command;

use vigia_schema::Kind;

fn publisher() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigia-publisher"))
}

fn proc_pids() -> BTreeSet<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn once_prints_one_sample_of_each_kind_and_every_process() {
    let before = proc_pids();
    let out = publisher()
        .args(["--once", "--host", "Once.Example.com"])
        .output()
        .unwrap();
    let after = proc_pids();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [Kind::Hello, Kind::Cpu, Kind::Ram, Kind::Procs].map(Kind::as_str)
    );
    for line in &lines {
        assert_eq!(line["host"], "once");
        assert_eq!(line["v"], 1);
        assert_eq!(line["seq"], 1);
    }
    let pids: BTreeSet<i32> = lines[3]["body"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_i64().unwrap() as i32)
        .collect();
    // Processes alive before and after were alive throughout: all listed.
    let throughout: BTreeSet<i32> = before.intersection(&after).copied().collect();
    let missing: Vec<_> = throughout.difference(&pids).collect();
    assert!(missing.is_empty(), "missing from --once: {missing:?}");
    // Nothing listed that /proc never showed, except --once itself.
    let seen: BTreeSet<i32> = before.union(&after).copied().collect();
    let extra: Vec<_> = pids.difference(&seen).collect();
    assert!(extra.len() <= 1, "not in /proc: {extra:?}");
    let cpu = &lines[1]["body"];
    let busy = cpu["busy_pct"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&busy));
    assert_eq!(
        cpu["cpus"].as_u64().unwrap() as usize,
        cpu["per_cpu_busy_pct"].as_array().unwrap().len()
    );
}

#[test]
fn bad_input_gives_one_clear_line() {
    for (args, expected) in [
        (&["--interval", "0s"][..], "--interval"),
        (&["--source", "magic"][..], "--source"),
        (&["--host", "..."][..], "--host"),
        (&["--nats-url", "nats://bad host:4222"][..], "--nats-url"),
    ] {
        let out = publisher().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
