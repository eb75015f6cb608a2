//! Per-user state kept in the process, bounded: past a number of users the least recently used
//! goes first, and a user idle past a time goes at the next use of the map.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::id::UserId;

/// Values per user, with their recency.
pub(crate) struct PerUser<T> {
    by_user: HashMap<UserId, Slot<T>>,
    /// Users by last use, oldest first.
    order: BTreeMap<u64, UserId>,
    next_tick: u64,
}

struct Slot<T> {
    value: T,
    /// Its place in `order`.
    tick: u64,
    last_used: Instant,
}

impl<T> Default for PerUser<T> {
    fn default() -> Self {
        Self { by_user: HashMap::new(), order: BTreeMap::new(), next_tick: 0 }
    }
}

impl<T: Default> PerUser<T> {
    /// How many users it holds.
    pub(crate) fn len(&self) -> usize {
        self.by_user.len()
    }

    /// Removes `user`'s value.
    pub(crate) fn remove(&mut self, user: &UserId) -> Option<T> {
        let slot = self.by_user.remove(user)?;
        self.order.remove(&slot.tick);
        Some(slot.value)
    }

    /// Runs `f` on `user`'s value, making it (from `Default`) when `create`, after dropping
    /// the users idle past `idle_ttl` and, for a new user, the least recently used past
    /// `max_users`; `None` when the user has none and `create` is off.
    pub(crate) fn with<R>(
        &mut self,
        user: &UserId,
        create: bool,
        max_users: usize,
        idle_ttl: Duration,
        f: impl FnOnce(&mut T) -> R,
    ) -> Option<R> {
        let now = Instant::now();
        // The oldest are first.
        while let Some((&tick, oldest)) = self.order.first_key_value() {
            let idle = self.by_user.get(oldest).is_none_or(|s| now.duration_since(s.last_used) > idle_ttl);
            if !idle || oldest == user {
                break;
            }
            let oldest = oldest.clone();
            self.order.remove(&tick);
            self.by_user.remove(&oldest);
        }
        if !self.by_user.contains_key(user) {
            if !create {
                return None;
            }
            while self.by_user.len() >= max_users.max(1) {
                let Some((_, oldest)) = self.order.pop_first() else { break };
                self.by_user.remove(&oldest);
            }
            self.by_user.insert(user.clone(), Slot { value: T::default(), tick: u64::MAX, last_used: now });
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        let slot = self.by_user.get_mut(user)?;
        self.order.remove(&slot.tick);
        slot.tick = tick;
        slot.last_used = now;
        self.order.insert(tick, user.clone());
        Some(f(&mut slot.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_least_recently_used_user_goes_first_and_idle_ones_go() {
        let mut map: PerUser<u32> = PerUser::default();
        let long = Duration::from_secs(3_600);
        for name in ["a", "b", "c"] {
            map.with(&user(name), true, 3, long, |v| *v += 1);
        }
        // Using `a` makes `b` the oldest: a fourth user pushes `b` out.
        map.with(&user("a"), false, 3, long, |v| *v += 1);
        map.with(&user("d"), true, 3, long, |v| *v += 1);
        assert_eq!(map.len(), 3);
        assert_eq!(map.with(&user("b"), false, 3, long, |v| *v), None);
        assert_eq!(map.with(&user("a"), false, 3, long, |v| *v), Some(2));
        // With a TTL of zero every other user is idle.
        std::thread::sleep(Duration::from_millis(2));
        map.with(&user("a"), false, 3, Duration::ZERO, |_| ());
        assert_eq!(map.len(), 1);
        assert_eq!(map.remove(&user("a")), Some(2));
        assert_eq!(map.len(), 0);
    }
}
