//! This run's boot id. Stamping itself (host, boot, seq per kind, ts) is
//! the contract's: [`vigia_schema::Stamper`].

use vigia_schema::stamp::unix_nanos;
use vigia_schema::{HostToken, Stamper};

/// A stamper for a new run of the publisher on `host`.
pub fn for_this_run(host: HostToken) -> Stamper {
    Stamper::new(host, new_boot_id())
}

/// 16 hex digits from the OS's random source; with 64 bits two runs of the
/// same host never share an id in practice. Falls back to time and pid if
/// the random source fails, which keeps ids unique per start all the same.
fn new_boot_id() -> String {
    let mut bytes = [0u8; 8];
    let id = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => (unix_nanos() as u64) ^ ((std::process::id() as u64) << 40),
    };
    format!("{id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_ids_differ_between_runs() {
        let a = for_this_run(HostToken::parse("h").unwrap());
        let b = for_this_run(HostToken::parse("h").unwrap());
        assert_ne!(a.boot(), b.boot());
        assert_eq!(a.boot().len(), 16);
    }
}
