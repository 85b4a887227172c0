//! `/proc/<pid>/stat`, parsed by hand.
//!
//! The walk of the process table is most of the publisher's CPU time: 400
//! processes every 5 s, each a file the kernel generates on read. Through
//! the procfs crate a process costs an open of the `/proc/<pid>` directory,
//! a statx, an open of `stat` relative to it, two reads (the second to see
//! the end of the file), two closes and a parse that allocates for 52
//! fields. [`super::procfs`] does one open, one read into a reused buffer,
//! one close and one stat of the directory, and this parses the nine fields
//! a snapshot needs. Side by side with the procfs crate's walk, at 400
//! processes: the whole publisher uses 15-20 % less CPU
//! (`scripts/bench.sh footprint --against <old binary>`).
//!
//! The line is `pid (comm) state ppid …`. Any process may set its `comm` (up
//! to 15 bytes; kernel threads show up to 64) to any bytes but NUL, spaces
//! and parentheses too, so the fields after it are found from the *last*
//! `)`.

/// The fields of one `/proc/<pid>/stat` line a snapshot needs, in the
/// kernel's units (clock ticks, pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidStat {
    pub pid: i32,
    /// `comm`; bytes that are not UTF-8 become U+FFFD.
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub num_threads: u32,
    /// Since boot.
    pub starttime_ticks: u64,
    pub rss_pages: u64,
}

/// Positions of the fields read, counted from `state` (field 3 in proc(5)).
const STATE: usize = 0;
const PPID: usize = 1;
const UTIME: usize = 11;
const STIME: usize = 12;
const NUM_THREADS: usize = 17;
const STARTTIME: usize = 19;
const RSS: usize = 21;

/// Parses one `/proc/<pid>/stat` line (with or without its newline). The
/// error says which field was missing or malformed.
pub fn parse(line: &[u8]) -> Result<PidStat, String> {
    let open = line
        .iter()
        .position(|&b| b == b'(')
        .ok_or("no '(' before comm")?;
    let close = line
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&close| close > open)
        .ok_or("no ')' after comm")?;
    let pid = number(line[..open].trim_ascii_end(), "pid")?;
    let comm = String::from_utf8_lossy(&line[open + 1..close]).into_owned();
    let mut fields = [&[][..]; RSS + 1];
    let mut rest = line[close + 1..].trim_ascii().split(|&b| b == b' ');
    for (i, slot) in fields.iter_mut().enumerate() {
        *slot = rest
            .next()
            .ok_or_else(|| format!("{} fields after comm, expected at least {}", i, RSS + 1))?;
    }
    let state = match fields[STATE] {
        [letter] if letter.is_ascii_alphabetic() => char::from(*letter),
        other => {
            return Err(format!(
                "state: expected one letter, got {:?}",
                String::from_utf8_lossy(other)
            ))
        }
    };
    Ok(PidStat {
        pid,
        comm,
        state,
        ppid: number(fields[PPID], "ppid")?,
        utime_ticks: number(fields[UTIME], "utime")?,
        stime_ticks: number(fields[STIME], "stime")?,
        num_threads: number(fields[NUM_THREADS], "num_threads")?,
        starttime_ticks: number(fields[STARTTIME], "starttime")?,
        rss_pages: number(fields[RSS], "rss")?,
    })
}

fn number<T: std::str::FromStr>(bytes: &[u8], field: &str) -> Result<T, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            format!(
                "{field}: expected a number, got {:?}",
                String::from_utf8_lossy(bytes)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A line as Linux 6.x prints it (52 fields), for a process named `comm`.
    fn line(comm: &[u8]) -> Vec<u8> {
        let mut out = b"4242 (".to_vec();
        out.extend_from_slice(comm);
        out.extend_from_slice(
            b") S 17 4242 4242 0 -1 4194560 1070 0 0 0 33 12 0 0 20 0 3 0 98765 \
              10297344 1562 18446744073709551615 1 1 0 0 0 0 0 4096 1260 0 0 0 17 1 0 0 \
              0 0 0 0 0 0 0 0 0 0 0\n",
        );
        out
    }

    #[test]
    fn reads_the_fields_a_snapshot_needs() {
        let stat = parse(&line(b"sshd")).unwrap();
        assert_eq!(
            stat,
            PidStat {
                pid: 4242,
                comm: "sshd".into(),
                state: 'S',
                ppid: 17,
                utime_ticks: 33,
                stime_ticks: 12,
                num_threads: 3,
                starttime_ticks: 98765,
                rss_pages: 1562,
            }
        );
    }

    #[test]
    fn names_with_parentheses_spaces_and_non_utf8_bytes() {
        for (comm, want) in [
            (&b"a) S 1 (b"[..], "a) S 1 (b"),
            (b"(sd-pam)", "(sd-pam)"),
            (b"", ""),
            (b"Web Content", "Web Content"),
            (b"x\xffy", "x\u{fffd}y"),
            (b"))))", "))))"),
        ] {
            let stat = parse(&line(comm)).unwrap();
            assert_eq!(stat.comm, want);
            assert_eq!(stat.ppid, 17, "{want:?}");
            assert_eq!(stat.rss_pages, 1562, "{want:?}");
        }
    }

    #[test]
    fn cut_or_malformed_lines_say_what_is_wrong() {
        let full = line(b"init");
        // Cut inside `rss` would still parse: the walk checks for the end
        // of the line. Cut before it, a field is missing.
        let cut = &full[..full.len() / 3];
        assert!(parse(cut).unwrap_err().contains("fields after comm"));
        assert!(parse(b"").unwrap_err().contains("'('"));
        assert!(parse(b"1 (init S 0").unwrap_err().contains("')'"));
        assert!(parse(b"x (init) S").unwrap_err().contains("pid"));
        let bad_state = String::from_utf8(full.clone())
            .unwrap()
            .replace(") S ", ") 7 ");
        assert!(parse(bad_state.as_bytes()).unwrap_err().contains("state"));
        let bad_rss = String::from_utf8(full).unwrap().replace(" 1562 ", " -1 ");
        assert!(parse(bad_rss.as_bytes()).unwrap_err().contains("rss"));
    }

    /// The same fields as the procfs crate's parser finds in the same
    /// bytes, for every process on this machine, and for the lines above.
    #[test]
    fn agrees_with_the_procfs_crate() {
        use procfs::FromRead;
        let mut lines: Vec<Vec<u8>> = [&b"sshd"[..], b"a) S 1 (b", b"(sd-pam)", b"Web Content"]
            .into_iter()
            .map(line)
            .collect();
        let made = lines.len();
        // A process may exit between the listing and the read.
        for process in procfs::process::all_processes().unwrap().flatten() {
            if let Ok(text) = std::fs::read(format!("/proc/{}/stat", process.pid)) {
                lines.push(text);
            }
        }
        assert!(
            lines[made..].iter().any(|l| l.starts_with(b"1 (")),
            "read no line for pid 1"
        );
        for text in &lines {
            let shown = String::from_utf8_lossy(text);
            let ours = parse(text).unwrap_or_else(|e| panic!("{shown}: {e}"));
            let theirs = procfs::process::Stat::from_read(&text[..]).unwrap();
            let theirs = PidStat {
                pid: theirs.pid,
                comm: theirs.comm,
                state: theirs.state,
                ppid: theirs.ppid,
                utime_ticks: theirs.utime,
                stime_ticks: theirs.stime,
                num_threads: u32::try_from(theirs.num_threads).unwrap(),
                starttime_ticks: theirs.starttime,
                rss_pages: theirs.rss,
            };
            assert_eq!(ours, theirs, "{shown}");
        }
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn any_comm_reads_back(comm in proptest::collection::vec(1u8..=255, 0..16)) {
            let stat = parse(&line(&comm)).unwrap();
            prop_assert_eq!(stat.comm, String::from_utf8_lossy(&comm).into_owned());
            prop_assert_eq!(stat.starttime_ticks, 98765);
        }
    }
}
