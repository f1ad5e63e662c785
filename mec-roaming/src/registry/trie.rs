//! A compact digit trie (bitmap-indexed, children stored contiguously) mapping E.164 prefixes to
//! a partner slot.
//!
//! Each node is 12 bytes: a 10-bit child bitmap, the index of its first child, and a value.
//! The children of a node sit next to each other in one arena, in digit order, so the child for
//! digit `d` is `first + popcount(bitmap & ((1 << d) - 1))`. A lookup therefore reads one node per
//! digit of the number (at most 15) whatever the number of prefixes stored.
//! Inserting or removing a child moves that node's child block to a block of the new size taken
//! from a per-size free list; [`DigitTrie::compact`] rewrites the arena breadth-first without holes.

/// "No value" / "no child block".
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Node {
    /// Index of the first child in the arena (`NONE` when there is no child).
    first: u32,
    /// Stored value (`NONE` when no prefix ends here).
    value: u32,
    /// Bit `d` set when the node has a child for digit `d`.
    bitmap: u16,
}

const EMPTY: Node = Node {
    first: NONE,
    value: NONE,
    bitmap: 0,
};

/// Trie of decimal-digit strings to `u32` values.
#[derive(Clone, Debug)]
pub(crate) struct DigitTrie {
    nodes: Vec<Node>,
    /// Free child blocks by size (index = block size, 1..=10).
    free: [Vec<u32>; 11],
    len: usize,
    /// Jump table over the first [`JUMP_DIGITS`] digits (empty when stale): lookups start at
    /// depth 3 instead of walking the three hottest levels.
    jump: Vec<Jump>,
}

/// Digits resolved by the jump table.
const JUMP_DIGITS: usize = 3;

/// One jump-table entry: the node reached by three digits and the best value on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Jump {
    /// Node at depth 3, or `NONE` when the path ends earlier.
    node: u32,
    /// Value of the longest prefix of length 0..=3 on the path, or `NONE`.
    best: u32,
    /// Its length.
    best_len: u32,
}

/// Error inserting into the trie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrieError {
    /// A digit above 9.
    BadDigit,
    /// The arena would exceed `u32` indexing.
    Full,
}

impl Default for DigitTrie {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn rank(bitmap: u16, d: u8) -> u32 {
    (bitmap & ((1u16 << d) - 1)).count_ones()
}

impl DigitTrie {
    pub(crate) fn new() -> Self {
        Self {
            nodes: vec![EMPTY],
            free: Default::default(),
            len: 0,
            jump: Vec::new(),
        }
    }

    /// Number of prefixes stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the index: the node arena (capacity) and the free lists.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * core::mem::size_of::<Node>()
            + self.free.iter().map(|f| f.capacity() * 4).sum::<usize>()
            + self.jump.capacity() * core::mem::size_of::<Jump>()
            + core::mem::size_of::<Self>()
    }

    /// Number of nodes in the arena, holes included.
    #[cfg(test)]
    pub(crate) fn arena_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn child(&self, node: u32, d: u8) -> Option<u32> {
        let n = self.nodes.get(node as usize)?;
        if d > 9 || n.bitmap & (1 << d) == 0 {
            return None;
        }
        Some(n.first + rank(n.bitmap, d))
    }

    /// The value of the longest stored prefix of `digits`, with its length.
    #[inline]
    pub(crate) fn longest_match(&self, digits: &[u8]) -> Option<(u32, usize)> {
        let nodes = &self.nodes[..];
        let mut best = None;
        let mut cur = nodes.first()?;
        let mut start = 0usize;
        if let ([a, b, c, ..], false) = (digits, self.jump.is_empty())
            && *a <= 9
            && *b <= 9
            && *c <= 9
        {
            let j = self
                .jump
                .get(usize::from(*a) * 100 + usize::from(*b) * 10 + usize::from(*c))?;
            if j.best != NONE {
                best = Some((j.best, j.best_len as usize));
            }
            match nodes.get(j.node as usize) {
                Some(n) => cur = n,
                None => return best,
            }
            start = JUMP_DIGITS;
        } else if cur.value != NONE {
            best = Some((cur.value, 0));
        }
        for (i, &d) in digits.iter().enumerate().skip(start) {
            if d > 9 || cur.bitmap & (1 << d) == 0 {
                break;
            }
            let idx = cur.first + rank(cur.bitmap, d);
            match nodes.get(idx as usize) {
                Some(n) => cur = n,
                None => break,
            }
            if cur.value != NONE {
                best = Some((cur.value, i + 1));
            }
        }
        best
    }

    /// Every stored prefix of `digits`, longest first, as `(value, prefix length)`.
    pub(crate) fn matches(&self, digits: &[u8]) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        let mut cur = 0u32;
        if let Some(n) = self.nodes.first()
            && n.value != NONE
        {
            out.push((n.value, 0));
        }
        for (i, &d) in digits.iter().enumerate() {
            let Some(c) = self.child(cur, d) else { break };
            cur = c;
            if let Some(n) = self.nodes.get(c as usize)
                && n.value != NONE
            {
                out.push((n.value, i + 1));
            }
        }
        out.reverse();
        out
    }

    /// The value stored for exactly `digits`.
    pub(crate) fn exact(&self, digits: &[u8]) -> Option<u32> {
        let mut cur = 0u32;
        for &d in digits {
            cur = self.child(cur, d)?;
        }
        let v = self.nodes.get(cur as usize)?.value;
        (v != NONE).then_some(v)
    }

    fn alloc(&mut self, size: usize) -> Result<u32, TrieError> {
        if let Some(b) = self.free.get_mut(size).and_then(Vec::pop) {
            return Ok(b);
        }
        let start = u32::try_from(self.nodes.len()).map_err(|_| TrieError::Full)?;
        if u32::try_from(self.nodes.len() + size).is_err() {
            return Err(TrieError::Full);
        }
        self.nodes.extend(core::iter::repeat_n(EMPTY, size));
        Ok(start)
    }

    fn release(&mut self, start: u32, size: usize) {
        if size == 0 || start == NONE {
            return;
        }
        for i in 0..size {
            if let Some(n) = self.nodes.get_mut(start as usize + i) {
                *n = EMPTY;
            }
        }
        if let Some(f) = self.free.get_mut(size) {
            f.push(start);
        }
    }

    /// Adds a child for digit `d` under `parent` (which has none for `d`), returning its index.
    fn add_child(&mut self, parent: u32, d: u8) -> Result<u32, TrieError> {
        let p = self.nodes[parent as usize];
        let k = p.bitmap.count_ones() as usize;
        let r = rank(p.bitmap, d) as usize;
        let block = self.alloc(k + 1)?;
        for i in 0..k {
            let src = self.nodes[p.first as usize + i];
            let dst = if i < r { i } else { i + 1 };
            self.nodes[block as usize + dst] = src;
        }
        self.nodes[block as usize + r] = EMPTY;
        self.release(p.first, k);
        let pn = &mut self.nodes[parent as usize];
        pn.first = block;
        pn.bitmap |= 1 << d;
        Ok(block + rank(p.bitmap, d))
    }

    /// Removes the (empty, childless) child for digit `d` under `parent`.
    fn remove_child(&mut self, parent: u32, d: u8) {
        let p = self.nodes[parent as usize];
        let k = p.bitmap.count_ones() as usize;
        let r = rank(p.bitmap, d) as usize;
        if k == 1 {
            self.release(p.first, 1);
            let pn = &mut self.nodes[parent as usize];
            pn.first = NONE;
            pn.bitmap = 0;
            return;
        }
        // Shrinking never needs fresh arena space when a free block exists; on failure to grow
        // the arena we keep the old, larger block (still correct, merely not shrunk).
        let Ok(block) = self.alloc(k - 1) else {
            return;
        };
        let mut j = 0usize;
        for i in 0..k {
            if i == r {
                continue;
            }
            self.nodes[block as usize + j] = self.nodes[p.first as usize + i];
            j += 1;
        }
        self.release(p.first, k);
        let pn = &mut self.nodes[parent as usize];
        pn.first = block;
        pn.bitmap &= !(1 << d);
    }

    /// Rebuilds the jump table (after a batch of inserts and removals).
    pub(crate) fn rebuild_jump(&mut self) {
        let root = self.nodes.first().map_or(NONE, |n| n.value);
        let mut table = Vec::with_capacity(1000);
        for a in 0..10u8 {
            for b in 0..10u8 {
                for c in 0..10u8 {
                    let (mut best, mut best_len) = (root, 0u32);
                    let mut node = 0u32;
                    for (depth, d) in (1u32..).zip([a, b, c]) {
                        match self.child(node, d) {
                            Some(child) => {
                                node = child;
                                let val = self.nodes.get(child as usize).map_or(NONE, |n| n.value);
                                if val != NONE {
                                    best = val;
                                    best_len = depth;
                                }
                            }
                            None => {
                                node = NONE;
                                break;
                            }
                        }
                    }
                    table.push(Jump {
                        node,
                        best,
                        best_len,
                    });
                }
            }
        }
        self.jump = table;
    }

    /// Stores `value` for `digits`, returning the previous value.
    pub(crate) fn insert(&mut self, digits: &[u8], value: u32) -> Result<Option<u32>, TrieError> {
        if digits.iter().any(|&d| d > 9) || value == NONE {
            return Err(TrieError::BadDigit);
        }
        self.jump.clear();
        let mut cur = 0u32;
        for &d in digits {
            cur = match self.child(cur, d) {
                Some(c) => c,
                None => self.add_child(cur, d)?,
            };
        }
        let n = &mut self.nodes[cur as usize];
        let old = n.value;
        n.value = value;
        if old == NONE {
            self.len += 1;
            Ok(None)
        } else {
            Ok(Some(old))
        }
    }

    /// Removes `digits`, pruning nodes left without value or children. Returns the old value.
    pub(crate) fn remove(&mut self, digits: &[u8]) -> Option<u32> {
        let mut path: Vec<(u32, u8)> = Vec::with_capacity(digits.len());
        let mut cur = 0u32;
        for &d in digits {
            let c = self.child(cur, d)?;
            path.push((cur, d));
            cur = c;
        }
        let n = self.nodes.get_mut(cur as usize)?;
        if n.value == NONE {
            return None;
        }
        self.jump.clear();
        let old = n.value;
        n.value = NONE;
        self.len -= 1;
        // Prune upwards while the node is empty and childless.
        while let Some((parent, d)) = path.pop() {
            let Some(c) = self.child(parent, d) else {
                break;
            };
            let cn = self.nodes[c as usize];
            if cn.value != NONE || cn.bitmap != 0 {
                break;
            }
            self.remove_child(parent, d);
        }
        Some(old)
    }

    /// Rewrites the arena breadth-first with no holes and empty free lists.
    pub(crate) fn compact(&mut self) {
        let mut out: Vec<Node> = Vec::with_capacity(self.nodes.len() - self.free_nodes());
        out.push(self.nodes[0]);
        let mut i = 0usize;
        while i < out.len() {
            let n = out[i];
            let k = n.bitmap.count_ones() as usize;
            if k > 0 {
                let Ok(new_first) = u32::try_from(out.len()) else {
                    return;
                };
                for j in 0..k {
                    out.push(self.nodes[n.first as usize + j]);
                }
                out[i].first = new_first;
            }
            i += 1;
        }
        out.shrink_to_fit();
        self.nodes = out;
        self.free = Default::default();
        self.rebuild_jump();
    }

    fn free_nodes(&self) -> usize {
        self.free
            .iter()
            .enumerate()
            .map(|(size, f)| size * f.len())
            .sum()
    }

    /// Share of the arena that is holes (0.0 ..= 1.0).
    pub(crate) fn fragmentation(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        {
            self.free_nodes() as f64 / self.nodes.len() as f64
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn model_longest(m: &BTreeMap<Vec<u8>, u32>, q: &[u8]) -> Option<(u32, usize)> {
        (0..=q.len())
            .rev()
            .find_map(|l| m.get(&q[..l]).map(|&v| (v, l)))
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = DigitTrie::new();
        t.insert(&[4, 4], 1).unwrap();
        t.insert(&[4, 4, 2, 0], 2).unwrap();
        assert_eq!(t.longest_match(&[4, 4, 2, 0, 7, 9]), Some((2, 4)));
        assert_eq!(t.longest_match(&[4, 4, 1]), Some((1, 2)));
        assert_eq!(t.longest_match(&[3, 3]), None);
        assert_eq!(t.matches(&[4, 4, 2, 0, 7]), vec![(2, 4), (1, 2)]);
        assert_eq!(t.remove(&[4, 4, 2, 0]), Some(2));
        assert_eq!(t.longest_match(&[4, 4, 2, 0, 7, 9]), Some((1, 2)));
        assert_eq!(t.remove(&[4, 4, 2, 0]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(0u8..10, 0..6), 0u32..1000), 0..200),
            queries in proptest::collection::vec(proptest::collection::vec(0u8..10, 0..8), 0..50)) {
            let mut t = DigitTrie::new();
            let mut m = BTreeMap::new();
            for (ins, k, v) in ops {
                if ins {
                    prop_assert_eq!(t.insert(&k, v).unwrap(), m.insert(k, v));
                } else {
                    prop_assert_eq!(t.remove(&k), m.remove(&k));
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for q in &queries {
                prop_assert_eq!(t.longest_match(q), model_longest(&m, q));
                prop_assert_eq!(t.exact(q), m.get(q).copied());
            }
            t.rebuild_jump();
            for q in &queries {
                prop_assert_eq!(t.longest_match(q), model_longest(&m, q), "with jump table");
            }
            t.compact();
            prop_assert_eq!(t.fragmentation(), 0.0);
            for q in &queries {
                prop_assert_eq!(t.longest_match(q), model_longest(&m, q));
            }
            // After removing everything, only the root remains once compacted.
            let keys: Vec<_> = m.keys().cloned().collect();
            for k in keys { t.remove(&k); }
            t.compact();
            prop_assert_eq!(t.arena_nodes(), 1);
        }
    }
}
