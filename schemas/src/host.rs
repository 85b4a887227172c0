//! Host tokens: the host part of every subject (`telemetry.<host>.cpu`).
//!
//! A NATS subject token must not contain `.`, `*`, `>` or white space, and
//! operators type these names, so the token is deliberately plain: the short
//! host name, lower-cased, with every character outside `[a-z0-9_-]`
//! replaced by `-`, cut to 64 characters.

use std::fmt;

/// The longest host token, in characters (all ASCII, so also bytes).
pub const MAX_LEN: usize = 64;

/// A host name reduced to a token that is safe in a NATS subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostToken(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostTokenError {
    #[error("host name {0:?} gives an empty host token (its short name, before the first '.', is empty)")]
    Empty(String),
    #[error("{0:?} is not a host token: it must be 1 to 64 characters of [a-z0-9_-]")]
    NotAToken(String),
}

impl HostToken {
    /// Derives the token from a host name such as `web-1.c.project.internal`.
    pub fn from_hostname(name: &str) -> Result<Self, HostTokenError> {
        let short = name.split('.').next().unwrap_or_default();
        let token: String = short
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(MAX_LEN)
            .collect();
        if token.is_empty() {
            return Err(HostTokenError::Empty(name.to_owned()));
        }
        Ok(Self(token))
    }

    /// Accepts a string that must already be a token (as read back from a
    /// subject or a payload); nothing is rewritten.
    pub fn parse(token: &str) -> Result<Self, HostTokenError> {
        let valid = !token.is_empty()
            && token.len() <= MAX_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(token.to_owned()))
        } else {
            Err(HostTokenError::NotAToken(token.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for HostToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str) -> String {
        HostToken::from_hostname(name).unwrap().to_string()
    }

    #[test]
    fn keeps_the_short_name_only() {
        assert_eq!(token("web-1.c.my-project.internal"), "web-1");
        assert_eq!(token("db"), "db");
    }

    #[test]
    fn lower_cases() {
        assert_eq!(token("WEB_01"), "web_01");
    }

    #[test]
    fn replaces_spaces_and_wildcards() {
        assert_eq!(token("my host"), "my-host");
        assert_eq!(token("a*b>c"), "a-b-c");
        assert_eq!(token("*"), "-");
        assert_eq!(token(">"), "-");
        assert_eq!(token("tab\there"), "tab-here");
    }

    #[test]
    fn replaces_each_unicode_character_with_one_dash() {
        assert_eq!(token("café"), "caf-");
        assert_eq!(token("ñandú-2"), "-and--2");
        assert_eq!(token("服务器"), "---");
    }

    #[test]
    fn empty_names_are_errors() {
        assert_eq!(
            HostToken::from_hostname(""),
            Err(HostTokenError::Empty(String::new()))
        );
        assert!(HostToken::from_hostname(".internal").is_err());
    }

    #[test]
    fn long_names_are_cut_to_64() {
        let name = "x".repeat(255);
        let t = token(&name);
        assert_eq!(t.len(), MAX_LEN);
        assert!(t.chars().all(|c| c == 'x'));
        let unicode = "é".repeat(255);
        assert_eq!(token(&unicode), "-".repeat(MAX_LEN));
    }

    #[test]
    fn parse_accepts_only_tokens() {
        assert!(HostToken::parse("web-1").is_ok());
        for bad in ["", "Web", "a.b", "a b", "*", ">", &"a".repeat(65)] {
            assert!(HostToken::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_derived_token_parses() {
        for name in ["a.b", "A B", "*", "ünï", &"z".repeat(300)] {
            let t = HostToken::from_hostname(name).unwrap();
            assert_eq!(HostToken::parse(t.as_str()).unwrap(), t);
        }
    }
}
