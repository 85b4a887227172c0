//! A URL as it may be shown: in a log line, an error message, a status.
//!
//! The sink and vigiactl both name the database they could not reach, and
//! its URL may hold a password (`mysql://vigia:s3cret@db/vigia`). One rule
//! for both: the password becomes `***`, so the reader still learns that
//! one was given, and nothing else changes. A user without a password is
//! shown as it is: a user name is no secret.

/// `url` with the password of its user info replaced by `***`.
///
/// The user info ends at the *last* `@` (see below), so a password
/// holding `@` or `/` (written raw rather than percent-encoded, as people
/// do) is hidden whole; a URL with no user info is returned unchanged.
pub fn redact(url: &str) -> String {
    // The scheme is optional here: a URL typed without it still reaches a
    // log line. Userinfo ends at the LAST `@`, even one in the query: a
    // password may hold `?`, `#`, `/` and `@`, and hiding too much of a
    // URL is harmless where showing a secret is not.
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_becomes_stars() {
        assert_eq!(
            redact("mysql://vigia:s3cret@db:3306/vigia?ssl-mode=required"),
            "mysql://vigia:***@db:3306/vigia?ssl-mode=required"
        );
    }

    #[test]
    fn a_user_without_password_and_a_url_without_user_are_shown_as_they_are() {
        for url in [
            "mysql://root@127.0.0.1/vigia",
            "mysql://127.0.0.1:3306/vigia",
            "nonsense",
            "mysql://db/vigia?ssl-ca=/etc/ca@2.pem",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn a_password_holding_at_or_slash_is_hidden_whole() {
        assert_eq!(
            redact("mysql://vigia:p@ss@db/vigia"),
            "mysql://vigia:***@db/vigia"
        );
        assert_eq!(
            redact("mysql://vigia:pa/ss@db/vigia"),
            "mysql://vigia:***@db/vigia"
        );
        assert!(!redact("mysql://u:x@y:z@db/v?a=b@c").contains('x'));
    }

    #[test]
    fn a_password_holding_a_query_mark_or_a_missing_scheme_is_hidden_too() {
        for url in [
            "mysql://u:SEKRIT?x@127.0.0.1:1/x",
            "mysql://u:SEK#RIT@127.0.0.1:1/x",
            "u:SEKRIT@127.0.0.1:1/x",
            "mysql:/u:SEKRIT@127.0.0.1:1/x",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("SEK"), "{url} -> {shown}");
            assert!(shown.ends_with("@127.0.0.1:1/x"), "{url} -> {shown}");
        }
    }
}
