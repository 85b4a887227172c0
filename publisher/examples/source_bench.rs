//! Cost of one full process-table snapshot through each source, as the
//! publisher takes it (read and parse). Used inside the test VM by
//! `scripts/kernel/harness.sh --bench`; runs anywhere:
//!
//!     cargo run --release --example source_bench -- procfs 11
//!
//! Prints one line: `BENCH source=<s> procs=<n> runs=<r> median_us=<m> min_us=<m>`.

#![forbid(unsafe_code)]

use std::time::Instant;

use vigia_publisher::source::module::ModuleSource;
use vigia_publisher::source::procfs::ProcfsSource;
use vigia_publisher::source::Source;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "procfs".into());
    let runs: usize = args
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(11)
        .max(1);
    let mut source: Box<dyn Source> = match which.as_str() {
        "module" => match ModuleSource::open() {
            Ok(s) => Box::new(s),
            Err(e) => {
                eprintln!("source_bench: {e}");
                std::process::exit(1);
            }
        },
        "procfs" => Box::new(ProcfsSource::new()),
        other => {
            eprintln!("usage: source_bench module|procfs [RUNS] (got {other:?})");
            std::process::exit(2);
        }
    };
    // One warm-up run: page cache, allocator, the module's seq_file sizing.
    let mut procs = match source.processes() {
        Ok(p) => p.len(),
        Err(e) => {
            eprintln!("source_bench: {e}");
            std::process::exit(1);
        }
    };
    let mut micros = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        match source.processes() {
            Ok(p) => procs = p.len(),
            Err(e) => {
                eprintln!("source_bench: {e}");
                std::process::exit(1);
            }
        }
        micros.push(start.elapsed().as_micros());
    }
    micros.sort_unstable();
    println!(
        "BENCH source={which} procs={procs} runs={runs} median_us={} min_us={}",
        micros[micros.len() / 2],
        micros[0]
    );
}
