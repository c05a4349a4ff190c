//! The map the fast path's exact-match lookups use (inbound SAs by anycast endpoint and SPI, GRE
//! tunnels by endpoints, the server's own addresses, neighbors): 64-bit keys, open addressing
//! with linear probing over one flat array of slots, each holding its key and its value.
//!
//! A general hash map does the same lookups, but slower and without the one thing that keeps
//! many SAs fast. A hit here is a multiplication, one slot read and a comparison, where the
//! general map's group probing cost the GRE pipeline several nanoseconds a packet. And with
//! 100 000 SAs each in use, every packet's lookup misses the cache, and misses taken one packet
//! after the other cost three quarters of the rate: here the slot a key starts at is known from
//! the key alone, so a worker can prefetch it for a whole burst ([`KeyMap::prefetch`]) before
//! looking any of them up, and the value sits in the slot, so a found SA is one more line away.
//!
//! Positions are stable only until the next change: a removal shifts later entries back and a
//! growth moves all of them. Workers change their tables between bursts only, so a position found
//! while classifying a burst stays good until its crypto is done.

use std::mem;

/// Fibonacci hashing: one multiplication spreads sequential and random keys alike.
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The fewest slots a table has.
const MIN_SLOTS: usize = 16;

/// A map from 64-bit keys to values, at most half full.
#[derive(Debug, Clone)]
pub struct KeyMap<V> {
    slots: Vec<Option<(u64, V)>>,
    /// 64 minus the log2 of the slot count: a hash's top bits are its home slot.
    shift: u32,
    len: usize,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap { slots: empty_slots(MIN_SLOTS), shift: 64 - MIN_SLOTS.trailing_zeros(), len: 0 }
    }
}

fn empty_slots<V>(n: usize) -> Vec<Option<(u64, V)>> {
    std::iter::repeat_with(|| None).take(n).collect()
}

impl<V> KeyMap<V> {
    /// Where a key's probe starts.
    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(MULTIPLIER) >> self.shift) as usize
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The position of a key's entry.
    #[inline(always)]
    pub fn position(&self, key: u64) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            match &self.slots[i] {
                None => return None,
                Some((k, _)) if *k == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// A key's value.
    #[inline(always)]
    pub fn get(&self, key: u64) -> Option<&V> {
        self.position(key).and_then(|i| self.at(i))
    }

    /// The value at a position found by [`KeyMap::position`] since the last change.
    #[inline(always)]
    pub fn at(&self, position: usize) -> Option<&V> {
        self.slots.get(position)?.as_ref().map(|(_, v)| v)
    }

    /// The value at a position, writable.
    #[inline(always)]
    pub fn at_mut(&mut self, position: usize) -> Option<&mut V> {
        self.slots.get_mut(position)?.as_mut().map(|(_, v)| v)
    }

    /// Bring the slot a key's probe starts at into the cache.
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        dpdk_bindings::prefetch(&self.slots[self.home(key)]);
    }

    /// Set a key's value; gives the one it replaces.
    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        if let Some(i) = self.position(key) {
            return self.slots[i].replace((key, value)).map(|(_, v)| v);
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(key, value);
        self.len += 1;
        None
    }

    /// Put a key that is not in the table into its first free slot.
    fn place(&mut self, key: u64, value: V) {
        let mask = self.mask();
        let mut i = self.home(key);
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some((key, value));
    }

    fn grow(&mut self) {
        let doubled = empty_slots(self.slots.len() * 2);
        let slots = mem::replace(&mut self.slots, doubled);
        self.shift -= 1;
        for (key, value) in slots.into_iter().flatten() {
            self.place(key, value);
        }
    }

    /// Remove a key; gives its value. The entries after it in its run move back, so that no
    /// probe ever stops early at the hole (no tombstones to clean up later).
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let mut hole = self.position(key)?;
        let removed = self.slots[hole].take().map(|(_, v)| v);
        self.len -= 1;
        let mask = self.mask();
        let mut next = (hole + 1) & mask;
        while let Some((k, _)) = &self.slots[next] {
            // An entry may fill the hole when its home is not within (hole, next]: its probe
            // passes the hole before reaching where it is.
            let home = self.home(*k);
            let home_after_hole = (home.wrapping_sub(hole + 1) & mask) < (next.wrapping_sub(hole) & mask);
            if !home_after_hole {
                self.slots[hole] = self.slots[next].take();
                hole = next;
            }
            next = (next + 1) & mask;
        }
        removed
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every value.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.slots.iter().flatten().map(|(_, v)| v)
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().flatten().map(|(k, _)| *k)
    }

    /// Whether a key is in the map.
    #[inline(always)]
    pub fn contains_key(&self, key: u64) -> bool {
        self.position(key).is_some()
    }
}

impl<V> FromIterator<(u64, V)> for KeyMap<V> {
    fn from_iter<I: IntoIterator<Item = (u64, V)>>(entries: I) -> Self {
        let mut map = KeyMap::default();
        for (k, v) in entries {
            map.insert(k, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A small deterministic generator (xorshift64*), so that a failure can be replayed.
    fn keys(seed: u64) -> impl Iterator<Item = u64> {
        let mut x = seed;
        std::iter::repeat_with(move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        })
    }

    fn check_same(index: &KeyMap<u32>, model: &HashMap<u64, u32>, probes: &[u64]) {
        assert_eq!(index.len(), model.len());
        for k in probes {
            assert_eq!(index.get(*k), model.get(k), "key {k:#x}");
        }
        let mut values: Vec<_> = index.values().copied().collect();
        let mut want: Vec<_> = model.values().copied().collect();
        values.sort_unstable();
        want.sort_unstable();
        assert_eq!(values, want);
    }

    #[test]
    fn behaves_as_a_map_through_inserts_replacements_and_removals() {
        // Keys from a narrow range collide often at small sizes; random ones spread. Removal is
        // where open addressing goes wrong, so every third operation removes.
        for (seed, narrow) in [(1, true), (2, false), (3, true), (4, false)] {
            let mut index = KeyMap::default();
            let mut model = HashMap::new();
            let mut used = Vec::new();
            for (n, r) in keys(seed).take(5000).enumerate() {
                let key = if narrow { r % 300 } else { r };
                match n % 3 {
                    0 | 1 => {
                        assert_eq!(index.insert(key, n as u32), model.insert(key, n as u32));
                        used.push(key);
                    }
                    _ => {
                        let victim = used[(r as usize / 7) % used.len()];
                        assert_eq!(index.remove(victim), model.remove(&victim));
                    }
                }
                if n % 500 == 0 {
                    check_same(&index, &model, &used);
                }
            }
            check_same(&index, &model, &used);
            assert!(index.slots.len() >= 2 * index.len(), "at most half full");
        }
    }

    #[test]
    fn sequential_spis_of_one_endpoint_each_find_their_entry() {
        let mut index = KeyMap::default();
        let endpoint = u64::from(u32::from_be_bytes([192, 0, 2, 1])) << 32;
        for spi in 0..100_000u64 {
            index.insert(endpoint | (0x10000 + spi), spi as u32);
        }
        assert_eq!(index.len(), 100_000);
        assert!((0..100_000u64).all(|spi| index.get(endpoint | (0x10000 + spi)) == Some(&(spi as u32))));
        assert_eq!(index.get(endpoint | 5), None);
        assert_eq!(index.get(0x10000), None, "another endpoint");
        for spi in (0..100_000u64).step_by(2) {
            assert_eq!(index.remove(endpoint | (0x10000 + spi)), Some(spi as u32));
        }
        assert!((0..100_000u64).all(|spi| index.get(endpoint | (0x10000 + spi)).is_some() == (spi % 2 == 1)));
        let p = index.position(endpoint | 0x10001).unwrap();
        assert_eq!(index.at(p), Some(&1));
        *index.at_mut(p).unwrap() = 9;
        assert_eq!(index.get(endpoint | 0x10001), Some(&9));
        index.prefetch(endpoint | 0x10001);
        index.prefetch(12345);
    }
}
