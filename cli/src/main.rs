#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use vigiactl::args::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // An operator's tool talks to one server at a time: one thread will do.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vigiactl: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(vigiactl::run(cli));
    ExitCode::from(code)
}
