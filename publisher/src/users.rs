//! User names for uids, from /etc/passwd.
//!
//! Read once and kept: a host has few users and they rarely change. A uid
//! not in the table triggers one re-read, at most once a minute, so a user
//! added after the publisher started gets its name without a read per
//! snapshot for uids that truly have none (containers' uids, for one).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const REREAD_AFTER: Duration = Duration::from_secs(60);

pub struct UserNames {
    path: PathBuf,
    names: HashMap<u32, String>,
    read_at: Option<Instant>,
}

impl UserNames {
    pub fn new() -> Self {
        Self::from_file("/etc/passwd")
    }

    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        let mut users = Self {
            path: path.into(),
            names: HashMap::new(),
            read_at: None,
        };
        users.reload();
        users
    }

    /// The name of `uid`, or the number as text when it has none.
    pub fn name(&mut self, uid: u32) -> String {
        if let Some(name) = self.names.get(&uid) {
            return name.clone();
        }
        if self.read_at.is_none_or(|at| at.elapsed() >= REREAD_AFTER) {
            self.reload();
            if let Some(name) = self.names.get(&uid) {
                return name.clone();
            }
        }
        uid.to_string()
    }

    fn reload(&mut self) {
        self.read_at = Some(Instant::now());
        // A host without a readable passwd file still has uids; they show
        // as numbers.
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            self.names = parse_passwd(&text);
        }
    }
}

impl Default for UserNames {
    fn default() -> Self {
        Self::new()
    }
}

/// `name:password:uid:gid:gecos:home:shell` lines; the first name of a uid
/// wins, as getpwuid(3) returns it.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(uid) = uid.parse::<u32>() {
            names.entry(uid).or_insert_with(|| name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let names = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\ntoor:x:0:0::/:/bin/sh\n",
        );
        assert_eq!(names.get(&0).map(String::as_str), Some("root"));
        assert_eq!(names.get(&33).map(String::as_str), Some("www-data"));
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn unknown_uids_are_numbers() {
        let mut users = UserNames::from_file("/nonexistent/passwd");
        assert_eq!(users.name(4242), "4242");
    }

    #[test]
    fn this_hosts_root_has_a_name() {
        assert_eq!(UserNames::new().name(0), "root");
    }
}
