//! The decision cache: answers repeated questions without evaluating again.
//!
//! The key holds everything a policy can read about a request (the principal,
//! every context field but the time, the action and the resource) plus the
//! generation of the policy set that decided it.
//!
//! INVARIANT: a cached decision never outlives its policy version. The
//! generation is part of the key, so a decision of an older set can never be
//! served for a newer one, even if it is inserted after the cache was emptied;
//! `clear` on each swap only frees the memory.
//!
//! Decisions that read the request time are never stored (their `cacheable`
//! is false). The size is bounded: when the cache holds `max_entries`
//! decisions it is emptied and starts over. Known shortcoming: a working set
//! larger than the bound is evaluated again after every such reset, which
//! costs throughput but never correctness.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
};

use dashmap::DashMap;

use kafka_pdp_core::model::{Action, RequestContext as Context};

/// A cache of decisions of type `V`, bounded to `max_entries`.
#[derive(Debug)]
pub struct DecisionCache<V> {
    map: DashMap<Key, V>,
    len: AtomicUsize,
    max_entries: usize,
}

/// The request context of a call, hashed once for all its actions.
#[derive(Debug)]
pub struct ContextKey {
    hash: u64,
    generation: u64,
    context: Arc<Context>,
}

impl ContextKey {
    /// Keys `context` under policy `generation`.
    pub fn new(context: Arc<Context>, generation: u64) -> Arc<Self> {
        let mut h = DefaultHasher::new();
        (generation, &*context).hash(&mut h);
        Arc::new(Self {
            hash: h.finish(),
            generation,
            context,
        })
    }
}

impl PartialEq for ContextKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.generation == other.generation
            && self.context == other.context
    }
}

impl Eq for ContextKey {}

/// One cache entry's key: the call's context and one action.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    context: Arc<ContextKey>,
    action: Action,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The context was hashed once per call; its fields are compared on equality.
        state.write_u64(self.context.hash);
        self.action.hash(state);
    }
}

impl Key {
    pub fn new(context: Arc<ContextKey>, action: Action) -> Self {
        Self { context, action }
    }
}

impl<V: Clone> DecisionCache<V> {
    pub fn new(max_entries: usize) -> Self {
        Self {
            map: DashMap::new(),
            len: AtomicUsize::new(0),
            max_entries,
        }
    }

    pub fn get(&self, key: &Key) -> Option<V> {
        self.map.get(key).map(|v| v.clone())
    }

    /// Stores a cacheable decision; the caller never passes one that read the time.
    pub fn insert(&self, key: Key, value: V) {
        if self.len.load(Relaxed) >= self.max_entries {
            self.clear();
        }
        if self.map.insert(key, value).is_none() {
            self.len.fetch_add(1, Relaxed);
        }
    }

    /// Empties the cache; called when a new policy version becomes active.
    pub fn clear(&self) {
        self.map.clear();
        self.len.store(0, Relaxed);
    }

    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use kafka_pdp_core::model::{Operation, Principal, ResourceType};

    use super::*;

    fn context(name: &str, client_id: &str) -> Arc<Context> {
        let principal = Principal::new("User", name).unwrap();
        let ctx = Context::new(principal, [127, 0, 0, 1].into(), "", "", client_id, "");
        Arc::new(ctx.unwrap())
    }

    fn read(topic: &str) -> Action {
        Action::literal(Operation::Read, ResourceType::Topic, topic).unwrap()
    }

    fn key(name: &str, client_id: &str, generation: u64, topic: &str) -> Key {
        Key::new(
            ContextKey::new(context(name, client_id), generation),
            read(topic),
        )
    }

    #[test]
    fn a_newer_generation_never_sees_an_older_decision() {
        let cache = DecisionCache::new(10);
        cache.insert(key("alice", "", 1, "t"), true);
        assert_eq!(cache.get(&key("alice", "", 2, "t")), None);
        assert_eq!(cache.get(&key("alice", "", 1, "t")), Some(true));
    }

    #[test]
    fn every_part_of_the_request_is_part_of_the_key() {
        let cache = DecisionCache::new(10);
        cache.insert(key("alice", "", 1, "t"), true);
        assert_eq!(cache.get(&key("alice", "x", 1, "t")), None);
        assert_eq!(cache.get(&key("bob", "", 1, "t")), None);
        assert_eq!(cache.get(&key("alice", "", 1, "u")), None);
    }

    #[test]
    fn a_full_cache_starts_over_and_stays_bounded() {
        let cache = DecisionCache::new(3);
        for i in 0..10 {
            cache.insert(key("alice", "", 1, &i.to_string()), i);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&key("alice", "", 1, "9")), Some(9));
    }
}
