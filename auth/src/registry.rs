//! The enrolled keys: which public nkey is which identity.
//!
//! A plain text file, one identity a line: `<role> <name> <public nkey>`
//! (`#` starts a comment). `vigiactl enroll` adds or replaces a line (a new
//! key for a name rotates it: the old key stops working), `vigiactl revoke`
//! removes it. vigia-auth reads the file at every authorization request, so
//! an enrolment or a revocation counts from the next connect, with no
//! reload. Only public keys are here: the file is no secret, but whoever
//! can write it can enrol, so it belongs to the operator who runs vigia-auth.

use std::path::Path;

use nkeys::KeyPair;
use vigia_schema::{HostToken, Role};

use crate::Identity;

/// Where vigia-auth reads the registry and `vigiactl enroll` writes it,
/// unless told otherwise (`--registry`, `VIGIA_IDENTITIES`).
pub const DEFAULT_PATH: &str = "/etc/vigia/identities";

/// A registry larger than this is refused rather than read.
const MAX_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path}:{line}: {why}")]
    Line {
        path: String,
        line: usize,
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub identity: Identity,
    pub public_key: String,
}

/// Reads every entry; a missing file is an empty registry.
pub fn load(path: &Path) -> Result<Vec<Entry>, RegistryError> {
    let shown = path.display().to_string();
    let text = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(RegistryError::Read {
                path: shown,
                source,
            })
        }
        Ok(meta) if meta.len() > MAX_BYTES => return Err(RegistryError::TooLarge { path: shown }),
        Ok(_) => std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: shown.clone(),
            source,
        })?,
    };
    parse(&text, &shown)
}

/// Reads the registry's text; `shown` names the file in errors. Public for
/// the fuzz target: the registry is written by whoever enrols, and read by
/// vigia-auth at every connect.
pub fn parse(text: &str, shown: &str) -> Result<Vec<Entry>, RegistryError> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| RegistryError::Line {
            path: shown.to_owned(),
            line: index + 1,
            why,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [role, name, key] = fields[..] else {
            return Err(bad("expected `<role> <name> <public nkey>`".into()));
        };
        let role = Role::parse(role).ok_or_else(|| bad(format!("unknown role {role:?}")))?;
        let name = HostToken::parse(name).map_err(|e| bad(e.to_string()))?;
        let is_user_key = KeyPair::from_public_key(key)
            .map(|k| k.public_key().starts_with('U'))
            .unwrap_or(false);
        if !is_user_key {
            return Err(bad(format!("{key:?} is not a public user nkey (U...)")));
        }
        entries.push(Entry {
            identity: Identity { role, name },
            public_key: key.to_owned(),
        });
    }
    Ok(entries)
}

/// The identity enrolled with `public_key`, if any.
pub fn find(entries: &[Entry], public_key: &str) -> Option<Identity> {
    entries
        .iter()
        .find(|e| e.public_key == public_key)
        .map(|e| e.identity.clone())
}

/// Makes a new user nkey for `identity`, replacing any key it had, and
/// returns it (its seed goes to the identity, never into the registry).
pub fn enroll(path: &Path, identity: &Identity) -> Result<KeyPair, RegistryError> {
    let key = KeyPair::new_user();
    let mut entries = load(path)?;
    entries.retain(|e| e.identity != *identity);
    entries.push(Entry {
        identity: identity.clone(),
        public_key: key.public_key(),
    });
    store(path, &entries)?;
    Ok(key)
}

/// Removes `identity`; returns whether it was enrolled.
pub fn revoke(path: &Path, identity: &Identity) -> Result<bool, RegistryError> {
    let mut entries = load(path)?;
    let before = entries.len();
    entries.retain(|e| e.identity != *identity);
    if entries.len() == before {
        return Ok(false);
    }
    store(path, &entries)?;
    Ok(true)
}

/// The registry's text for `entries`, as [`parse`] reads it back.
pub fn render(entries: &[Entry]) -> String {
    let mut text = String::from("# vigia enrolled identities: <role> <name> <public nkey>\n");
    for e in entries {
        text.push_str(&format!(
            "{} {} {}\n",
            e.identity.role, e.identity.name, e.public_key
        ));
    }
    text
}

/// Writes beside and renames over, so a reader never sees half a file.
fn store(path: &Path, entries: &[Entry]) -> Result<(), RegistryError> {
    let text = render(entries);
    let shown = path.display().to_string();
    let write = |source| RegistryError::Write {
        path: shown.clone(),
        source,
    };
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).map_err(write)?;
    std::fs::rename(&temporary, path).map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(role: Role, name: &str) -> Identity {
        Identity {
            role,
            name: HostToken::parse(name).unwrap(),
        }
    }

    #[test]
    fn enrolling_again_rotates_and_revoking_removes() {
        let dir = std::env::temp_dir().join(format!("vigia-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("identities");
        let _ = std::fs::remove_file(&path);
        let web = id(Role::Host, "web-1");
        let first = enroll(&path, &web).unwrap();
        let alice = enroll(&path, &id(Role::Operator, "alice")).unwrap();
        let second = enroll(&path, &web).unwrap();
        let entries = load(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(find(&entries, &first.public_key()), None);
        assert_eq!(find(&entries, &second.public_key()), Some(web.clone()));
        assert!(revoke(&path, &web).unwrap());
        assert!(!revoke(&path, &web).unwrap());
        let entries = load(&path).unwrap();
        assert_eq!(find(&entries, &second.public_key()), None);
        assert_eq!(
            find(&entries, &alice.public_key()),
            Some(id(Role::Operator, "alice"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_line_names_the_file_the_line_and_the_value() {
        let e = parse("host web-1 NOTAKEY\n", "ids")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ids:1") && e.contains("NOTAKEY"), "{e}");
        let account = KeyPair::new_account().public_key();
        let e = parse(&format!("# c\nhost web-1 {account}\n"), "ids")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ids:2") && e.contains("not a public user nkey"),
            "{e}"
        );
        let e = parse("admin x UA\n", "ids").unwrap_err().to_string();
        assert!(e.contains("\"admin\""), "{e}");
        let e = parse("host Web.1 UA\n", "ids").unwrap_err().to_string();
        assert!(e.contains("Web.1"), "{e}");
    }
}
