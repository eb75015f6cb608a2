//! Typed identifiers: who a run is for ([`UserId`]), which conversation it continues
//! ([`SessionId`]) and which run it is ([`RunId`]).
//!
//! They are distinct types so that a store API which takes a `&UserId` cannot be handed a
//! session id by mistake, and "forgot to namespace by user" does not compile.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id was empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which kind of id (`user id`, `session id`, ...).
        kind: &'static str,
    },
    /// The id was longer than [`MAX_ID_LEN`] bytes.
    #[error("{kind} is {len} bytes long; the limit is {MAX_ID_LEN}")]
    TooLong {
        /// Which kind of id.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The id contained a control character.
    #[error("{kind} contains a control character; use printable text")]
    ControlCharacter {
        /// Which kind of id.
        kind: &'static str,
    },
    /// A run id did not have the `run_` + 26 Crockford base32 characters form.
    #[error("`{0}` is not a run id (expected `run_` followed by 26 base32 characters)")]
    MalformedRunId(String),
}

impl From<std::convert::Infallible> for IdError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// The longest user or session id accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

fn validate(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { kind, len: s.len() });
    }
    if s.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter { kind });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Creates the id, checking that it is non-empty, at most [`MAX_ID_LEN`] bytes and
            /// free of control characters.
            pub fn new(id: impl AsRef<str>) -> Result<Self, IdError> {
                let id = id.as_ref();
                validate($kind, id)?;
                Ok(Self(Arc::from(id)))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                validate($kind, &s)?;
                Ok(Self(Arc::from(s)))
            }
        }

        impl TryFrom<&String> for $name {
            type Error = IdError;
            fn try_from(s: &String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&*s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// Who a run is for: the partition key of every store.
    ///
    /// Every store API (sessions, journal, memory) takes a `&UserId`, so data of one user can
    /// never be read through another user's id. Runs that do not name a user run as
    /// [`UserId::anonymous`], a partition of its own.
    ///
    /// ```
    /// use loomflow::UserId;
    /// let alice = UserId::new("alice")?;
    /// assert_eq!(alice.as_str(), "alice");
    /// assert!(UserId::new("").is_err());
    /// # Ok::<(), loomflow::IdError>(())
    /// ```
    UserId,
    "user id"
);

string_id!(
    /// Which conversation a run continues.
    ///
    /// Runs with the same `(UserId, SessionId)` pair share their history; the same session id
    /// under another user is a different conversation.
    SessionId,
    "session id"
);

impl UserId {
    /// The partition used by runs that name no user.
    pub fn anonymous() -> Self {
        static ANON: OnceLock<Arc<str>> = OnceLock::new();
        Self(Arc::clone(ANON.get_or_init(|| Arc::from("anonymous"))))
    }

    /// Whether this is the [`UserId::anonymous`] partition.
    pub fn is_anonymous(&self) -> bool {
        &*self.0 == "anonymous"
    }
}

impl SessionId {
    /// A fresh random session id, `sess_` followed by a ULID.
    pub fn generate() -> Self {
        let mut s = String::with_capacity(31);
        s.push_str("sess_");
        push_ulid(&mut s, new_ulid());
        Self(Arc::from(s))
    }
}

/// The identity of one run of an agent or workflow: a ULID, shown as `run_` plus 26
/// Crockford base32 characters.
///
/// Run ids sort by creation time (to the millisecond) and are `Copy`; generating one costs a
/// clock read and a few arithmetic operations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u128);

impl RunId {
    /// A new run id for the current instant.
    pub fn generate() -> Self {
        Self(new_ulid())
    }

    /// The id's 128-bit value.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Rebuilds a run id from its 128-bit value.
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// Milliseconds since the Unix epoch at which the id was generated.
    pub fn timestamp_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 30];
        buf[..4].copy_from_slice(b"run_");
        encode_ulid(self.0, &mut buf[4..]);
        // The alphabet is ASCII, so this cannot fail.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

impl FromStr for RunId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::MalformedRunId(s.to_owned());
        let body = s.strip_prefix("run_").ok_or_else(bad)?;
        decode_ulid(body).map(Self).ok_or_else(bad)
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn encode_ulid(v: u128, out: &mut [u8]) {
    // 26 characters of 5 bits: the first carries only the top 3 bits of the 128.
    for (i, slot) in out.iter_mut().take(26).enumerate() {
        let shift = 125 - 5 * i as u32;
        *slot = CROCKFORD[((v >> shift) & 0x1f) as usize];
    }
}

fn decode_ulid(s: &str) -> Option<u128> {
    if s.len() != 26 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, b) in s.bytes().enumerate() {
        let d = CROCKFORD.iter().position(|&c| c == b.to_ascii_uppercase())? as u128;
        if i == 0 && d > 7 {
            return None;
        }
        v = (v << 5) | d;
    }
    Some(v)
}

pub(crate) fn push_ulid(s: &mut String, v: u128) {
    let mut buf = [0u8; 26];
    encode_ulid(v, &mut buf);
    for b in buf {
        s.push(b as char);
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish() | 1
}

/// wyrand: a small, fast, well-distributed generator; ids need uniqueness, not secrecy.
fn next_random() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    })
}

/// A fast pseudo-random number (not for secrets).
pub(crate) fn random_u64() -> u64 {
    next_random()
}

pub(crate) fn new_ulid() -> u128 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64) & 0xffff_ffff_ffff;
    let rand = (u128::from(next_random()) << 16) ^ u128::from(next_random() & 0xffff);
    (u128::from(ms) << 80) | (rand & ((1u128 << 80) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_round_trips_through_text() {
        let id = RunId::generate();
        let text = id.to_string();
        assert!(text.starts_with("run_"));
        assert_eq!(text.len(), 30);
        assert_eq!(text.parse::<RunId>().ok(), Some(id));
    }

    #[test]
    fn run_ids_are_unique_and_time_ordered() {
        let a = RunId::generate();
        let b = RunId::generate();
        assert_ne!(a, b);
        assert!(b.timestamp_ms() >= a.timestamp_ms());
    }

    #[test]
    fn malformed_run_ids_are_refused() {
        assert!("run_123".parse::<RunId>().is_err());
        assert!("sess_01ARZ3NDEKTSV4RRFFQ69G5FAV".parse::<RunId>().is_err());
        assert!("run_81ARZ3NDEKTSV4RRFFQ69G5FAV".parse::<RunId>().is_err());
    }

    #[test]
    fn ids_reject_bad_input() {
        assert!(matches!(UserId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(SessionId::new("a\nb"), Err(IdError::ControlCharacter { .. })));
        assert!(matches!(UserId::new("x".repeat(MAX_ID_LEN + 1)), Err(IdError::TooLong { .. })));
        assert!(UserId::anonymous().is_anonymous());
    }

    #[test]
    fn session_ids_generate_unique() {
        let a = SessionId::generate();
        assert!(a.as_str().starts_with("sess_"));
        assert_ne!(a, SessionId::generate());
    }
}
