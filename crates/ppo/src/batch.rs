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
}

impl Batch {
    /// The rows of a scored file: one sampling temperature, no empty
    /// prompt, at least one row.
    pub fn read(path: &Path, dev: &Device) -> Result<Batch> {
        let rows: Vec<ScoredRow> = artifacts::scored::read(path)?;
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
        let width = samples
            .iter()
            .map(|s| s.response_len)
            .max()
            .unwrap_or(0)
            .max(1);
        let ones: Vec<Vec<f32>> = samples.iter().map(|s| vec![1.0; s.response_len]).collect();
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
        Ok(Batch {
            scores: rows.iter().map(|r| r.reward as f32).collect(),
            groups,
            mask: stack(&ones, width, dev)?,
            temperature: if temperature > 0.0 { temperature } else { 1.0 },
            width,
            samples,
            rows,
        })
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

    /// Response tokens of the rows `rows`.
    pub fn response_tokens(&self, rows: &[usize]) -> usize {
        rows.iter().map(|&r| self.samples[r].response_len).sum()
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
        Ok(Micro {
            rb: ResponseBatch::new(&pairs, 0, dev)?,
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
