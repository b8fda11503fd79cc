//! Credentials at rest: AES-256-GCM (the `aes-gcm` crate) with a fresh random nonce per write,
//! the owning row's identity as associated data, and a key version on every ciphertext.
//!
//! Layout of a stored value: `[version: u8][nonce: 12 bytes][ciphertext + 16-byte tag]`.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the encryption key must be 32 bytes encoded as base64")]
    BadKey,
    #[error("ciphertext was made with key version {0}, which is not configured")]
    UnknownKeyVersion(u8),
    #[error("ciphertext is damaged, belongs to another record, or the key is wrong")]
    Undecryptable,
}

/// Encrypts and decrypts credentials. Cloning is cheap; `Debug` never shows key material.
#[derive(Clone)]
pub struct Cipher {
    current: u8,
    keys: Arc<HashMap<u8, Aes256Gcm>>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher").field("key_version", &self.current).finish_non_exhaustive()
    }
}

impl Cipher {
    /// A cipher with one key (base64 of 32 bytes) stamped with `version`.
    pub fn from_base64(version: u8, key_b64: &str) -> Result<Self, CryptoError> {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(key_b64.trim()).map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        let key = Key::<Aes256Gcm>::from_slice(&bytes);
        let mut keys = HashMap::new();
        keys.insert(version, Aes256Gcm::new(key));
        Ok(Cipher { current: version, keys: Arc::new(keys) })
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> String {
        let key = Aes256Gcm::generate_key(OsRng);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// Reads the key from `path`, or writes a new one there (mode 0600) when it does not exist.
    pub fn load_or_generate(version: u8, path: &Path) -> std::io::Result<Result<Self, CryptoError>> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            write_private(path, &Self::generate_key())?;
        }
        let text = std::fs::read_to_string(path)?;
        Ok(Self::from_base64(version, &text))
    }

    pub fn key_version(&self) -> u8 {
        self.current
    }

    /// Encrypts `plaintext` bound to `aad` (e.g. `b"authorized_accounts:42"`).
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = &self.keys[&self.current];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(self.current);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn decrypt(&self, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if blob.len() < 1 + NONCE_LEN + 16 {
            return Err(CryptoError::Undecryptable);
        }
        let version = blob[0];
        let cipher = self.keys.get(&version).ok_or(CryptoError::UnknownKeyVersion(version))?;
        let nonce = Nonce::from_slice(&blob[1..1 + NONCE_LEN]);
        cipher.decrypt(nonce, Payload { msg: &blob[1 + NONCE_LEN..], aad }).map_err(|_| CryptoError::Undecryptable)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::from_base64(1, &Cipher::generate_key()).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let c = cipher();
        let a = c.encrypt(b"row:1", b"refresh-token");
        let b = c.encrypt(b"row:1", b"refresh-token");
        assert_ne!(a, b, "a fresh nonce per write");
        assert_eq!(a[0], 1, "key version stamped");
        assert_eq!(c.decrypt(b"row:1", &a).unwrap(), b"refresh-token");
        assert!(!a.windows(7).any(|w| w == b"refresh"), "no plaintext in the ciphertext");
    }

    #[test]
    fn tampering_and_row_moves_are_refused() {
        let c = cipher();
        let mut blob = c.encrypt(b"row:1", b"secret");
        assert_eq!(c.decrypt(b"row:2", &blob), Err(CryptoError::Undecryptable), "bound to its row");
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert_eq!(c.decrypt(b"row:1", &blob), Err(CryptoError::Undecryptable), "tag checked");
        assert_eq!(c.decrypt(b"row:1", b"short"), Err(CryptoError::Undecryptable));
    }

    #[test]
    fn wrong_key_and_unknown_version() {
        let blob = cipher().encrypt(b"row:1", b"secret");
        assert_eq!(cipher().decrypt(b"row:1", &blob), Err(CryptoError::Undecryptable));
        let v2 = Cipher::from_base64(2, &Cipher::generate_key()).unwrap();
        assert_eq!(v2.decrypt(b"row:1", &blob), Err(CryptoError::UnknownKeyVersion(1)));
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert_eq!(Cipher::from_base64(1, "not base64!").unwrap_err(), CryptoError::BadKey);
        assert_eq!(Cipher::from_base64(1, "c2hvcnQ=").unwrap_err(), CryptoError::BadKey);
        assert!(!format!("{:?}", cipher()).contains("key:"));
    }

    #[test]
    fn generated_key_file_is_reused() {
        let dir = std::env::temp_dir().join(format!("cipher-test-{}", crate::ssr::ids::random_token(8)));
        let path = dir.join("encryption.key");
        let c1 = Cipher::load_or_generate(1, &path).unwrap().unwrap();
        let c2 = Cipher::load_or_generate(1, &path).unwrap().unwrap();
        let blob = c1.encrypt(b"x", b"y");
        assert_eq!(c2.decrypt(b"x", &blob).unwrap(), b"y");
        std::fs::remove_dir_all(dir).ok();
    }
}
