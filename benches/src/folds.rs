//! The generalisation protocol's folds (issue 13): which items a choice may be made on and
//! which it is judged on, and the summary of the judged figures.
//!
//! Everything a method chooses (a configuration from a grid, a threshold) is chosen on a
//! fold's training items only and scored on its held-out items; the figure reported is the
//! mean and spread over the held-out folds, beside the all-items figure. A change is kept
//! only if it lifts the held-out figure.

use std::collections::BTreeMap;

use crate::rng::Rng;

/// One fold: indices (into the caller's item list) to choose on and to judge on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// What the fold is called in reports (`fold 3/5`, `realTweets`).
    pub name: String,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// `k` folds stratified by group: within each group the items are shuffled with `seed`
/// and dealt out in turn, the turn carrying on from group to group, so every fold holds
/// about `1/k` of every group and the folds differ in size by one item at most.
pub fn stratified(groups: &[&str], k: usize, seed: u64) -> Vec<Fold> {
    assert!(k >= 2, "at least two folds");
    let mut by_group: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        by_group.entry(g).or_default().push(i);
    }
    let mut rng = Rng::new(seed);
    let mut assigned = vec![0usize; groups.len()];
    let mut turn = 0usize;
    for items in by_group.values_mut() {
        // Fisher–Yates with the benches' seedable generator.
        for i in (1..items.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
        for &item in items.iter() {
            assigned[item] = turn % k;
            turn += 1;
        }
    }
    (0..k)
        .map(|f| Fold {
            name: format!("fold {}/{k}", f + 1),
            train: (0..groups.len()).filter(|&i| assigned[i] != f).collect(),
            test: (0..groups.len()).filter(|&i| assigned[i] == f).collect(),
        })
        .collect()
}

/// One fold per group: the group held out, the rest to choose on.
pub fn leave_one_group_out(groups: &[&str]) -> Vec<Fold> {
    let mut names: Vec<&str> = groups.to_vec();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| Fold {
            name: name.to_string(),
            train: (0..groups.len()).filter(|&i| groups[i] != name).collect(),
            test: (0..groups.len()).filter(|&i| groups[i] == name).collect(),
        })
        .collect()
}

/// The configurations a protocol run chooses from: `text` is a JSON array of partial
/// configurations, each laid over `base` (fields not given keep `base`'s value); without
/// it, `base` alone.
pub fn grid<T>(base: &T, text: Option<&str>) -> anyhow::Result<Vec<T>>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    use anyhow::Context;
    let Some(text) = text else {
        return Ok(vec![base.clone()]);
    };
    let partials: Vec<serde_json::Value> =
        serde_json::from_str(text).context("parsing the grid (a JSON array of objects)")?;
    anyhow::ensure!(!partials.is_empty(), "the grid is empty");
    let base = serde_json::to_value(base)?;
    partials
        .into_iter()
        .enumerate()
        .map(|(i, partial)| {
            let mut merged = base.clone();
            let (Some(m), Some(p)) = (merged.as_object_mut(), partial.as_object()) else {
                anyhow::bail!("grid entry {i} is not a JSON object");
            };
            m.extend(p.clone());
            serde_json::from_value(merged).with_context(|| format!("grid entry {i}"))
        })
        .collect()
}

/// Mean, sample standard deviation, least and greatest of held-out figures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no figures.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Spread {
            n,
            mean,
            std,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = f.precision().unwrap_or(2);
        write!(
            f,
            "mean {:.p$} ± {:.p$} (min {:.p$}, max {:.p$}, {} folds)",
            self.mean, self.std, self.min, self.max, self.n
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_folds_partition_the_items_and_share_every_group() {
        let groups: Vec<&str> = ["a"; 10].into_iter().chain(["b"; 5]).collect();
        let folds = stratified(&groups, 5, 7);
        let mut seen = vec![0; groups.len()];
        for fold in &folds {
            assert_eq!(fold.train.len() + fold.test.len(), groups.len());
            for &i in &fold.test {
                seen[i] += 1;
                assert!(!fold.train.contains(&i));
            }
            let a = fold.test.iter().filter(|&&i| groups[i] == "a").count();
            assert_eq!(a, 2, "{}: every fold holds a fifth of group a", fold.name);
            assert_eq!(fold.test.len(), 3);
        }
        assert!(seen.iter().all(|&c| c == 1), "each item held out once");
        assert_eq!(folds, stratified(&groups, 5, 7), "the seed fixes the folds");
    }

    #[test]
    fn leave_one_group_out_holds_out_each_group_whole() {
        let groups = ["x", "y", "x", "z"];
        let folds = leave_one_group_out(&groups);
        let names: Vec<&str> = folds.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["x", "y", "z"]);
        assert_eq!(folds[0].test, [0, 2]);
        assert_eq!(folds[0].train, [1, 3]);
    }

    #[test]
    fn a_grid_lays_each_entry_over_the_base() {
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct C {
            a: u32,
            b: f64,
        }
        let base = C { a: 1, b: 0.5 };
        assert_eq!(grid(&base, None).unwrap(), std::slice::from_ref(&base));
        let g = grid(&base, Some(r#"[{}, {"b": 0.7}]"#)).unwrap();
        assert_eq!(g, [base.clone(), C { a: 1, b: 0.7 }]);
        assert!(grid(&base, Some("[3]")).is_err());
        assert!(grid(&base, Some(r#"[{"a": "x"}]"#)).is_err());
    }

    #[test]
    fn spread_of_figures() {
        let s = Spread::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.mean, s.std, s.min, s.max), (2.0, 1.0, 1.0, 3.0));
        assert!(Spread::of(&[]).is_none());
    }
}
