//! From loaded problems to the rows of prompts.parquet.

use std::collections::{BTreeMap, HashSet};

use artifacts::prompts::PromptRow;

use crate::raw::Problem;
use crate::template::Template;
use crate::PrepError;
use rng::{in_holdout, SplitMix64};

/// Which side of the stable train/holdout split to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Split {
    /// Every row.
    #[default]
    All,
    /// Rows whose id hashes outside the holdout share.
    Train,
    /// Rows whose id hashes inside the holdout share.
    Holdout,
}

/// Options applied after loading, in this order: split, shuffle, limit.
#[derive(Debug, Clone)]
pub struct Selection {
    pub split: Split,
    pub holdout_fraction: f64,
    /// Shuffle with this seed; `None` keeps the input order.
    pub shuffle_seed: Option<u64>,
    /// Keep only problems whose metadata `kind` is one of these (after the
    /// split and the shuffle, before the limit, so the kept rows keep
    /// their order); empty keeps every problem.
    pub kinds: Vec<String>,
    pub limit: Option<usize>,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            split: Split::All,
            holdout_fraction: 0.1,
            shuffle_seed: None,
            kinds: Vec::new(),
            limit: None,
        }
    }
}

/// Apply `sel` to `problems` and render each through `template`.
/// Fails on a duplicate id.
pub fn to_prompts(
    problems: Vec<Problem>,
    template: &Template,
    sel: &Selection,
) -> Result<Vec<PromptRow>, PrepError> {
    let mut seen = HashSet::new();
    for p in &problems {
        if !seen.insert(p.id.as_str()) {
            return Err(PrepError::DuplicateId(p.id.clone()));
        }
    }
    if !(0.0..=1.0).contains(&sel.holdout_fraction) {
        return Err(PrepError::Invalid(format!(
            "--holdout-fraction must be in [0, 1], got {}",
            sel.holdout_fraction
        )));
    }
    let mut kept: Vec<Problem> = problems
        .into_iter()
        .filter(|p| match sel.split {
            Split::All => true,
            Split::Train => !in_holdout(&p.id, sel.holdout_fraction),
            Split::Holdout => in_holdout(&p.id, sel.holdout_fraction),
        })
        .collect();
    if let Some(seed) = sel.shuffle_seed {
        SplitMix64::new(seed).shuffle(&mut kept);
    }
    if !sel.kinds.is_empty() {
        kept.retain(|p| {
            p.metadata
                .get("kind")
                .and_then(|k| k.as_str())
                .is_some_and(|k| sel.kinds.iter().any(|want| want == k))
        });
    }
    if let Some(n) = sel.limit {
        kept.truncate(n);
    }
    kept.into_iter()
        .map(|p| {
            Ok(PromptRow {
                prompt: template.render(&p.question)?,
                metadata: (!p.metadata.is_empty())
                    .then(|| serde_json::Value::Object(p.metadata).to_string()),
                id: p.id,
                source: p.source,
                question: p.question,
                answer: p.answer,
                level: p.level,
                subject: p.subject,
            })
        })
        .collect()
}

/// Drop problems whose normalised text was seen before; returns how many.
pub fn dedupe_questions(problems: &mut Vec<Problem>) -> usize {
    let before = problems.len();
    let mut seen = HashSet::new();
    problems.retain(|p| seen.insert(crate::normalize_question(&p.question)));
    before - problems.len()
}

/// Counts per source, for summaries.
pub fn count_by_source(rows: &[PromptRow]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r.source.as_str()).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TemplateName;

    fn problems(n: usize) -> Vec<Problem> {
        (0..n)
            .map(|i| Problem {
                id: format!("t/{i}"),
                source: "t".into(),
                question: format!("q{i}"),
                answer: i.to_string(),
                level: None,
                subject: None,
                metadata: Default::default(),
            })
            .collect()
    }

    #[test]
    fn train_and_holdout_partition_the_rows() {
        let t = Template::new(TemplateName::Plain).unwrap();
        let sel = |split| Selection {
            split,
            holdout_fraction: 0.2,
            ..Default::default()
        };
        let all = to_prompts(problems(500), &t, &sel(Split::All)).unwrap();
        let train = to_prompts(problems(500), &t, &sel(Split::Train)).unwrap();
        let hold = to_prompts(problems(500), &t, &sel(Split::Holdout)).unwrap();
        assert_eq!(train.len() + hold.len(), all.len());
        assert!(hold.iter().all(|h| train.iter().all(|r| r.id != h.id)));
        assert!((60..140).contains(&hold.len()), "{}", hold.len());
        // Stable when other rows are removed.
        let hold_small = to_prompts(problems(250), &t, &sel(Split::Holdout)).unwrap();
        assert!(hold_small.iter().all(|h| hold.iter().any(|r| r.id == h.id)));
    }

    #[test]
    fn shuffle_is_seeded_and_limit_applies_after() {
        let t = Template::new(TemplateName::Plain).unwrap();
        let sel = |seed| Selection {
            shuffle_seed: Some(seed),
            limit: Some(10),
            ..Default::default()
        };
        let a = to_prompts(problems(100), &t, &sel(1)).unwrap();
        assert_eq!(a, to_prompts(problems(100), &t, &sel(1)).unwrap());
        assert_ne!(a, to_prompts(problems(100), &t, &sel(2)).unwrap());
        assert_eq!(a.len(), 10);
        assert_ne!(
            a.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            (0..10).map(|i| format!("t/{i}")).collect::<Vec<_>>()
        );
    }

    /// A kind filter keeps the shuffled order of what it keeps, so it
    /// selects the same rows in the same order as filtering the unfiltered
    /// output; rows without a kind are dropped.
    #[test]
    fn kinds_filter_after_the_shuffle_keeping_order() {
        let t = Template::new(TemplateName::Plain).unwrap();
        let mut ps = problems(60);
        for (i, p) in ps.iter_mut().enumerate() {
            if i % 10 != 9 {
                let kind = ["add", "mul-add", "paren-mul"][i % 3];
                p.metadata.insert("kind".into(), kind.into());
            }
        }
        let sel = |kinds: &[&str]| Selection {
            shuffle_seed: Some(7),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            limit: Some(30),
            ..Default::default()
        };
        let all = to_prompts(
            ps.clone(),
            &t,
            &Selection {
                limit: None,
                ..sel(&[])
            },
        )
        .unwrap();
        let two = to_prompts(ps, &t, &sel(&["mul-add", "paren-mul"])).unwrap();
        let want: Vec<_> = all
            .iter()
            .filter(|r| {
                let m = r.metadata.as_deref().unwrap_or("");
                m.contains("\"mul-add\"") || m.contains("\"paren-mul\"")
            })
            .take(30)
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(two.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), want);
        // 54 problems have a kind, 36 of them one of the two: all 30 kept are.
        assert_eq!(two.len(), 30);
    }

    #[test]
    fn duplicate_ids_are_an_error() {
        let t = Template::new(TemplateName::Plain).unwrap();
        let mut ps = problems(3);
        ps[2].id = "t/0".into();
        assert!(matches!(
            to_prompts(ps, &t, &Selection::default()),
            Err(PrepError::DuplicateId(_))
        ));
    }
}
