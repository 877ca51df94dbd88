//! The scored rows as the trainer sees them: token sequences, the response
//! mask, the sequence scores and prompt groups, and micro-batches of them.

use std::path::Path;

use artifacts::scored::ScoredRow;
use candle_core::{DType, Device, Tensor};
use model::model::ResponseBatch;
use train::TrainError;

use crate::Result;

/// One row as the trainer sees it.
struct Sample {
    /// prompt + response token ids
    ids: Vec<u32>,
    prompt_len: usize,
    response_len: usize,
}

/// The rows of one step.
pub struct Batch {
    pub rows: Vec<ScoredRow>,
    samples: Vec<Sample>,
    /// The sampling temperature the log-probs are taken at (1 for greedy
    /// rollouts, which recorded the model's own log-probs).
    pub temperature: f64,
    /// The longest response (at least 1): the width of response-aligned
    /// tensors.
    pub width: usize,
    /// `[N, width]`: 1 on each row's response tokens.
    pub mask: Tensor,
    /// Each row's reward.
    pub scores: Vec<f32>,
    /// Each row's prompt, as an index (rows of one prompt form a group).
    pub groups: Vec<usize>,
    /// 1 for a row whose tokens count in the losses, 0 for one left out
    /// (`--overlong-filter`); a left-out row is also off `mask`.
    pub keep: Vec<f32>,
    /// Every row of the file, before any filter: what the policy did.
    pub file: FileRows,
}

/// The per-row facts of the whole scored file that the metrics report
/// (reward, accuracy, length), kept before rows are filtered out.
#[derive(Debug, Clone, Default)]
pub struct FileRows {
    pub reward: Vec<f64>,
    pub correct: Vec<bool>,
    pub has_answer: Vec<bool>,
    pub response_len: Vec<usize>,
    pub truncated: Vec<bool>,
}

impl FileRows {
    fn of(rows: &[ScoredRow]) -> FileRows {
        FileRows {
            reward: rows.iter().map(|r| r.reward).collect(),
            correct: rows.iter().map(|r| r.correct).collect(),
            has_answer: rows.iter().map(|r| r.has_answer).collect(),
            response_len: rows
                .iter()
                .map(|r| r.rollout.response_token_ids.len())
                .collect(),
            truncated: rows
                .iter()
                .map(|r| artifacts::rollouts::FinishReason::is_truncation(&r.rollout.finish_reason))
                .collect(),
        }
    }
}

/// Which rows a step trains on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowFilter {
    /// drop groups whose rewards are all equal
    pub filter_groups: bool,
    /// at most this many informative groups, the first in the file
    pub train_groups: Option<usize>,
    /// rows cut at the length limit add nothing to the losses
    pub overlong_filter: bool,
}

/// What [`RowFilter`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FilterStats {
    /// groups (prompts) in the file
    pub groups: usize,
    /// groups whose rewards were all equal (left out with filter_groups)
    pub uniform_groups: usize,
    /// groups beyond `train_groups` (prompts sampled beyond the batch)
    pub extra_prompts: usize,
    /// rows left out of the losses by the overlong filter
    pub overlong_filtered: usize,
    /// every group was uniform, so none was left out
    pub nothing_informative: bool,
}

/// The rows of the file that a step trains on, and what was left out.
/// Groups are the rows of one prompt id, in order of first appearance.
pub fn filter_rows(rows: Vec<ScoredRow>, f: &RowFilter) -> (Vec<ScoredRow>, FilterStats) {
    let mut ids: std::collections::HashMap<&str, usize> = Default::default();
    let groups: Vec<usize> = rows
        .iter()
        .map(|r| {
            let n = ids.len();
            *ids.entry(r.rollout.prompt_id.as_str()).or_insert(n)
        })
        .collect();
    let n_groups = ids.len();
    drop(ids);
    let mut stats = FilterStats {
        groups: n_groups,
        ..FilterStats::default()
    };
    if !f.filter_groups {
        return (rows, stats);
    }
    let rewards: Vec<f32> = rows.iter().map(|r| r.reward as f32).collect();
    let informative = rl::informative_groups(&rewards, &groups);
    stats.uniform_groups = informative.iter().filter(|&&i| !i).count();
    if let Some(n) = f.train_groups {
        stats.extra_prompts = stats.groups.saturating_sub(n);
    }
    if stats.uniform_groups == stats.groups {
        stats.nothing_informative = true;
        return (rows, stats);
    }
    // The first train_groups informative groups, in file order.
    let mut kept_groups = vec![false; n_groups];
    let limit = f.train_groups.unwrap_or(usize::MAX);
    for (g, _) in informative
        .iter()
        .enumerate()
        .filter(|(_, &i)| i)
        .take(limit)
    {
        kept_groups[g] = true;
    }
    let rows = rows
        .into_iter()
        .zip(groups)
        .filter(|(_, g)| kept_groups[*g])
        .map(|(r, _)| r)
        .collect();
    (rows, stats)
}

impl Batch {
    /// The rows of a scored file: one sampling temperature, no empty
    /// prompt, at least one row.
    pub fn read(path: &Path, dev: &Device) -> Result<Batch> {
        Ok(Batch::read_with(path, dev, &RowFilter::default())?.0)
    }

    /// [`Batch::read`], then [`filter_rows`] and the overlong filter.
    pub fn read_with(path: &Path, dev: &Device, f: &RowFilter) -> Result<(Batch, FilterStats)> {
        let rows: Vec<ScoredRow> = artifacts::scored::read(path)?;
        let file = FileRows::of(&rows);
        let (rows, mut stats) = filter_rows(rows, f);
        let Some(first) = rows.first() else {
            return Err(TrainError::Invalid(format!(
                "{}: no rows to train on",
                path.display()
            )));
        };
        let temperature = first.rollout.temperature;
        if let Some((i, r)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.rollout.temperature != temperature)
        {
            return Err(TrainError::Invalid(format!(
                "{}: row {i}: column `temperature` is {} but row 0 has {temperature}; one step trains on one sampling temperature",
                path.display(),
                r.rollout.temperature
            )));
        }
        let samples: Vec<Sample> = rows
            .iter()
            .map(|r| Sample {
                ids: [
                    &r.rollout.prompt_token_ids[..],
                    &r.rollout.response_token_ids[..],
                ]
                .concat(),
                prompt_len: r.rollout.prompt_token_ids.len(),
                response_len: r.rollout.response_token_ids.len(),
            })
            .collect();
        if samples.iter().all(|s| s.response_len == 0) {
            return Err(TrainError::Invalid(format!(
                "{}: every response is empty (0 tokens in column `response_token_ids` of all {} rows): nothing to train on",
                path.display(),
                samples.len()
            )));
        }
        let width = samples
            .iter()
            .map(|s| s.response_len)
            .max()
            .unwrap_or(0)
            .max(1);
        let keep: Vec<f32> = rows
            .iter()
            .map(|r| {
                let cut = f.overlong_filter
                    && artifacts::rollouts::FinishReason::is_truncation(&r.rollout.finish_reason);
                if cut {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        stats.overlong_filtered = keep.iter().filter(|&&k| k == 0.0).count();
        let ones: Vec<Vec<f32>> = samples
            .iter()
            .zip(&keep)
            .map(|(s, &k)| vec![k; s.response_len])
            .collect();
        let mut ids: Vec<&str> = rows.iter().map(|r| r.rollout.prompt_id.as_str()).collect();
        ids.sort();
        ids.dedup();
        let groups = rows
            .iter()
            .map(|r| {
                ids.binary_search(&r.rollout.prompt_id.as_str())
                    .expect("id")
            })
            .collect();
        let batch = Batch {
            scores: rows.iter().map(|r| r.reward as f32).collect(),
            groups,
            mask: stack(&ones, width, dev)?,
            temperature: if temperature > 0.0 { temperature } else { 1.0 },
            width,
            samples,
            rows,
            keep,
            file,
        };
        Ok((batch, stats))
    }

    /// An error naming the first row that sampled with top-p below 1: its
    /// log-probs are of the filtered distribution, not the policy's, so
    /// they cannot serve as the old log-probs (`--old-logprobs rollout`).
    pub fn check_unfiltered(&self, path: &Path) -> Result<()> {
        match self.rows.iter().position(|r| r.rollout.top_p < 1.0) {
            None => Ok(()),
            Some(i) => Err(TrainError::Invalid(format!(
                "{}: row {i}, column `top_p`: {} (sampling filtered to the nucleus, whose log-probs are not the policy's); --old-logprobs rollout needs top-p 1: use --old-logprobs recompute",
                path.display(),
                self.rows[i].rollout.top_p
            ))),
        }
    }

    /// An error naming the row and column of a token id outside the
    /// model's vocabulary of `vocab`.
    pub fn check_vocab(&self, vocab: usize, path: &Path) -> Result<()> {
        for (i, s) in self.samples.iter().enumerate() {
            if let Some(j) = s.ids.iter().position(|&id| id as usize >= vocab) {
                let column = if j < s.prompt_len {
                    "prompt_token_ids"
                } else {
                    "response_token_ids"
                };
                return Err(TrainError::Invalid(format!(
                    "{}: row {i}, column `{column}`: token id {} is outside the model's vocabulary of {vocab}",
                    path.display(),
                    s.ids[j]
                )));
            }
        }
        Ok(())
    }

    /// An error naming the row whose prompt + response does not fit the
    /// model's context `ctx` (or whose prompt is empty).
    pub fn check_context(&self, ctx: usize, path: &Path) -> Result<()> {
        match self
            .samples
            .iter()
            .position(|s| s.ids.len() > ctx || s.prompt_len == 0)
        {
            Some(i) => Err(TrainError::Invalid(format!(
                "{}: row {i}: {} prompt + response tokens do not fit the model's context of {ctx} (or the prompt is empty)",
                path.display(),
                self.samples[i].ids.len()
            ))),
            None => Ok(()),
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn response_lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.samples.iter().map(|s| s.response_len)
    }

    /// Response tokens of the rows `rows` that count in the losses.
    pub fn response_tokens(&self, rows: &[usize]) -> usize {
        rows.iter()
            .filter(|&&r| self.keep[r] > 0.0)
            .map(|&r| self.samples[r].response_len)
            .sum()
    }

    /// How many of the rows `rows` count in the losses.
    pub fn kept_rows(&self, rows: &[usize]) -> usize {
        rows.iter().filter(|&&r| self.keep[r] > 0.0).count()
    }

    /// Prompt + response tokens of the rows `rows`.
    /// The longest prompt + response of the batch.
    pub fn longest(&self) -> usize {
        self.samples.iter().map(|s| s.ids.len()).max().unwrap_or(0)
    }

    pub fn sequence_tokens(&self, rows: &[usize]) -> usize {
        rows.iter().map(|&r| self.samples[r].ids.len()).sum()
    }

    /// The rollout's log-probs of each row.
    pub fn rollout_logprobs(&self) -> Vec<Vec<f32>> {
        self.rows
            .iter()
            .map(|r| r.rollout.response_logprobs.clone())
            .collect()
    }

    /// The micro-batch of rows `rows`.
    pub fn micro(&self, rows: &[usize], dev: &Device) -> Result<Micro> {
        let pairs: Vec<(&[u32], &[u32])> = rows
            .iter()
            .map(|&r| {
                let s = &self.samples[r];
                (&s.ids[..s.prompt_len], &s.ids[s.prompt_len..])
            })
            .collect();
        let rb = ResponseBatch::new(&pairs, 0, dev)?;
        let keep: Vec<f32> = rows.iter().map(|&r| self.keep[r]).collect();
        let keep = Tensor::from_vec(keep, (rows.len(), 1), dev)?;
        Ok(Micro {
            loss_mask: rb.mask.broadcast_mul(&keep)?,
            rb,
            rows: rows.to_vec(),
        })
    }

    /// A response-aligned `[b, Rm]` tensor of micro-batch `m` as each
    /// row's `response_len` values.
    pub fn per_row(&self, x: &Tensor, m: &Micro) -> Result<Vec<Vec<f32>>> {
        let v = x.to_vec2::<f32>()?;
        Ok(v.into_iter()
            .zip(&m.rows)
            .map(|(mut r, &i)| {
                r.truncate(self.samples[i].response_len);
                r
            })
            .collect())
    }
}

/// A micro-batch: its rows and their prompt + response batch.
pub struct Micro {
    rb: ResponseBatch,
    pub rows: Vec<usize>,
    /// the response mask of the rows that count in the losses `[b, Rm]`
    pub loss_mask: Tensor,
}

impl std::ops::Deref for Micro {
    type Target = ResponseBatch;
    fn deref(&self) -> &ResponseBatch {
        &self.rb
    }
}

impl Micro {
    /// The response tokens' entries of a `[b, T-1]` forward output: `[b, Rm]`.
    pub fn responses(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.contiguous()?.gather(&self.index, 1)?)
    }

    /// This micro-batch's rows of a response-aligned `[N, W]` tensor, cut
    /// to its width: `[b, Rm]`.
    pub fn rows_of(&self, x: &Tensor) -> Result<Tensor> {
        let idx: Vec<u32> = self.rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, self.rows.len(), x.device())?;
        Ok(x.index_select(&idx, 0)?
            .narrow(1, 0, self.width)?
            .contiguous()?)
    }
}

/// Stack per-row vectors into `[N, width]` (zero padded).
pub fn stack(rows: &[Vec<f32>], width: usize, dev: &Device) -> Result<Tensor> {
    let mut flat = Vec::with_capacity(rows.len() * width);
    for r in rows {
        flat.extend_from_slice(r);
        flat.extend(std::iter::repeat_n(0.0, width - r.len()));
    }
    Ok(Tensor::from_vec(flat, (rows.len(), width), dev)?)
}

pub fn scalar(x: &Tensor) -> Result<f64> {
    Ok(x.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}
