//! vigiactl: the operator's side of vigia.
//!
//! Each subcommand is a module; [`run`] dispatches and turns the outcome
//! into an exit code and, on error, one line on stderr.

#![forbid(unsafe_code)]

pub mod args;
pub mod connect;
pub mod decode;
pub mod enroll;
pub mod gather;
pub mod hosts;
pub mod kill;
pub mod render;
pub mod watch;

use args::{Cli, Command};

/// Runs the command line; returns the process's exit code.
pub async fn run(cli: Cli) -> u8 {
    let result = match cli.command {
        Command::Kill(args) => {
            let outcome = kill::run(&args).await;
            println!("{}", outcome.line());
            return outcome.exit_code();
        }
        Command::Hosts(args) => hosts::run(&args).await,
        Command::Watch(args) => watch::run(&args).await,
        Command::Decode(args) => decode::run(&args),
        Command::Enroll(args) => enroll::enroll(&args),
        Command::Revoke(args) => enroll::revoke(&args),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            // An error may quote the wire (a decode error names the map
            // key it failed on): escaped, so it stays one line.
            let error = format!("{error:#}");
            eprintln!("vigiactl: {}", vigia_schema::text::Escaped(&error));
            1
        }
    }
}
