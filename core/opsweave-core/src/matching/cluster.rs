//! From scored pairs to decisions: one-to-one assignment for linking, connected components for
//! dedupe.

/// Greedy best-first one-to-one assignment: pairs in descending score, each taken unless one of
/// its records is already taken. Returns the indices of the kept pairs.
///
/// Greedy rather than optimal (Hungarian) assignment: on sparse candidate graphs the two agree
/// almost always, and greedy is near-linear and explains itself ("a better pair took it").
pub fn one_to_one(pairs: &[(usize, usize, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by(|a, b| {
        pairs[*b]
            .2
            .total_cmp(&pairs[*a].2)
            .then(pairs[*a].0.cmp(&pairs[*b].0))
            .then(pairs[*a].1.cmp(&pairs[*b].1))
    });
    let taken = |side: fn(&(usize, usize, f64)) -> usize| {
        vec![false; pairs.iter().map(|p| side(p) + 1).max().unwrap_or(0)]
    };
    let mut left_taken = taken(|p| p.0);
    let mut right_taken = taken(|p| p.1);
    let mut kept = Vec::new();
    for i in order {
        let (l, r, _) = pairs[i];
        if !left_taken[l] && !right_taken[r] {
            left_taken[l] = true;
            right_taken[r] = true;
            kept.push(i);
        }
    }
    kept.sort_unstable();
    kept
}

/// Connected components of `n` records joined by `edges`; singletons are left out. Each
/// component's members are sorted, components by their first member.
pub fn components(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (a, b) in edges {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> =
        std::collections::BTreeMap::new();
    for x in 0..n {
        let r = root(&mut parent, x);
        groups.entry(r).or_default().push(x);
    }
    groups.into_values().filter(|g| g.len() > 1).collect()
}

/// Every pair of members inside each of `clusters`, smaller row first (members sorted).
pub fn pairs_within(clusters: &[Vec<usize>]) -> impl Iterator<Item = (usize, usize)> + '_ {
    clusters.iter().flat_map(|c| {
        c.iter()
            .enumerate()
            .flat_map(move |(x, a)| c[x + 1..].iter().map(move |b| (*a.min(b), *a.max(b))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn best_pair_wins_and_losers_are_dropped() {
        let pairs = vec![(0, 0, 5.0), (0, 1, 9.0), (1, 1, 8.0), (1, 0, 4.0)];
        assert_eq!(one_to_one(&pairs), vec![1, 3]);
    }

    #[test]
    fn components_join_transitively() {
        let c = components(5, vec![(0, 1), (1, 2), (3, 3)]);
        assert_eq!(c, vec![vec![0, 1, 2]]);
    }

    proptest! {
        #[test]
        fn one_to_one_never_reuses_a_record(
            pairs in proptest::collection::vec((0usize..20, 0usize..20, -10.0f64..10.0), 0..80)
        ) {
            let kept = one_to_one(&pairs);
            let mut ls = std::collections::HashSet::new();
            let mut rs = std::collections::HashSet::new();
            for i in kept {
                prop_assert!(ls.insert(pairs[i].0));
                prop_assert!(rs.insert(pairs[i].1));
            }
        }
    }
}
