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
    /// The id begins with `loom:`, which Loom keeps for its own partitions (the anonymous
    /// user), so that no caller can name one of them.
    #[error("{kind} `{id}` begins with `{RESERVED_PREFIX}`, which Loom reserves; choose another id")]
    Reserved {
        /// Which kind of id.
        kind: &'static str,
        /// The id given.
        id: String,
    },
}

/// The prefix of the ids Loom keeps for itself; [`UserId::new`] refuses ids that begin with it.
pub const RESERVED_PREFIX: &str = "loom:";

impl From<std::convert::Infallible> for IdError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// The id of the anonymous partition.
const ANONYMOUS: &str = "loom:anonymous";

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
    if kind == "user id" && s.starts_with(RESERVED_PREFIX) {
        return Err(IdError::Reserved { kind, id: s.to_owned() });
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
    /// [`UserId::anonymous`], a partition of its own that no caller can name: ids beginning
    /// with [`RESERVED_PREFIX`] are refused, so `UserId::new("anonymous")` is an ordinary user.
    ///
    /// ```
    /// use loomflow::UserId;
    /// let alice = UserId::new("alice")?;
    /// assert_eq!(alice.as_str(), "alice");
    /// assert!(UserId::new("").is_err());
    /// assert_ne!(UserId::new("anonymous")?, UserId::anonymous());
    /// assert!(UserId::new(UserId::anonymous().as_str()).is_err());
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
    /// The partition used by runs that name no user: `loom:anonymous`, an id
    /// [`UserId::new`] refuses, so no caller can act as it.
    pub fn anonymous() -> Self {
        static ANON: OnceLock<Arc<str>> = OnceLock::new();
        Self(Arc::clone(ANON.get_or_init(|| Arc::from(ANONYMOUS))))
    }

    /// Whether this is the [`UserId::anonymous`] partition.
    pub fn is_anonymous(&self) -> bool {
        &*self.0 == ANONYMOUS
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

    /// The sub-session `{self}/{name}` (a workflow node's conversation within the workflow's
    /// session). Too long an id is shortened by a hash of `name`, so it is always valid.
    pub fn sub(&self, name: &str) -> Self {
        let name: String = name.chars().map(|c| if c.is_control() { '_' } else { c }).collect();
        let mut s = format!("{}/{name}", self.0);
        if s.len() > MAX_ID_LEN {
            let keep = MAX_ID_LEN.saturating_sub(self.0.len() + 18);
            let cut = (0..=keep.min(name.len())).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
            s = format!("{}/{}~{:016x}", self.0, &name[..cut], fnv1a(name.as_bytes()) as u64);
            if s.len() > MAX_ID_LEN {
                s = format!("{:016x}/{:016x}", fnv1a(self.0.as_bytes()) as u64, fnv1a(name.as_bytes()) as u64);
            }
        }
        Self(Arc::from(s))
    }
}

/// FNV-1a, 128 bits: stable across processes and platforms, which derived ids need.
fn fnv1a(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
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

    /// The id of the `n`-th run nested in visit `visit` of node `node` of run `parent`: the
    /// same every time (so a resumed workflow finds its nested runs' journals), sorting with
    /// the parent (it keeps the parent's time).
    pub(crate) fn derived(parent: RunId, node: &str, visit: u32, n: u32) -> Self {
        let mut bytes = Vec::with_capacity(16 + node.len() + 9);
        bytes.extend_from_slice(&parent.0.to_be_bytes());
        bytes.extend_from_slice(node.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&visit.to_be_bytes());
        bytes.extend_from_slice(&n.to_be_bytes());
        let time = parent.0 & !((1u128 << 80) - 1);
        Self(time | (fnv1a(&bytes) & ((1u128 << 80) - 1)))
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
        assert!(matches!(UserId::new("loom:anonymous"), Err(IdError::Reserved { .. })));
        assert!(serde_json::from_str::<UserId>("\"loom:anonymous\"").is_err());
        assert!(!UserId::new("anonymous").is_ok_and(|u| u.is_anonymous()));
        // Only user ids are partitions: a session may be named anything.
        assert!(SessionId::new("loom:x").is_ok());
    }

    #[test]
    fn derived_run_ids_are_stable_distinct_and_sort_with_their_parent() {
        let parent = RunId::generate();
        let a = RunId::derived(parent, "review", 1, 0);
        assert_eq!(a, RunId::derived(parent, "review", 1, 0));
        assert_ne!(a, RunId::derived(parent, "review", 2, 0));
        assert_ne!(a, RunId::derived(parent, "review", 1, 1));
        assert_ne!(a, RunId::derived(parent, "draft", 1, 0));
        assert_ne!(a, RunId::derived(RunId::generate(), "review", 1, 0));
        assert_eq!(a.timestamp_ms(), parent.timestamp_ms());
        assert_eq!(a.to_string().parse::<RunId>().ok(), Some(a));
    }

    #[test]
    fn sub_sessions_are_always_valid_ids() -> Result<(), IdError> {
        let s = SessionId::new("conv-1")?;
        assert_eq!(s.sub("review").as_str(), "conv-1/review");
        let long = SessionId::new("s".repeat(MAX_ID_LEN))?;
        for name in ["n", &"é".repeat(300), "a\nb"] {
            let sub = long.sub(name);
            assert!(SessionId::new(sub.as_str()).is_ok(), "{sub:?}");
            assert_ne!(sub, long.sub("other"));
        }
        assert_eq!(s.sub("a\nb").as_str(), "conv-1/a_b");
        Ok(())
    }

    #[test]
    fn session_ids_generate_unique() {
        let a = SessionId::generate();
        assert!(a.as_str().starts_with("sess_"));
        assert_ne!(a, SessionId::generate());
    }
}
