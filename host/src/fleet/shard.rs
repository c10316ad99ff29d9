//! `--shard K/N`: a deterministic share of a fleet, so that N dscan
//! processes (an Indexed Job's pods) split it with no coordinator. A target
//! belongs to the shard its key hashes to, so the split does not depend on
//! the order the API server lists pods in, nor on which other pods exist.

use sha2::{Digest, Sha256};

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// Parses `K/N` (K from 0).
    pub fn parse(raw: &str) -> Result<Shard, String> {
        let (k, n) = raw
            .split_once('/')
            .ok_or_else(|| format!("--shard {raw:?}: write it as K/N, e.g. 0/4"))?;
        let index: u32 = k.trim().parse().map_err(|_| {
            format!("--shard {raw:?}: K must be a number (in a Job, $(JOB_COMPLETION_INDEX))")
        })?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("--shard {raw:?}: N must be a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "--shard {raw:?}: K counts from 0 and must be below N (0/{n} … {}/{n})",
                count.saturating_sub(1)
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard `key` belongs to.
    pub fn of(key: &str, count: u32) -> u32 {
        let digest = Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
    }

    /// Whether `key` is this shard's.
    pub fn owns(&self, key: &str) -> bool {
        Self::of(key, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("ns-{}/pod-{i}/app", i % 3))
            .collect()
    }

    #[test]
    fn every_target_is_in_exactly_one_shard_for_any_n_and_order() {
        for count in [1u32, 2, 3, 5, 8, 13] {
            let mut all = keys(200);
            for round in 0..3 {
                // Another listing order each round: the split must not change.
                all.rotate_left(37 * round + 1);
                all.reverse();
                let mut seen = std::collections::BTreeMap::new();
                for index in 0..count {
                    let shard = Shard { index, count };
                    for k in all.iter().filter(|k| shard.owns(k)) {
                        assert!(
                            seen.insert(k.clone(), index).is_none(),
                            "{k} in two shards of {count}"
                        );
                    }
                }
                assert_eq!(seen.len(), all.len(), "N={count}: a target in no shard");
                for k in &all {
                    assert_eq!(seen[k], Shard::of(k, count), "stable under reordering");
                }
            }
        }
    }

    #[test]
    fn shards_are_roughly_even() {
        let all = keys(1000);
        for index in 0..4 {
            let n = all
                .iter()
                .filter(|k| Shard { index, count: 4 }.owns(k))
                .count();
            assert!((180..=320).contains(&n), "shard {index}/4 has {n} of 1000");
        }
    }

    #[test]
    fn bad_shards_say_how_to_write_one() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        assert!(Shard::parse("4/4").unwrap_err().contains("below N"));
        assert!(Shard::parse("0/0").is_err());
        assert!(
            Shard::parse("x/4")
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        assert!(Shard::parse("3").unwrap_err().contains("K/N"));
    }
}
