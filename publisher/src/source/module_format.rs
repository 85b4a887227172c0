//! Parsers of the text the vigia kernel module writes under /proc/vigia.
//!
//! The formats are the contract between the module and the publisher; they
//! are specified in `kernel-module/FORMAT.md`. In short, every file starts
//! with a `vigia-<kind> <version>` header; `cpu` and `ram` are `key values…`
//! lines (unknown keys are ignored so the module may add some), and `procs`
//! is one line per process, eleven space-separated fields, the name last and
//! escaped. Everything here is pure and total: any input gives a value or an
//! error, never a panic (a property test feeds arbitrary bytes).

use super::{CpuCounters, CpuTimes, Memory, ProcessStat};

/// Why a file could not be parsed: the 1-based line and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

pub const CPU_HEADER: &str = "vigia-cpu 1";
pub const CPU_COLUMNS: &str = "columns user nice system idle iowait irq softirq steal";
pub const RAM_HEADER: &str = "vigia-ram 1";
pub const PROCS_HEADER: &str = "vigia-procs 1";
pub const PROCS_COLUMNS: &str =
    "pid ppid uid state utime_ns stime_ns rss_kib vsz_kib threads start_ns name";

/// The lines of a text, numbered from 1. The module ends every line with
/// `\n`; a missing newline at the very end means the text was cut.
fn lines(text: &[u8]) -> Result<impl Iterator<Item = (usize, &[u8])>, ParseError> {
    match text.last() {
        None => return Err(err(1, "empty")),
        Some(b'\n') => {}
        Some(_) => {
            let n = text.iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(err(n, "last line has no newline (cut short)"));
        }
    }
    Ok(text[..text.len() - 1]
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l)))
}

fn utf8(n: usize, bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|_| err(n, "not UTF-8"))
}

/// Consumes the next line, which must be exactly `want` (a header).
fn expect_line<'a>(
    it: &mut impl Iterator<Item = (usize, &'a [u8])>,
    want: &str,
) -> Result<(), ParseError> {
    match it.next() {
        Some((_, l)) if l == want.as_bytes() => Ok(()),
        Some((n, l)) => Err(err(
            n,
            format!("expected {want:?}, got {:?}", String::from_utf8_lossy(l)),
        )),
        None => Err(err(1, format!("missing {want:?}"))),
    }
}

fn number<T: std::str::FromStr>(n: usize, field: &str, what: &str) -> Result<T, ParseError> {
    field
        .parse()
        .map_err(|_| err(n, format!("{what}: not a number: {field:?}")))
}

/// What `/proc/vigia/cpu` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleCpu {
    pub times: CpuTimes,
    pub tasks_running: u64,
    pub tasks_total: u64,
}

/// Parses `/proc/vigia/cpu`.
pub fn parse_cpu(text: &[u8]) -> Result<ModuleCpu, ParseError> {
    let mut all = None;
    let mut per_cpu = Vec::new();
    let (mut running, mut total, mut load) = (None, None, None);
    let mut it = lines(text)?;
    expect_line(&mut it, CPU_HEADER)?;
    expect_line(&mut it, CPU_COLUMNS)?;
    for (n, raw) in it {
        let line = utf8(n, raw)?;
        let mut fields = line.split(' ');
        let key = fields.next().unwrap_or_default();
        let values: Vec<&str> = fields.collect();
        if let Some(index) = key.strip_prefix("cpu") {
            let v: Vec<u64> = values
                .iter()
                .map(|f| number(n, f, key))
                .collect::<Result<_, _>>()?;
            let [user, nice, system, idle, iowait, irq, softirq, steal] = v[..] else {
                return Err(err(n, format!("{key}: want 8 values, got {}", v.len())));
            };
            let c = CpuCounters {
                user,
                nice,
                system,
                idle,
                iowait,
                irq,
                softirq,
                steal,
            };
            if index.is_empty() {
                if all.replace(c).is_some() {
                    return Err(err(n, "two `cpu` lines"));
                }
            } else {
                let _: u32 = number(n, index, "cpu number")?;
                per_cpu.push(c);
            }
            continue;
        }
        let one = || -> Result<u64, ParseError> {
            match values[..] {
                [v] => number(n, v, key),
                _ => Err(err(n, format!("{key}: want 1 value"))),
            }
        };
        match key {
            "tasks_running" => running = Some(one()?),
            "tasks_total" => total = Some(one()?),
            "loadavg_milli" => {
                let v: Vec<u64> = values
                    .iter()
                    .map(|f| number(n, f, key))
                    .collect::<Result<_, _>>()?;
                let [a, b, c] = v[..] else {
                    return Err(err(n, "loadavg_milli: want 3 values"));
                };
                load = Some([a, b, c].map(|m| m as f32 / 1000.0));
            }
            _ => {} // a key added by a later module: ignored
        }
    }
    let missing = |what: &str| err(1, format!("missing `{what}` line"));
    if per_cpu.is_empty() {
        return Err(missing("cpuN"));
    }
    Ok(ModuleCpu {
        times: CpuTimes {
            all: all.ok_or_else(|| missing("cpu"))?,
            per_cpu,
            load: load.ok_or_else(|| missing("loadavg_milli"))?,
        },
        tasks_running: running.ok_or_else(|| missing("tasks_running"))?,
        tasks_total: total.ok_or_else(|| missing("tasks_total"))?,
    })
}

/// What `/proc/vigia/ram` holds, in bytes. `swap_total` is `None` when the
/// module cannot know it (a kernel with swap support does not export the
/// total to modules; see FORMAT.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRam {
    pub memory: Memory,
    pub shared: u64,
    pub swap_total: Option<u64>,
}

/// Parses `/proc/vigia/ram`. `cached` is meminfo's Cached plus reclaimable
/// slab, as the procfs source (and `free`) count it.
pub fn parse_ram(text: &[u8]) -> Result<ModuleRam, ParseError> {
    let mut it = lines(text)?;
    expect_line(&mut it, RAM_HEADER)?;
    const KEYS: [&str; 9] = [
        "total_kib",
        "free_kib",
        "available_kib",
        "buffers_kib",
        "cached_kib",
        "shared_kib",
        "slab_reclaimable_kib",
        "swap_total_kib",
        "swap_free_kib",
    ];
    let mut v: [Option<u64>; 9] = [None; 9];
    for (n, raw) in it {
        let line = utf8(n, raw)?;
        let Some((key, value)) = line.split_once(' ') else {
            return Err(err(n, format!("not `key value`: {line:?}")));
        };
        if let Some(i) = KEYS.iter().position(|k| *k == key) {
            let kib: u64 = number(n, value, key)?;
            let bytes = kib
                .checked_mul(1024)
                .ok_or_else(|| err(n, format!("{key}: too large")))?;
            if v[i].replace(bytes).is_some() {
                return Err(err(n, format!("{key} twice")));
            }
        }
    }
    let get = |i: usize| v[i].ok_or_else(|| err(1, format!("missing `{}`", KEYS[i])));
    let total = get(0)?;
    let swap_total = v[7];
    Ok(ModuleRam {
        memory: Memory {
            total,
            free: get(1)?,
            available: get(2)?.min(total),
            buffers: get(3)?,
            cached: get(4)?.saturating_add(get(6)?),
            swap_total: swap_total.unwrap_or(0),
            swap_free: get(8)?,
        },
        shared: get(5)?,
        swap_total,
    })
}

/// Parses `/proc/vigia/procs`.
pub fn parse_procs(text: &[u8]) -> Result<Vec<ProcessStat>, ParseError> {
    let mut it = lines(text)?;
    expect_line(&mut it, PROCS_HEADER)?;
    expect_line(&mut it, PROCS_COLUMNS)?;
    let mut out = Vec::with_capacity(text.len() / 64);
    for (n, raw) in it {
        out.push(parse_process(n, raw)?);
    }
    Ok(out)
}

fn parse_process(n: usize, raw: &[u8]) -> Result<ProcessStat, ParseError> {
    // Ten numeric fields, then the name: splitting at the first ten spaces
    // leaves the name whole (it has no raw space: they are escaped).
    let mut fields = raw.splitn(11, |&b| b == b' ');
    let mut next = |what: &str| -> Result<&str, ParseError> {
        let f = fields
            .next()
            .ok_or_else(|| err(n, format!("missing field {what}")))?;
        utf8(n, f)
    };
    let pid = number(n, next("pid")?, "pid")?;
    let ppid = number(n, next("ppid")?, "ppid")?;
    let uid = number(n, next("uid")?, "uid")?;
    let state_field = next("state")?;
    let mut chars = state_field.chars();
    let (Some(state), None) = (chars.next(), chars.next()) else {
        return Err(err(n, format!("state: not one letter: {state_field:?}")));
    };
    let utime_ns = number(n, next("utime_ns")?, "utime_ns")?;
    let stime_ns = number(n, next("stime_ns")?, "stime_ns")?;
    let rss_kib: u64 = number(n, next("rss_kib")?, "rss_kib")?;
    let _vsz_kib: u64 = number(n, next("vsz_kib")?, "vsz_kib")?;
    let threads = number(n, next("threads")?, "threads")?;
    let start_ns = number(n, next("start_ns")?, "start_ns")?;
    let name = fields.next().ok_or_else(|| err(n, "missing field name"))?;
    Ok(ProcessStat {
        pid,
        ppid,
        uid,
        state,
        utime_ns,
        stime_ns,
        rss_bytes: rss_kib
            .checked_mul(1024)
            .ok_or_else(|| err(n, "rss_kib: too large"))?,
        threads,
        start_ns,
        name: unescape_name(name).map_err(|m| err(n, m))?,
    })
}

/// Undoes the module's escaping of a name: `\ooo` (three octal digits) is
/// one byte; any other backslash, and any raw space or control byte, is an
/// error. Bytes that are not UTF-8 become U+FFFD, as /proc readers do.
pub fn unescape_name(escaped: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        let b = escaped[i];
        if b == b'\\' {
            let digits = escaped
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
                .ok_or_else(|| "name: bad escape".to_owned())?;
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(value).map_err(|_| "name: escape above \\377".to_owned())?);
            i += 4;
        } else if b <= b' ' || b == 0x7f {
            return Err(format!("name: unescaped byte {b:#04x}"));
        } else {
            out.push(b);
            i += 1;
        }
    }
    // Valid UTF-8 (nearly every name) is kept without a second copy.
    Ok(String::from_utf8(out)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CPU: &str = "vigia-cpu 1\ncolumns user nice system idle iowait irq softirq steal\n\
        cpu 30 0 20 100 5 1 2 0\ncpu0 10 0 10 50 5 1 1 0\ncpu1 20 0 10 50 0 0 1 0\n\
        tasks_running 2\ntasks_total 57\nloadavg_milli 1500 250 0\n";

    #[test]
    fn cpu_parses() {
        let c = parse_cpu(CPU.as_bytes()).unwrap();
        assert_eq!(c.times.all.user, 30);
        assert_eq!(c.times.all.total(), 158);
        assert_eq!(c.times.per_cpu.len(), 2);
        assert_eq!(c.times.per_cpu[1].user, 20);
        assert_eq!(c.times.load, [1.5, 0.25, 0.0]);
        assert_eq!((c.tasks_running, c.tasks_total), (2, 57));
    }

    #[test]
    fn cpu_ignores_unknown_keys_and_rejects_bad_lines() {
        let extra = CPU.replace("tasks_total 57\n", "tasks_total 57\nfuture_key 1 2 3\n");
        assert!(parse_cpu(extra.as_bytes()).is_ok());
        let short = CPU.replace("cpu1 20 0 10 50 0 0 1 0", "cpu1 20 0 10");
        assert_eq!(parse_cpu(short.as_bytes()).unwrap_err().line, 5);
        let v2 = CPU.replace("vigia-cpu 1", "vigia-cpu 2");
        assert_eq!(parse_cpu(v2.as_bytes()).unwrap_err().line, 1);
        let no_load = CPU.replace("loadavg_milli 1500 250 0\n", "");
        assert!(parse_cpu(no_load.as_bytes()).is_err());
    }

    const RAM: &str = "vigia-ram 1\ntotal_kib 1000\nfree_kib 500\navailable_kib 700\n\
        buffers_kib 10\ncached_kib 100\nshared_kib 5\nslab_reclaimable_kib 20\n\
        swap_total_kib 0\nswap_free_kib 0\n";

    #[test]
    fn ram_parses_in_bytes_with_slab_as_cache() {
        let r = parse_ram(RAM.as_bytes()).unwrap();
        assert_eq!(r.memory.total, 1000 * 1024);
        assert_eq!(r.memory.cached, 120 * 1024);
        assert_eq!(r.shared, 5 * 1024);
        assert_eq!(r.swap_total, Some(0));
    }

    #[test]
    fn ram_without_swap_total_says_so() {
        let r = parse_ram(RAM.replace("swap_total_kib 0\n", "").as_bytes()).unwrap();
        assert_eq!(r.swap_total, None);
        assert!(parse_ram(RAM.replace("free_kib 500\n", "").as_bytes()).is_err());
        assert!(parse_ram(RAM.replace("free_kib 500", "free_kib x").as_bytes()).is_err());
    }

    const PROCS: &str = "vigia-procs 1\n\
        pid ppid uid state utime_ns stime_ns rss_kib vsz_kib threads start_ns name\n\
        1 0 0 S 4000000 8000000 1200 2400 1 10000000 init\n\
        42 1 1000 R 0 0 0 0 3 99 sp\\040ace\\011tab\\134\\012\n";

    #[test]
    fn procs_parse_and_names_unescape() {
        let p = parse_procs(PROCS.as_bytes()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "init");
        assert_eq!(p[0].rss_bytes, 1200 * 1024);
        assert_eq!(p[0].utime_ns, 4_000_000);
        assert_eq!(
            (p[1].pid, p[1].ppid, p[1].uid, p[1].state),
            (42, 1, 1000, 'R')
        );
        assert_eq!(p[1].threads, 3);
        assert_eq!(p[1].name, "sp ace\ttab\\\n");
    }

    #[test]
    fn procs_reject_cut_or_malformed_text() {
        let cut = &PROCS.as_bytes()[..PROCS.len() - 3];
        assert!(parse_procs(cut).is_err());
        let raw_space = PROCS.replace("init", "in it");
        assert!(parse_procs(raw_space.as_bytes()).is_err());
        let bad_escape = PROCS.replace("init", "in\\9it");
        assert!(parse_procs(bad_escape.as_bytes()).is_err());
        let too_big = PROCS.replace("init", "\\777");
        assert!(parse_procs(too_big.as_bytes()).is_err());
        let short = PROCS.replace("1 0 0 S 4000000", "1 0 0 S");
        assert!(parse_procs(short.as_bytes()).is_err());
        assert!(parse_procs(b"").is_err());
    }

    #[test]
    fn empty_process_table_is_valid() {
        let header_only = PROCS.split_inclusive('\n').take(2).collect::<String>();
        assert_eq!(parse_procs(header_only.as_bytes()).unwrap(), vec![]);
    }

    // Real output of the module, captured in the test VM by
    // scripts/kernel/harness.sh --keep DIR (DIR/out/{cpu,ram,procs}).
    const REAL_CPU: &[u8] = include_bytes!("../../tests/fixtures/module/cpu");
    const REAL_RAM: &[u8] = include_bytes!("../../tests/fixtures/module/ram");
    const REAL_PROCS: &[u8] = include_bytes!("../../tests/fixtures/module/procs");

    #[test]
    fn real_cpu_output() {
        let c = parse_cpu(REAL_CPU).unwrap();
        assert_eq!(c.times.per_cpu.len(), 2);
        // Every CPU is online in the VM, so the total is the sum of the lines.
        let sum: u64 = c.times.per_cpu.iter().map(|p| p.total()).sum();
        assert_eq!(c.times.all.total(), sum);
        assert!(c.tasks_running >= 1 && c.tasks_total > c.tasks_running);
    }

    #[test]
    fn real_ram_output() {
        let r = parse_ram(REAL_RAM).unwrap();
        assert_eq!(r.memory.total, 2_037_208 * 1024);
        assert!(r.memory.available <= r.memory.total && r.memory.free <= r.memory.total);
        assert_eq!(r.swap_total, Some(0)); // the test kernel has no swap support
    }

    #[test]
    fn real_procs_output() {
        let p = parse_procs(REAL_PROCS).unwrap();
        let init = p.iter().find(|p| p.pid == 1).unwrap();
        assert_eq!(
            (init.name.as_str(), init.ppid, init.threads),
            ("init", 0, 1)
        );
        assert!(init.rss_bytes > 0);
        let kthreadd = p.iter().find(|p| p.pid == 2).unwrap();
        assert_eq!(
            (kthreadd.name.as_str(), kthreadd.rss_bytes),
            ("kthreadd", 0)
        );
        // The harness renames three processes to test the escaping.
        for name in ["sp ace\ttab", "back\\slash", "new\nline"] {
            assert!(p.iter().any(|p| p.name == name), "{name:?} missing");
        }
        // Each pid once: sorted first, so that dedup sees every repeat and
        // not only adjacent ones.
        let mut pids: Vec<i32> = p.iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), p.len(), "a pid listed twice");
    }

    /// The module's escaping (kernel-module/seq.rs), mirrored for the
    /// round-trip property.
    fn escape(name: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in name {
            if b <= b' ' || b == b'\\' || b == 0x7f {
                out.extend_from_slice(format!("\\{b:03o}").as_bytes());
            } else {
                out.push(b);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_cpu(&bytes);
            let _ = parse_ram(&bytes);
            let _ = parse_procs(&bytes);
        }

        #[test]
        fn arbitrary_lines_after_valid_headers_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            for header in [
                format!("{CPU_HEADER}\n{CPU_COLUMNS}\n"),
                format!("{RAM_HEADER}\n"),
                format!("{PROCS_HEADER}\n{PROCS_COLUMNS}\n"),
            ] {
                let mut text = header.into_bytes();
                text.extend_from_slice(&body);
                let _ = parse_cpu(&text);
                let _ = parse_ram(&text);
                let _ = parse_procs(&text);
            }
        }

        #[test]
        fn any_name_round_trips(name in proptest::collection::vec(1u8..=255, 0..16)) {
            let line = format!("{PROCS_HEADER}\n{PROCS_COLUMNS}\n7 1 0 S 1 2 3 4 1 5 ");
            let mut text = line.into_bytes();
            text.extend_from_slice(&escape(&name));
            text.push(b'\n');
            let p = parse_procs(&text).unwrap();
            prop_assert_eq!(p[0].name.clone(), String::from_utf8_lossy(&name).into_owned());
        }
    }
}
