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
    /// The entry's text is left out: it may hold key material.
    #[error("key entry {0} must look like v<version>:<32 bytes as base64>")]
    BadKeyEntry(usize),
    #[error("key version v{0} is configured twice")]
    DuplicateVersion(u8),
    #[error(
        "the primary key version v{primary} (--encryption-key-version) is not among the configured keys ({configured})"
    )]
    PrimaryNotConfigured { primary: u8, configured: String },
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
        let mut keys = HashMap::new();
        keys.insert(version, key_from_base64(key_b64)?);
        Ok(Cipher { current: version, keys: Arc::new(keys) })
    }

    /// A cipher with several keys, e.g. while rotating: `entries` are `v<version>:<base64>` (the
    /// `v` may be left out); new values are written with `primary`, which must be one of them.
    pub fn from_entries<S: AsRef<str>>(primary: u8, entries: &[S]) -> Result<Self, CryptoError> {
        let mut keys = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let (version, key_b64) = entry.as_ref().trim().split_once(':').ok_or(CryptoError::BadKeyEntry(i + 1))?;
            let version = version.trim();
            let version: u8 =
                version.strip_prefix('v').unwrap_or(version).parse().map_err(|_| CryptoError::BadKeyEntry(i + 1))?;
            let key = key_from_base64(key_b64).map_err(|_| CryptoError::BadKeyEntry(i + 1))?;
            if keys.insert(version, key).is_some() {
                return Err(CryptoError::DuplicateVersion(version));
            }
        }
        if !keys.contains_key(&primary) {
            let mut configured: Vec<u8> = keys.keys().copied().collect();
            configured.sort_unstable();
            let configured = configured.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", ");
            return Err(CryptoError::PrimaryNotConfigured {
                primary,
                configured: if configured.is_empty() { "none".into() } else { configured },
            });
        }
        Ok(Cipher { current: primary, keys: Arc::new(keys) })
    }

    /// The key entries of a key file: one `v<version>:<base64>` per line; blank lines and lines
    /// starting with `#` are skipped.
    pub fn key_file_entries(text: &str) -> Vec<&str> {
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
    }

    /// Every configured key version, ascending.
    pub fn versions(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self.keys.keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn has_version(&self, version: u8) -> bool {
        self.keys.contains_key(&version)
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

    /// The key version a stored value was written with.
    pub fn version_of(blob: &[u8]) -> Option<u8> {
        blob.first().copied()
    }

    /// The same plaintext under the primary key, bound to the same `aad`.
    pub fn reencrypt(&self, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(self.encrypt(aad, &self.decrypt(aad, blob)?))
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

fn key_from_base64(key_b64: &str) -> Result<Aes256Gcm, CryptoError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(key_b64.trim()).map_err(|_| CryptoError::BadKey)?;
    if bytes.len() != 32 {
        return Err(CryptoError::BadKey);
    }
    Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)))
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
    fn several_keys_read_every_version_and_write_the_primary() {
        let (k1, k2) = (Cipher::generate_key(), Cipher::generate_key());
        let v1 = Cipher::from_base64(1, &k1).unwrap();
        let old = v1.encrypt(b"row:1", b"secret");
        let both = Cipher::from_entries(2, &[format!("v1:{k1}"), format!("2:{k2}")]).unwrap();
        assert_eq!(both.versions(), vec![1, 2]);
        assert_eq!(both.decrypt(b"row:1", &old).unwrap(), b"secret");
        let new = both.reencrypt(b"row:1", &old).unwrap();
        assert_eq!(Cipher::version_of(&new), Some(2));
        assert_eq!(both.decrypt(b"row:1", &new).unwrap(), b"secret");
        assert_eq!(both.reencrypt(b"row:2", &old), Err(CryptoError::Undecryptable), "same AAD only");
        assert_eq!(v1.decrypt(b"row:1", &new), Err(CryptoError::UnknownKeyVersion(2)));
    }

    #[test]
    fn key_lists_are_checked_without_echoing_keys() {
        let k = Cipher::generate_key();
        let err = Cipher::from_entries(3, &[format!("v1:{k}"), format!("v2:{k}")]).unwrap_err();
        assert_eq!(err, CryptoError::PrimaryNotConfigured { primary: 3, configured: "v1, v2".into() });
        assert!(err.to_string().contains("v3") && err.to_string().contains("v1, v2"), "{err}");
        assert_eq!(
            Cipher::from_entries(1, &[format!("v1:{k}"), format!("v1:{k}")]).unwrap_err(),
            CryptoError::DuplicateVersion(1)
        );
        let bad = Cipher::from_entries(1, &[format!("v1:{k}"), k.clone()]).unwrap_err();
        assert_eq!(bad, CryptoError::BadKeyEntry(2));
        assert!(!bad.to_string().contains(&k));
        assert_eq!(Cipher::from_entries(1, &["v1:c2hvcnQ="]).unwrap_err(), CryptoError::BadKeyEntry(1));
        assert_eq!(Cipher::from_entries(1, &[format!("vx:{k}")]).unwrap_err(), CryptoError::BadKeyEntry(1));
        let text = format!("# rotated 2026-12\n v1:{k}\n\n#v0:old\nv2:{k}\n");
        assert_eq!(Cipher::key_file_entries(&text), vec![format!("v1:{k}"), format!("v2:{k}")]);
        assert!(!format!("{:?}", Cipher::from_entries(1, &[format!("v1:{k}")]).unwrap()).contains(&k));
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
