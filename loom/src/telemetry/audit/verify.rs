//! Checking chains: which entries were edited, deleted, inserted or reordered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::chain::{Stored, payload_hash, signed_content};
use super::key::AuditKey;
use super::record::AuditEntry;
use crate::id::UserId;

/// The outcome of [`AuditLog::verify`](super::AuditLog::verify): how much was checked and
/// every problem found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The users whose chains were checked.
    pub users: usize,
    /// The entries read (unreadable lines and rows not counted).
    pub entries: usize,
    /// What is wrong, each naming its entry; per user in `seq` order, unreadable lines first.
    pub problems: Vec<ChainProblem>,
}

impl VerifyReport {
    /// Whether every chain is whole: no problem at all.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} entries of {} users: ", self.entries, self.users)?;
        if self.is_intact() {
            return f.write_str("intact");
        }
        write!(f, "{} problems", self.problems.len())?;
        for problem in &self.problems {
            write!(f, "\n- {problem}")?;
        }
        Ok(())
    }
}

/// One thing wrong with a chain, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainProblem {
    /// Whose chain; `None` only for an unreadable line whose user cannot be made out.
    pub user: Option<UserId>,
    /// Which entry: the one at fault, or for [`ProblemKind::Deleted`] the first one missing;
    /// `None` only for an unreadable line whose number cannot be made out.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The entry does not match its signature or its hash: it was changed after it was
    /// written, or forged without the key.
    Edited {
        /// What no longer matches.
        part: EditedPart,
    },
    /// Entries are missing: `count` of them, from [`ChainProblem::seq`] on.
    Deleted {
        /// How many in a row.
        count: u64,
    },
    /// An entry that is not part of the chain.
    Inserted {
        /// How it shows.
        why: Insertion,
    },
    /// The entry is stored out of its order (two entries swapped, or one moved).
    Reordered {
        /// The entry of the same user stored right before it; `None` when it is stored first.
        stored_after: Option<u64>,
    },
    /// A line of the file (or a row) that cannot be read as an entry. When its user and
    /// number can be made out, the gap it leaves in the chain is not reported again as
    /// [`Deleted`](Self::Deleted).
    Corrupt {
        /// The line of the file, from 1 (for a database, the row's position in storage order).
        line: u64,
        /// Why it cannot be read.
        error: String,
    },
}

/// What of an edited entry no longer matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditedPart {
    /// The payload does not match `payload_hash`.
    Payload,
    /// The signature does not match the other fields (one of them, or the signature, was
    /// changed; or the entry was forged).
    Fields,
}

/// How an inserted entry shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Insertion {
    /// Another entry has the same `seq` and is the one the chain goes through.
    DuplicateSeq,
    /// Its own signature is valid, but its `prev` is not the signature of the entry before it
    /// (or, for the first entry, not empty): it was written into another place of a chain.
    BrokenLink,
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "user `{user}`, ")?;
        }
        let seq = self.seq.unwrap_or(0);
        match &self.kind {
            ProblemKind::Edited { part: EditedPart::Payload } => {
                write!(f, "entry {seq}: the payload does not match its payload_hash; the payload was edited")
            }
            ProblemKind::Edited { part: EditedPart::Fields } => write!(
                f,
                "entry {seq}: the signature does not match the entry; a field or the signature was edited, \
                 or the entry was forged"
            ),
            ProblemKind::Deleted { count: 1 } => write!(f, "entry {seq} is missing; it was deleted"),
            ProblemKind::Deleted { count } => {
                write!(f, "entries {seq} to {} are missing; they were deleted", seq.saturating_add(count - 1))
            }
            ProblemKind::Inserted { why: Insertion::DuplicateSeq } => {
                write!(f, "entry {seq}: a second entry with this number, not the chain's; it was inserted")
            }
            ProblemKind::Inserted { why: Insertion::BrokenLink } if seq == 1 => {
                write!(f, "entry 1: its prev is not empty, so it is not the chain's first; it was inserted")
            }
            ProblemKind::Inserted { why: Insertion::BrokenLink } => write!(
                f,
                "entry {seq}: its prev is not the signature of entry {}; it was inserted or copied from elsewhere",
                seq - 1
            ),
            ProblemKind::Reordered { stored_after: Some(after) } => {
                write!(f, "entry {seq} is stored out of order, after entry {after}")
            }
            ProblemKind::Reordered { stored_after: None } => {
                write!(f, "entry {seq} is stored out of order, before every other entry")
            }
            ProblemKind::Corrupt { line, error } => {
                write!(f, "line {line}")?;
                if let Some(seq) = self.seq {
                    write!(f, " (entry {seq})")?;
                }
                write!(f, " is unreadable: {error}")
            }
        }
    }
}

/// Checks the chains of `entries`, given in the order they are stored (all users mixed, as
/// in a file), and returns every problem, each naming its entry.
///
/// For each user: every entry's signature and payload hash are checked (an erased payload is
/// not checked: its hash stands); of entries sharing a `seq`, the one that fits the chain is
/// kept and the others are [`Insertion::DuplicateSeq`]; gaps in the numbers are
/// [`ProblemKind::Deleted`]; an entry whose `prev` is not its predecessor's signature, both
/// signatures valid, is [`Insertion::BrokenLink`]; and the fewest entries that, moved, would
/// put the chain in storage order are [`ProblemKind::Reordered`].
pub fn verify_entries(key: &AuditKey, entries: &[AuditEntry]) -> Vec<ChainProblem> {
    let mut chains: Vec<(&UserId, Vec<&AuditEntry>)> = Vec::new();
    let mut index: HashMap<&UserId, usize> = HashMap::new();
    for entry in entries {
        let i = *index.entry(&entry.user).or_insert_with(|| {
            chains.push((&entry.user, Vec::new()));
            chains.len() - 1
        });
        chains[i].1.push(entry);
    }
    chains.into_iter().flat_map(|(user, chain)| verify_chain(key, user, &chain)).collect()
}

fn verify_chain(key: &AuditKey, user: &UserId, chain: &[&AuditEntry]) -> Vec<ChainProblem> {
    let signed: Vec<bool> = chain.iter().map(|e| key.verifies(signed_content(e).as_bytes(), &e.sig)).collect();
    let hashed: Vec<bool> =
        chain.iter().map(|e| e.payload.as_ref().is_none_or(|p| payload_hash(p) == e.payload_hash)).collect();
    let sound = |i: usize| signed[i] && hashed[i];
    let mut problems = Vec::new();
    let mut problem =
        |seq: u64, kind: ProblemKind| problems.push(ChainProblem { user: Some(user.clone()), seq: Some(seq), kind });

    // The entries of each number, in storage order; of several, the one that fits the chain.
    let mut by_seq: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, e) in chain.iter().enumerate() {
        by_seq.entry(e.seq).or_default().push(i);
    }
    let mut chosen: BTreeMap<u64, usize> = BTreeMap::new();
    for (&seq, candidates) in &by_seq {
        let expected_prev = match seq {
            1 => Some(""),
            _ => chosen.get(&(seq - 1)).map(|&j| chain[j].sig.as_str()),
        };
        let fits = |i: &usize| sound(*i) && expected_prev.is_none_or(|p| chain[*i].prev == p);
        let pick = candidates.iter().copied().find(fits).or_else(|| candidates.iter().copied().find(|&i| sound(i)));
        let Some(pick) = pick.or_else(|| candidates.first().copied()) else { continue };
        chosen.insert(seq, pick);
        for _ in candidates.iter().filter(|&&i| i != pick) {
            problem(seq, ProblemKind::Inserted { why: Insertion::DuplicateSeq });
        }
    }

    // Each kept entry: its own signature and hash, then its link to the entry before it.
    let mut expected = 1u64;
    for (&seq, &i) in &chosen {
        if seq > expected {
            problem(expected, ProblemKind::Deleted { count: seq - expected });
        }
        expected = seq.saturating_add(1);
        if !signed[i] {
            problem(seq, ProblemKind::Edited { part: EditedPart::Fields });
        }
        if !hashed[i] {
            problem(seq, ProblemKind::Edited { part: EditedPart::Payload });
        }
        let before = match seq {
            1 => Some(""),
            _ => chosen.get(&(seq - 1)).filter(|&&j| signed[j]).map(|&j| chain[j].sig.as_str()),
        };
        if signed[i] && before.is_some_and(|sig| chain[i].prev != sig) {
            problem(seq, ProblemKind::Inserted { why: Insertion::BrokenLink });
        }
    }

    // The kept entries in storage order: those off the longest run in `seq` order were moved.
    let kept: HashSet<usize> = chosen.values().copied().collect();
    let stored: Vec<usize> = (0..chain.len()).filter(|i| kept.contains(i)).collect();
    let seqs: Vec<u64> = stored.iter().map(|&i| chain[i].seq).collect();
    for (k, moved) in out_of_order(&seqs).into_iter().enumerate() {
        if moved {
            let stored_after = k.checked_sub(1).map(|p| seqs[p]);
            problem(seqs[k], ProblemKind::Reordered { stored_after });
        }
    }

    problems.sort_by_key(|p| p.seq);
    problems
}

/// For distinct numbers in storage order: which are not in a longest increasing run (the
/// fewest that, moved, would sort them).
fn out_of_order(seqs: &[u64]) -> Vec<bool> {
    let mut tails: Vec<usize> = Vec::new();
    let mut parent: Vec<Option<usize>> = vec![None; seqs.len()];
    for (i, &seq) in seqs.iter().enumerate() {
        let at = tails.partition_point(|&t| seqs[t] < seq);
        parent[i] = at.checked_sub(1).map(|p| tails[p]);
        if at == tails.len() {
            tails.push(i);
        } else {
            tails[at] = i;
        }
    }
    let mut moved = vec![true; seqs.len()];
    let mut at = tails.last().copied();
    while let Some(i) = at {
        moved[i] = false;
        at = parent[i];
    }
    moved
}

/// The report of what was read from storage: unreadable lines first, then every chain.
pub(crate) fn report(key: &AuditKey, stored: Vec<Stored>) -> VerifyReport {
    let mut problems = Vec::new();
    let mut entries = Vec::with_capacity(stored.len());
    for item in stored {
        match item {
            Stored::Entry(entry) => entries.push(entry),
            Stored::Corrupt { line, user, seq, error } => {
                problems.push(ChainProblem { user, seq, kind: ProblemKind::Corrupt { line, error } });
            }
        }
    }
    let users = entries.iter().map(|e| &e.user).collect::<HashSet<_>>().len();
    // An unreadable entry whose user and number are known is not reported a second time as
    // deleted.
    let unreadable: HashSet<(&UserId, u64)> =
        problems.iter().filter_map(|p| Some((p.user.as_ref()?, p.seq?))).collect();
    let explained = |p: &ChainProblem| match (&p.kind, &p.user, p.seq) {
        (ProblemKind::Deleted { count }, Some(user), Some(seq)) => {
            *count <= unreadable.len() as u64
                && (seq..seq.saturating_add(*count)).all(|s| unreadable.contains(&(user, s)))
        }
        _ => false,
    };
    let chains: Vec<ChainProblem> = verify_entries(key, &entries).into_iter().filter(|p| !explained(p)).collect();
    problems.extend(chains);
    VerifyReport { users, entries: entries.len(), problems }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::chain::Prepared;
    use super::super::policy::AuditPolicy;
    use super::super::record::{AuditAction, AuditRecord};
    use super::*;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    fn key() -> Result<AuditKey> {
        Ok(AuditKey::from_bytes([42u8; 32])?)
    }

    /// A chain of `n` entries of `user`, payloads `{"n": seq}`.
    fn chain(key: &AuditKey, user: &str, n: u64) -> Result<Vec<AuditEntry>> {
        let user = UserId::new(user)?;
        let mut entries: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let record = AuditRecord::new(user.clone(), AuditAction::ToolCall, json!({ "n": seq })).actor("agent");
            let prev = entries.last().map(|e| e.sig.clone()).unwrap_or_default();
            entries.push(Prepared::new(record, &AuditPolicy::default()).seal(key, seq, prev));
        }
        Ok(entries)
    }

    fn kinds(problems: &[ChainProblem]) -> Vec<(Option<u64>, ProblemKind)> {
        problems.iter().map(|p| (p.seq, p.kind.clone())).collect()
    }

    #[test]
    fn a_sealed_chain_verifies_and_another_key_does_not() -> Result {
        let key = key()?;
        let mut entries = chain(&key, "alice", 5)?;
        entries.extend(chain(&key, "bob", 3)?);
        assert_eq!(verify_entries(&key, &entries), []);
        assert_eq!(entries[0].prev, "");
        assert_eq!(entries[1].prev, entries[0].sig);
        assert_eq!(entries[0].payload_hash, payload_hash(&json!({"n": 1})));

        let other = AuditKey::from_bytes([7u8; 32])?;
        let problems = verify_entries(&other, &entries);
        assert_eq!(problems.len(), 8);
        assert!(problems.iter().all(|p| p.kind == ProblemKind::Edited { part: EditedPart::Fields }));
        Ok(())
    }

    #[test]
    fn an_edited_payload_is_named() -> Result {
        let key = key()?;
        let mut entries = chain(&key, "alice", 4)?;
        entries[2].payload = Some(json!({"n": 300}));
        assert_eq!(
            kinds(&verify_entries(&key, &entries)),
            [(Some(3), ProblemKind::Edited { part: EditedPart::Payload })]
        );
        Ok(())
    }

    #[test]
    fn an_edited_field_is_named_and_its_successor_is_not_blamed() -> Result {
        let key = key()?;
        let mut entries = chain(&key, "alice", 4)?;
        entries[1].actor = "operator".into();
        assert_eq!(
            kinds(&verify_entries(&key, &entries)),
            [(Some(2), ProblemKind::Edited { part: EditedPart::Fields })]
        );

        // Payload and hash both replaced: the signature covers the hash.
        let mut entries = chain(&key, "alice", 4)?;
        entries[3].payload = Some(json!({"n": 0}));
        entries[3].payload_hash = payload_hash(&json!({"n": 0}));
        assert_eq!(
            kinds(&verify_entries(&key, &entries)),
            [(Some(4), ProblemKind::Edited { part: EditedPart::Fields })]
        );

        // A forged signature on an edited entry.
        let mut entries = chain(&key, "alice", 4)?;
        entries[1].sig = "00".repeat(32);
        let problems = verify_entries(&key, &entries);
        assert_eq!(kinds(&problems), [(Some(2), ProblemKind::Edited { part: EditedPart::Fields })]);
        assert!(problems[0].to_string().contains("user `alice`, entry 2"), "{}", problems[0]);
        Ok(())
    }

    #[test]
    fn deleted_entries_are_named_by_their_numbers() -> Result {
        let key = key()?;
        let mut entries = chain(&key, "alice", 6)?;
        entries.remove(2);
        assert_eq!(kinds(&verify_entries(&key, &entries)), [(Some(3), ProblemKind::Deleted { count: 1 })]);

        let mut entries = chain(&key, "alice", 6)?;
        entries.drain(1..4);
        entries.remove(0);
        let problems = verify_entries(&key, &entries);
        assert_eq!(kinds(&problems), [(Some(1), ProblemKind::Deleted { count: 4 })]);
        assert!(problems[0].to_string().contains("entries 1 to 4 are missing"), "{}", problems[0]);
        Ok(())
    }

    #[test]
    fn inserted_entries_are_named() -> Result {
        let key = key()?;
        // A copy of a genuine entry, replayed later.
        let mut entries = chain(&key, "alice", 4)?;
        entries.push(entries[1].clone());
        assert_eq!(
            kinds(&verify_entries(&key, &entries)),
            [(Some(2), ProblemKind::Inserted { why: Insertion::DuplicateSeq })]
        );

        // A forged entry with a number already taken, stored before the genuine one.
        let mut entries = chain(&key, "alice", 4)?;
        let mut forged = entries[2].clone();
        forged.payload = Some(json!({"n": "forged"}));
        forged.payload_hash = payload_hash(&json!({"n": "forged"}));
        entries.insert(2, forged);
        assert_eq!(
            kinds(&verify_entries(&key, &entries)),
            [(Some(3), ProblemKind::Inserted { why: Insertion::DuplicateSeq })]
        );

        // An entry signed with the key but written for another place of the chain.
        let mut entries = chain(&key, "alice", 4)?;
        let elsewhere = chain(&key, "alice", 3)?;
        entries[2] = elsewhere[2].clone();
        let problems = verify_entries(&key, &entries);
        assert_eq!(
            kinds(&problems),
            [
                (Some(3), ProblemKind::Inserted { why: Insertion::BrokenLink }),
                (Some(4), ProblemKind::Inserted { why: Insertion::BrokenLink }),
            ]
        );
        assert!(problems[0].to_string().contains("not the signature of entry 2"), "{}", problems[0]);
        Ok(())
    }

    #[test]
    fn swapped_and_moved_entries_are_named() -> Result {
        let key = key()?;
        let mut entries = chain(&key, "alice", 5)?;
        entries.swap(2, 3);
        let problems = verify_entries(&key, &entries);
        assert_eq!(kinds(&problems), [(Some(4), ProblemKind::Reordered { stored_after: Some(2) })]);
        assert!(problems[0].to_string().contains("entry 4 is stored out of order, after entry 2"));

        // The last entry moved to the front: one entry named, not every other.
        let mut entries = chain(&key, "alice", 5)?;
        entries.rotate_right(1);
        assert_eq!(kinds(&verify_entries(&key, &entries)), [(Some(5), ProblemKind::Reordered { stored_after: None })]);
        Ok(())
    }

    #[test]
    fn users_interleaved_in_storage_are_separate_chains() -> Result {
        let key = key()?;
        let alice = chain(&key, "alice", 3)?;
        let bob = chain(&key, "bob", 3)?;
        let mut mixed: Vec<AuditEntry> = alice.iter().zip(&bob).flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
        assert_eq!(verify_entries(&key, &mixed), []);
        mixed.remove(3); // bob's second
        let problems = verify_entries(&key, &mixed);
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].user.as_ref().map(UserId::as_str), problems[0].seq), (Some("bob"), Some(2)));
        Ok(())
    }

    #[test]
    fn an_erased_payload_still_verifies() -> Result {
        let key = key()?;
        let mut entries = chain(&key, "alice", 3)?;
        for e in &mut entries {
            e.payload = None;
        }
        assert_eq!(verify_entries(&key, &entries), []);
        Ok(())
    }

    #[test]
    fn reports_count_and_list_unreadable_lines_first() -> Result {
        let key = key()?;
        let mut stored: Vec<Stored> = chain(&key, "alice", 2)?.into_iter().map(Stored::Entry).collect();
        stored.insert(1, Stored::Corrupt { line: 2, user: None, seq: None, error: "expected value".into() });
        let report = report(&key, stored);
        assert_eq!((report.users, report.entries), (1, 2));
        assert_eq!(kinds(&report.problems), [(None, ProblemKind::Corrupt { line: 2, error: "expected value".into() })]);
        assert!(!report.is_intact());
        assert!(report.to_string().contains("line 2 is unreadable: expected value"), "{report}");
        Ok(())
    }

    #[test]
    fn out_of_order_finds_the_fewest_moved() {
        assert_eq!(out_of_order(&[1, 2, 3]), [false, false, false]);
        assert_eq!(out_of_order(&[1, 3, 4, 2, 5]), [false, false, false, true, false]);
        assert_eq!(out_of_order(&[]), Vec::<bool>::new());
    }
}
