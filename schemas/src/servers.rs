//! A list of NATS servers as every vigia program takes it: one flag,
//! `--nats-url`, holding one URL or several separated by commas
//! (`nats://n1:4222,nats://n2:4222,nats://n3:4222`), the form the NATS
//! tools use. A client given several tries them in turn at start and
//! fails over between them (and any the cluster advertises) afterwards,
//! so a publisher keeps publishing while one node of a cluster is down.

/// Where every program looks for NATS unless told otherwise: the local
/// server, on its standard port.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// Why a server list was refused: it names the list and the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerListError {
    #[error("server list {list:?} has an empty entry (position {position})")]
    EmptyEntry { list: String, position: usize },
    #[error("server list {list:?} is empty")]
    Empty { list: String },
}

/// Splits a comma-separated server list into its URLs, trimmed. An empty
/// entry (`a,,b`, a trailing comma) is refused rather than skipped: it is
/// a typo, and a silently shorter list would fail over to fewer servers
/// than the operator wrote down.
pub fn server_urls(list: &str) -> Result<Vec<String>, ServerListError> {
    if list.trim().is_empty() {
        return Err(ServerListError::Empty {
            list: list.to_owned(),
        });
    }
    list.split(',')
        .enumerate()
        .map(|(i, url)| {
            let url = url.trim();
            if url.is_empty() {
                Err(ServerListError::EmptyEntry {
                    list: list.to_owned(),
                    position: i + 1,
                })
            } else {
                Ok(url.to_owned())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_list_of_one() {
        assert_eq!(
            server_urls("nats://127.0.0.1:4222").unwrap(),
            ["nats://127.0.0.1:4222"]
        );
    }

    #[test]
    fn several_urls_split_on_commas_and_lose_surrounding_spaces() {
        assert_eq!(
            server_urls("nats://a:4222, nats://b:4222 ,nats://c:4222").unwrap(),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
    }

    #[test]
    fn an_empty_entry_or_list_is_refused_and_named() {
        let e = server_urls("nats://a:4222,,nats://c:4222").unwrap_err();
        assert_eq!(
            e.to_string(),
            "server list \"nats://a:4222,,nats://c:4222\" has an empty entry (position 2)"
        );
        assert!(matches!(
            server_urls("nats://a:4222,"),
            Err(ServerListError::EmptyEntry { position: 2, .. })
        ));
        assert!(matches!(
            server_urls(" "),
            Err(ServerListError::Empty { .. })
        ));
    }
}
