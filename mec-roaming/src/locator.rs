//! Home-server location with a cache of located homes.

use core::time::Duration;
use std::collections::{BTreeSet, HashMap};

use crate::e164::E164;
use crate::registry::{Partner, Registry};
use crate::time::Timestamp;

/// Cache of subscriber number → home partner name, each entry valid until an expiry time.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HomeCache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<E164, (String, Timestamp)>,
    by_expiry: BTreeSet<(Timestamp, E164)>,
}

impl HomeCache {
    /// A cache keeping each located home for `ttl`, holding at most `capacity` numbers.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Number of live and not-yet-purged entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached home of `number` if its entry has not expired at `now`.
    #[must_use]
    pub fn lookup(&self, now: Timestamp, number: &E164) -> Option<&str> {
        let (name, exp) = self.entries.get(number)?;
        (now < *exp).then_some(name.as_str())
    }

    /// Records that `home` accepted `number` at `now`.
    pub fn remember(&mut self, now: Timestamp, number: E164, home: &str) {
        self.purge(now);
        self.forget(&number);
        if self.entries.len() >= self.capacity
            && let Some(first) = self.by_expiry.pop_first()
        {
            self.entries.remove(&first.1);
        }
        let exp = now.saturating_add(self.ttl);
        self.entries.insert(number, (home.to_owned(), exp));
        self.by_expiry.insert((exp, number));
    }

    /// Drops the entry of `number` (its home rejected it or was removed).
    pub fn forget(&mut self, number: &E164) {
        if let Some((_, exp)) = self.entries.remove(number) {
            self.by_expiry.remove(&(exp, *number));
        }
    }

    /// Drops every entry expired at `now`.
    pub fn purge(&mut self, now: Timestamp) {
        while let Some(&(exp, n)) = self.by_expiry.first() {
            if exp > now {
                break;
            }
            self.by_expiry.pop_first();
            self.entries.remove(&n);
        }
    }
}

/// Home candidates for `number`: the cached home first (if still a partner), then
/// [`Registry::candidates`]. Names only, so a transaction survives registry updates.
#[must_use]
pub fn locate(
    registry: &Registry,
    cache: &HomeCache,
    now: Timestamp,
    number: &E164,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(home) = cache.lookup(now, number)
        && registry.partner(home).is_some()
    {
        out.push(home.to_owned());
    }
    for p in registry.candidates(number) {
        let n = Partner::name(p);
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_capacity_evicts_the_oldest() {
        let mut c = HomeCache::new(Duration::from_secs(10), 2);
        let a = E164::parse("+441").unwrap();
        let b = E164::parse("+442").unwrap();
        let d = E164::parse("+443").unwrap();
        let t0 = Timestamp::from_unix_secs(100);
        c.remember(t0, a, "uk");
        assert_eq!(
            c.lookup(t0.saturating_add(Duration::from_secs(9)), &a),
            Some("uk")
        );
        assert_eq!(
            c.lookup(t0.saturating_add(Duration::from_secs(10)), &a),
            None
        );
        c.remember(t0.saturating_add(Duration::from_secs(1)), b, "uk2");
        c.remember(t0.saturating_add(Duration::from_secs(2)), d, "uk3");
        assert_eq!(c.len(), 2);
        assert_eq!(c.lookup(t0, &a), None, "oldest evicted");
        c.purge(t0.saturating_add(Duration::from_secs(60)));
        assert!(c.is_empty());
    }
}
