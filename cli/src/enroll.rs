//! `vigiactl enroll` and `vigiactl revoke`: the operator's side of the
//! identities vigia-auth checks (auth/src/registry.rs has the file's form).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use anyhow::Context as _;
use vigia_auth::{registry, Identity};
use vigia_schema::{HostToken, Role};

use crate::args::{EnrollArgs, RevokeArgs, Who};

fn identity(who: &Who) -> anyhow::Result<Identity> {
    let (role, flag, name) = match who {
        Who { host: Some(n), .. } => (Role::Host, "--host", n),
        Who {
            operator: Some(n), ..
        } => (Role::Operator, "--operator", n),
        Who {
            watcher: Some(n), ..
        } => (Role::Watcher, "--watcher", n),
        Who { sink: Some(n), .. } => (Role::Sink, "--sink", n),
        _ => anyhow::bail!("name one of --host, --operator, --watcher, --sink"),
    };
    // A host by its host name, reduced as its publisher reduces it (and as
    // vigia-auth does a GCE instance's), so the key matches what the host
    // publishes as; other names are chosen here and must be tokens already.
    let name = if role == Role::Host {
        HostToken::from_hostname(name)
    } else {
        HostToken::parse(name)
    }
    .with_context(|| format!("{flag} {name:?}"))?;
    Ok(Identity { role, name })
}

/// Enrols, writes the seed, prints what was done.
pub fn enroll(args: &EnrollArgs) -> anyhow::Result<()> {
    let identity = identity(&args.who)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.nk", identity.name)));
    // Create the seed file first, so that a failure leaves no enrolled key
    // nobody holds.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&out)
        .with_context(|| format!("--out {}", out.display()))?;
    let key = registry::enroll(&args.registry, &identity)?;
    let seed = key.seed().map_err(|e| anyhow::anyhow!("{e}"))?;
    writeln!(file, "{seed}").with_context(|| format!("writing {}", out.display()))?;
    println!(
        "enrolled {identity} as {} in {}; seed in {} (give it to that {} only)",
        key.public_key(),
        args.registry.display(),
        out.display(),
        identity.role
    );
    Ok(())
}

pub fn revoke(args: &RevokeArgs) -> anyhow::Result<()> {
    let identity = identity(&args.who)?;
    if registry::revoke(&args.registry, &identity)? {
        println!("revoked {identity}: refused from its next connect");
        Ok(())
    } else {
        anyhow::bail!("{identity} is not enrolled in {}", args.registry.display())
    }
}
