//! The publisher's parser of /proc/<pid>/stat lines
//! (`source::pid_stat::parse`). The name in the line is set by any process
//! (any bytes but NUL, parentheses and spaces included), so the line is
//! untrusted. Beyond "never panics": a parsed line, printed again the way
//! the kernel prints it, parses to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_publisher::source::pid_stat::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(stat) = parse(data) else { return };
    let line = format!(
        "{} ({}) {} {} 1 1 0 -1 0 0 0 0 0 {} {} 0 0 20 0 {} 0 {} 0 {} 0 0 0\n",
        stat.pid,
        stat.comm,
        stat.state,
        stat.ppid,
        stat.utime_ticks,
        stat.stime_ticks,
        stat.num_threads,
        stat.starttime_ticks,
        stat.rss_pages,
    );
    let again = parse(line.as_bytes()).expect("a line printed from parsed fields parses");
    assert_eq!(again, stat);
});
