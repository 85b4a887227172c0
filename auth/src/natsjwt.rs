//! NATS JWTs: `base64url(header).base64url(claims).base64url(signature)`
//! where the header is `{"typ":"JWT","alg":"ed25519-nkey"}` and the
//! signature is the issuer nkey's ed25519 signature of the first two
//! parts. The server sends its authorization requests this way and expects
//! the response (and the user JWT inside it) signed by the callout issuer.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use nkeys::KeyPair;
use serde::de::DeserializeOwned;
use serde::Serialize;

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;
/// Longest JWT read: a request carries the client's connect options
/// (a GCE token is ~1 KB) and, with TLS, its certificates.
pub const MAX_LEN: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("not a JWT (expected three base64url parts)")]
    Shape,
    #[error("longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("header is not a NATS ed25519-nkey JWT header")]
    Header,
    #[error("claims are not valid JSON of the expected shape: {0}")]
    Claims(String),
    #[error("issuer {0:?} is not a public nkey")]
    Issuer(String),
    #[error("signature does not verify against the issuer")]
    Signature,
}

/// Signs `claims` with `issuer`.
pub fn encode(claims: &impl Serialize, issuer: &KeyPair) -> Result<String, JwtError> {
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let body = serde_json::to_vec(claims).map_err(|e| JwtError::Claims(e.to_string()))?;
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(|_| JwtError::Signature)?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Decodes a JWT and checks that it is signed by the nkey its `iss` names.
/// Returns the claims and that issuer; whether the issuer is one to trust
/// is the caller's decision.
pub fn decode<T: DeserializeOwned>(jwt: &str) -> Result<(T, String), JwtError> {
    if jwt.len() > MAX_LEN {
        return Err(JwtError::TooLong);
    }
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Shape);
    };
    let header_json: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(JwtError::Header)?;
    let alg = header_json.get("alg").and_then(|a| a.as_str());
    if !matches!(alg, Some("ed25519-nkey") | Some("ed25519")) {
        return Err(JwtError::Header);
    }
    let body_bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| JwtError::Shape)?;
    let issued: Issued =
        serde_json::from_slice(&body_bytes).map_err(|e| JwtError::Claims(e.to_string()))?;
    let key =
        KeyPair::from_public_key(&issued.iss).map_err(|_| JwtError::Issuer(issued.iss.clone()))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Signature)?;
    let signed_len = header.len() + 1 + body.len();
    key.verify(&jwt.trim().as_bytes()[..signed_len], &signature)
        .map_err(|_| JwtError::Signature)?;
    let claims =
        serde_json::from_slice(&body_bytes).map_err(|e| JwtError::Claims(e.to_string()))?;
    Ok((claims, issued.iss))
}

#[derive(serde::Deserialize)]
struct Issued {
    iss: String,
}

/// A JWT id: 26 base32 characters of randomness (the server does not
/// check its form; it must only be unique).
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    // getrandom fails only where the OS has no entropy source at all.
    if getrandom::fill(&mut bytes).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = now.to_le_bytes();
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut value = u128::from_le_bytes(bytes);
    (0..26)
        .map(|_| {
            let c = ALPHABET[(value & 31) as usize] as char;
            value >>= 5;
            c
        })
        .collect()
}

/// Seconds since the epoch, as JWTs count time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Claims {
        iss: String,
        sub: String,
    }

    #[test]
    fn a_signed_jwt_decodes_to_its_claims_and_issuer() {
        let issuer = KeyPair::new_account();
        let claims = Claims {
            iss: issuer.public_key(),
            sub: "UABC".into(),
        };
        let jwt = encode(&claims, &issuer).unwrap();
        let (back, iss): (Claims, String) = decode(&jwt).unwrap();
        assert_eq!(back, claims);
        assert_eq!(iss, issuer.public_key());
    }

    #[test]
    fn a_jwt_whose_claims_were_changed_or_signed_by_another_key_is_refused() {
        let issuer = KeyPair::new_account();
        let claims = Claims {
            iss: issuer.public_key(),
            sub: "UABC".into(),
        };
        let jwt = encode(&claims, &issuer).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let forged_body = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"{}","sub":"UEVIL"}}"#,
            issuer.public_key()
        ));
        let forged = format!("{}.{forged_body}.{}", parts[0], parts[2]);
        assert_eq!(decode::<Claims>(&forged).unwrap_err(), JwtError::Signature);
        let other = KeyPair::new_account();
        let by_other = encode(&claims, &other).unwrap();
        assert_eq!(
            decode::<Claims>(&by_other).unwrap_err(),
            JwtError::Signature
        );
        assert_eq!(decode::<Claims>("a.b").unwrap_err(), JwtError::Shape);
        assert_eq!(
            decode::<Claims>(&"x".repeat(MAX_LEN + 1)).unwrap_err(),
            JwtError::TooLong
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_decodes_to_an_error_or_verified_claims_never_a_panic(text in ".{0,400}") {
            let _ = decode::<serde_json::Value>(&text);
        }

        #[test]
        fn any_three_base64_parts_decode_without_panicking(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            c in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let jwt = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(a),
                URL_SAFE_NO_PAD.encode(b),
                URL_SAFE_NO_PAD.encode(c)
            );
            proptest::prop_assert!(decode::<serde_json::Value>(&jwt).is_err());
        }

        #[test]
        fn signed_claims_round_trip(sub in "[A-Z0-9]{0,60}", name in ".{0,100}") {
            let issuer = KeyPair::new_account();
            let claims = serde_json::json!({"iss": issuer.public_key(), "sub": sub, "name": name});
            let jwt = encode(&claims, &issuer).unwrap();
            let (back, iss): (serde_json::Value, String) = decode(&jwt).unwrap();
            proptest::prop_assert_eq!(back, claims);
            proptest::prop_assert_eq!(iss, issuer.public_key());
        }
    }

    #[test]
    fn ids_are_26_base32_characters_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 26);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)));
        assert_ne!(a, b);
    }
}
