//! The log's signing key.

use std::fmt;

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};

use super::AuditError;
use super::canonical::{hex, unhex};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key [`AuditKey`] accepts, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// The HMAC-SHA256 key the log signs its entries with.
///
/// Use at least [`MIN_KEY_LEN`] random bytes (32 is usual), kept where the log's storage is
/// not: whoever holds the key can rewrite a chain undetected. The same key verifies the log
/// later. `Debug` never shows it.
///
/// ```
/// use loomflow::telemetry::audit::AuditKey;
///
/// let key = AuditKey::from_hex("000102030405060708090a0b0c0d0e0f")?;
/// assert_eq!(format!("{key:?}"), "AuditKey(<redacted>)");
/// assert!(AuditKey::from_bytes(b"too short").is_err());
/// # Ok::<(), loomflow::telemetry::audit::AuditError>(())
/// ```
#[derive(Clone)]
pub struct AuditKey {
    /// The HMAC keyed once; each signature starts from a copy.
    mac: HmacSha256,
}

impl AuditKey {
    /// A key of raw bytes, at least [`MIN_KEY_LEN`] of them.
    pub fn from_bytes(bytes: impl AsRef<[u8]>) -> Result<Self, AuditError> {
        let bytes = bytes.as_ref();
        if bytes.len() < MIN_KEY_LEN {
            return Err(AuditError::Key {
                reason: format!(
                    "the key is {} bytes long; use at least {MIN_KEY_LEN} random bytes (32 is usual)",
                    bytes.len()
                ),
            });
        }
        let mac = HmacSha256::new_from_slice(bytes)
            .map_err(|e| AuditError::Key { reason: format!("HMAC-SHA256 refused the key: {e}") })?;
        Ok(Self { mac })
    }

    /// A key written as hex (either case; surrounding whitespace is ignored), at least
    /// [`MIN_KEY_LEN`] bytes: 32 hex digits or more.
    pub fn from_hex(text: &str) -> Result<Self, AuditError> {
        let bytes = unhex(text.trim()).ok_or_else(|| AuditError::Key {
            reason: "the key is not hex; write it as an even number of hex digits (e.g. `openssl rand -hex 32`)"
                .to_owned(),
        })?;
        Self::from_bytes(bytes)
    }

    /// The hex HMAC-SHA256 of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(message);
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `sig` (hex) is the HMAC-SHA256 of `message`, compared in constant time.
    pub(crate) fn verifies(&self, message: &[u8], sig: &str) -> bool {
        let Some(sig) = unhex(sig) else { return false };
        let mut mac = self.mac.clone();
        mac.update(message);
        mac.verify_slice(&sig).is_ok()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_malformed_keys_are_refused_with_what_to_do() {
        let short = AuditKey::from_bytes([7u8; 15]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(short.contains("15 bytes") && short.contains("at least 16"), "{short}");
        let not_hex = AuditKey::from_hex("not hex at all!!").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(not_hex.contains("not hex"), "{not_hex}");
        assert!(AuditKey::from_hex(" 000102030405060708090A0B0C0D0E0F\n").is_ok());
    }

    #[test]
    fn signatures_verify_only_with_the_same_key_and_message() -> Result<(), AuditError> {
        let key = AuditKey::from_bytes([1u8; 32])?;
        let other = AuditKey::from_bytes([2u8; 32])?;
        let sig = key.sign(b"entry");
        assert_eq!(sig.len(), 64);
        assert!(key.verifies(b"entry", &sig));
        assert!(!key.verifies(b"entry!", &sig));
        assert!(!other.verifies(b"entry", &sig));
        assert!(!key.verifies(b"entry", "not hex"));
        assert!(!key.verifies(b"entry", ""));
        Ok(())
    }

    #[test]
    fn debug_never_shows_the_key() -> Result<(), AuditError> {
        let key = AuditKey::from_hex("00112233445566778899aabbccddeeff")?;
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("0011") && !shown.contains("aabb"), "{shown}");
        Ok(())
    }

    #[test]
    fn sha256_is_the_known_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
