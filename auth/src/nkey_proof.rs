//! An enrolled identity proves it holds its key by signing the nonce the
//! server sent it. The server passes the nonce, the public key and the
//! signature to the callout without checking them (it knows no such
//! user), so the check is ours.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use nkeys::KeyPair;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("nkey {0:?} is not a public user nkey")]
    NotAUserKey(String),
    #[error("no nonce was signed (the server must send one: give it at least one nkey user)")]
    NoNonce,
    #[error("the nonce signature is not base64")]
    Encoding,
    #[error("the nonce signature does not verify against nkey {0}")]
    Signature(String),
}

/// Checks that `signature` (base64url, or standard base64) is `public_key`'s
/// signature of `nonce`.
pub fn verify(
    public_key: &str,
    nonce: Option<&str>,
    signature: Option<&str>,
) -> Result<(), ProofError> {
    let key = KeyPair::from_public_key(public_key)
        .ok()
        .filter(|k| k.public_key().starts_with('U'))
        .ok_or_else(|| ProofError::NotAUserKey(public_key.to_owned()))?;
    let (Some(nonce), Some(signature)) = (nonce, signature) else {
        return Err(ProofError::NoNonce);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .or_else(|_| STANDARD.decode(signature))
        .map_err(|_| ProofError::Encoding)?;
    key.verify(nonce.as_bytes(), &signature)
        .map_err(|_| ProofError::Signature(public_key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_holder_of_the_key_can_sign_the_nonce() {
        let key = KeyPair::new_user();
        let nonce = "n0nce";
        let signature = URL_SAFE_NO_PAD.encode(key.sign(nonce.as_bytes()).unwrap());
        assert_eq!(
            verify(&key.public_key(), Some(nonce), Some(&signature)),
            Ok(())
        );
        assert_eq!(
            verify(&key.public_key(), Some("other"), Some(&signature)),
            Err(ProofError::Signature(key.public_key()))
        );
        let thief = KeyPair::new_user();
        let forged = URL_SAFE_NO_PAD.encode(thief.sign(nonce.as_bytes()).unwrap());
        assert!(verify(&key.public_key(), Some(nonce), Some(&forged)).is_err());
        assert_eq!(
            verify(&key.public_key(), None, Some(&signature)),
            Err(ProofError::NoNonce)
        );
        assert_eq!(
            verify(&key.public_key(), Some(nonce), Some("!!")),
            Err(ProofError::Encoding)
        );
        let account = KeyPair::new_account().public_key();
        assert!(matches!(
            verify(&account, Some(nonce), Some(&signature)),
            Err(ProofError::NotAUserKey(_))
        ));
    }
}
