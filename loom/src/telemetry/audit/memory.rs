//! The audit log in memory, for tests.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::chain::{Prepared, Stored, next_after};
use super::key::AuditKey;
use super::policy::AuditPolicy;
use super::record::{AuditEntry, AuditRecord};
use super::verify::{VerifyReport, report};
use super::{AuditError, AuditLog};
use crate::id::UserId;

/// An audit log in this process's memory: for tests and throwaway runs. Gone when dropped.
#[derive(Debug)]
pub struct InMemoryAuditLog {
    key: AuditKey,
    policy: AuditPolicy,
    chains: Mutex<HashMap<UserId, Vec<AuditEntry>>>,
}

impl InMemoryAuditLog {
    /// An empty log signing with `key`, redacting by [`AuditPolicy::default`].
    pub fn new(key: AuditKey) -> Self {
        Self { key, policy: AuditPolicy::default(), chains: Mutex::default() }
    }

    /// Redacts payloads by `policy` instead.
    #[must_use]
    pub fn policy(mut self, policy: AuditPolicy) -> Self {
        self.policy = policy;
        self
    }

    fn chains(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Vec<AuditEntry>>> {
        // Every change below is one push or one field write: a panic cannot leave half of one.
        self.chains.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn append_to(chain: &mut Vec<AuditEntry>, key: &AuditKey, prepared: Prepared) -> Result<AuditEntry, AuditError> {
    let (seq, prev) = next_after(&prepared.user, chain.last().map(|e| (e.seq, e.sig.as_str())))?;
    let entry = prepared.seal(key, seq, prev);
    chain.push(entry.clone());
    Ok(entry)
}

#[async_trait::async_trait]
impl AuditLog for InMemoryAuditLog {
    async fn append(&self, record: AuditRecord) -> Result<AuditEntry, AuditError> {
        let prepared = Prepared::new(record, &self.policy);
        let mut chains = self.chains();
        let chain = chains.entry(prepared.user.clone()).or_default();
        append_to(chain, &self.key, prepared)
    }

    async fn entries(&self, user: &UserId) -> Result<Vec<AuditEntry>, AuditError> {
        Ok(self.chains().get(user).cloned().unwrap_or_default())
    }

    async fn users(&self) -> Result<Vec<UserId>, AuditError> {
        let mut users: Vec<UserId> = self.chains().keys().cloned().collect();
        users.sort();
        Ok(users)
    }

    async fn verify(&self, user: Option<&UserId>) -> Result<VerifyReport, AuditError> {
        let chains = self.chains();
        let stored: Vec<Stored> = chains
            .iter()
            .filter(|(u, _)| user.is_none_or(|wanted| *u == wanted))
            .flat_map(|(_, chain)| chain.iter().cloned().map(Stored::Entry))
            .collect();
        drop(chains);
        Ok(report(&self.key, stored))
    }

    async fn forget(&self, user: &UserId) -> Result<u64, AuditError> {
        let mut chains = self.chains();
        let chain = chains.entry(user.clone()).or_default();
        let mut erased = 0;
        for entry in chain.iter_mut() {
            if entry.payload.take().is_some() {
                erased += 1;
            }
        }
        append_to(chain, &self.key, Prepared::forgotten(user.clone(), erased, &self.policy))?;
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::record::AuditAction;
    use super::super::verify::ProblemKind;
    use super::*;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    fn log() -> Result<InMemoryAuditLog> {
        Ok(InMemoryAuditLog::new(AuditKey::from_bytes([9u8; 32])?).policy(AuditPolicy::truncate(4)))
    }

    #[tokio::test]
    async fn appends_number_each_users_chain_and_apply_the_policy() -> Result {
        let log = log()?;
        let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
        for i in 0..3 {
            log.append(AuditRecord::new(
                alice.clone(),
                AuditAction::ModelCall,
                json!({"prompt": "hello world", "i": i}),
            ))
            .await?;
        }
        let first_of_bob = log.append(AuditRecord::new(bob.clone(), AuditAction::RunStarted, json!(null))).await?;
        assert_eq!((first_of_bob.seq, first_of_bob.prev.as_str(), first_of_bob.payload), (1, "", None));

        let entries = log.entries(&alice).await?;
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(entries[0].payload, Some(json!({"prompt": "hell…[+7 chars]", "i": 0})));
        assert_eq!(entries[0].actor, "system");
        assert_eq!(log.users().await?, [alice.clone(), bob]);
        let report = log.verify(None).await?;
        assert!(report.is_intact(), "{report}");
        assert_eq!((report.users, report.entries), (2, 4));
        Ok(())
    }

    #[tokio::test]
    async fn forget_erases_payloads_and_the_chain_still_verifies() -> Result {
        let log = log()?;
        let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
        for user in [&alice, &alice, &bob] {
            log.append(AuditRecord::new(user.clone(), AuditAction::ToolCall, json!({"tool": "refund"}))).await?;
        }
        assert_eq!(log.forget(&alice).await?, 2);

        let entries = log.entries(&alice).await?;
        assert_eq!(entries.len(), 3);
        assert!(entries[..2].iter().all(|e| e.payload.is_none() && !e.payload_hash.is_empty()));
        assert_eq!(entries[2].action, AuditAction::Forgotten);
        assert_eq!(entries[2].payload, Some(json!({"erased": 2})));
        assert!(log.verify(Some(&alice)).await?.is_intact());
        assert_eq!(log.entries(&bob).await?[0].payload, Some(json!({"tool": "refund"})));

        // A second erasure erases the first one's record of itself, and nothing else.
        assert_eq!(log.forget(&alice).await?, 1);
        assert!(log.verify(None).await?.is_intact());

        // Erasing leaves the chain verifiable, but not editable.
        log.chains().get_mut(&alice).into_iter().for_each(|chain| chain[0].actor = "someone".into());
        let report = log.verify(Some(&alice)).await?;
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.problems[0].seq, Some(1));
        assert!(matches!(report.problems[0].kind, ProblemKind::Edited { .. }));
        Ok(())
    }
}
