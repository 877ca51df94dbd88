//! Batched generation with a KV cache: prompts of different lengths (left
//! padding), per-row stop, temperature / top-p / top-k / greedy sampling
//! from a seed, and each sampled token's log-prob under the distribution
//! it was sampled from.

use candle_core::{DType, IndexOp, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use std::collections::HashMap;

use rayon::prelude::*;

use crate::cpu::{CpuCache, CpuDecoder};
use crate::model::{Batch, KvCache, Model};
use crate::Result;

/// How to sample.
#[derive(Debug, Clone)]
pub struct SamplingParams {
    pub max_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: Option<usize>,
    /// Tokens that end a response (included in it).
    pub stop_token_ids: Vec<u32>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 128,
            temperature: 1.0,
            top_p: 1.0,
            top_k: None,
            stop_token_ids: vec![],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token or the caller's stop check.
    Stop,
    /// max_new_tokens reached.
    Length,
}

/// One row's output.
#[derive(Debug, Clone)]
pub struct Generation {
    pub tokens: Vec<u32>,
    /// log-prob of each token under the sampling distribution (greedy: the
    /// model's distribution at temperature 1).
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
}

/// What generation runs on: the packed [`CpuDecoder`] for an f32 model on
/// the CPU (built once, so keep the engine across calls), candle's forward
/// otherwise (CUDA, bf16).
pub enum Engine<'a> {
    Cpu(Box<CpuDecoder>),
    Candle(&'a Model),
}

impl<'a> Engine<'a> {
    /// The fastest engine for `model`; it copies the weights, so build a
    /// new one after the model is updated.
    pub fn new(model: &'a Model) -> Result<Engine<'a>> {
        if model.device().is_cpu() && model.dtype() == DType::F32 {
            Ok(Engine::Cpu(Box::new(CpuDecoder::new(model)?)))
        } else {
            Ok(Engine::Candle(model))
        }
    }

    /// Generate for every prompt; `seeds[i]` seeds row i's sampler, so a
    /// row's output does not depend on which other rows share its batch.
    /// `stop(i, tokens)` may end row i early (stop strings); `on_step` is
    /// told how many rows are still running after each token.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        seeds: &[u64],
        params: &SamplingParams,
        stop: &dyn Fn(usize, &[u32]) -> bool,
        mut on_step: impl FnMut(usize),
    ) -> Result<Vec<Generation>> {
        let b = prompts.len();
        let mut rngs: Vec<ChaCha8Rng> = seeds
            .iter()
            .map(|&s| ChaCha8Rng::seed_from_u64(s))
            .collect();
        let mut out: Vec<Generation> = (0..b)
            .map(|_| Generation {
                tokens: vec![],
                logprobs: vec![],
                finish_reason: FinishReason::Length,
            })
            .collect();
        if b == 0 || params.max_new_tokens == 0 {
            return Ok(out);
        }
        let mut state = State::prefill(self, prompts, params.max_new_tokens)?;
        let mut done = vec![false; b];
        for _step in 0..params.max_new_tokens {
            let picks = state.pick(&mut rngs, params, &done)?;
            let mut next = vec![0u32; b];
            for (i, pick) in picks.into_iter().enumerate() {
                let Some((tok, lp)) = pick else { continue };
                if !lp.is_finite() {
                    return Err(crate::ModelError::Invalid(format!(
                        "the model's logits are not finite (sequence {i}, token {}): its weights hold NaN or infinite values; not sampling from it",
                        out[i].tokens.len()
                    )));
                }
                next[i] = tok;
                out[i].tokens.push(tok);
                out[i].logprobs.push(lp);
                if params.stop_token_ids.contains(&tok) || stop(i, &out[i].tokens) {
                    done[i] = true;
                    out[i].finish_reason = FinishReason::Stop;
                }
            }
            on_step(b - done.iter().filter(|d| **d).count());
            if done.iter().all(|d| *d)
                || out.iter().all(|o| o.tokens.len() >= params.max_new_tokens)
            {
                break;
            }
            state.step(next, &done)?;
        }
        Ok(out)
    }
}

/// A batch being generated: its cache, positions and the logits of the
/// last token of each row ([B, V] row-major). On the CPU, finished rows
/// are dropped from the cache: `rows[j]` is the batch row in cache row j.
enum State<'e> {
    Cpu {
        dec: &'e CpuDecoder,
        cache: CpuCache,
        rows: Vec<usize>,
        next_pos: Vec<u32>,
        logits: Vec<f32>,
    },
    Candle {
        model: &'e Model,
        cache: KvCache,
        key_mask: Vec<Vec<u8>>,
        next_pos: Vec<u32>,
        /// [B, V] f32, on the model's device.
        logits: Tensor,
    },
}

impl<'e> State<'e> {
    /// Run the left-padded prompts through the model.
    fn prefill(engine: &'e Engine, prompts: &[Vec<u32>], max_new: usize) -> Result<State<'e>> {
        let b = prompts.len();
        let t = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let next_pos: Vec<u32> = prompts.iter().map(|p| p.len() as u32).collect();
        match engine {
            Engine::Cpu(dec) => {
                // Samples of one prompt share its prefill: run each distinct
                // prompt once, then copy its cache rows and logits.
                let mut distinct: Vec<&Vec<u32>> = Vec::new();
                let mut row_of: Vec<usize> = Vec::with_capacity(b);
                let mut seen: HashMap<&Vec<u32>, usize> = HashMap::new();
                for p in prompts {
                    let i = *seen.entry(p).or_insert_with(|| {
                        distinct.push(p);
                        distinct.len() - 1
                    });
                    row_of.push(i);
                }
                let u = distinct.len();
                let (mut ids, mut pos, mut valid) =
                    (vec![0u32; u * t], vec![0u32; u * t], vec![false; u * t]);
                for (r, p) in distinct.iter().enumerate() {
                    let pad = t - p.len();
                    for (j, &id) in p.iter().enumerate() {
                        ids[r * t + pad + j] = id;
                        pos[r * t + pad + j] = j as u32;
                        valid[r * t + pad + j] = true;
                    }
                }
                let cap = t + max_new;
                let mut shared = dec.new_cache(u, if u == b { cap } else { t });
                let unique_logits = dec.forward(&ids, &pos, &valid, t, &mut shared)?;
                let vocab = unique_logits.len() / u;
                let (cache, logits) = if u == b {
                    (shared, unique_logits)
                } else {
                    let logits = row_of
                        .iter()
                        .flat_map(|&i| unique_logits[i * vocab..(i + 1) * vocab].iter().copied())
                        .collect();
                    (dec.gather(&shared, &row_of, cap), logits)
                };
                Ok(State::Cpu {
                    dec,
                    cache,
                    rows: (0..b).collect(),
                    next_pos,
                    logits,
                })
            }
            Engine::Candle(model) => {
                let dev = model.device().clone();
                let batch = Batch::left_padded(prompts, 0, &dev)?;
                let key_mask: Vec<Vec<u8>> = batch.mask.to_vec2::<u8>()?;
                let mask = model.attention_mask(&key_mask, t)?;
                let mut cache = KvCache::new(model, b, t + max_new)?;
                let hidden =
                    model.forward_hidden(&batch.ids, &batch.positions, &mask, Some(&mut cache))?;
                let logits = candle_logits(model, &hidden.i((.., t - 1..t, ..))?)?;
                Ok(State::Candle {
                    model,
                    cache,
                    key_mask,
                    next_pos,
                    logits,
                })
            }
        }
    }

    /// Each running row's next token and its log-prob (`None` for the
    /// rows that are done), one draw of the row's generator each.
    fn pick(
        &self,
        rngs: &mut [ChaCha8Rng],
        params: &SamplingParams,
        done: &[bool],
    ) -> Result<Vec<Option<(u32, f32)>>> {
        match self {
            State::Cpu { logits, rows, .. } => {
                let vocab = logits.len() / rows.len().max(1);
                Ok(rngs
                    .par_iter_mut()
                    .enumerate()
                    .map(|(i, rng)| {
                        let slot = rows.binary_search(&i).ok().filter(|_| !done[i])?;
                        Some(sample(
                            &logits[slot * vocab..(slot + 1) * vocab],
                            params,
                            rng,
                        ))
                    })
                    .collect())
            }
            State::Candle { logits, .. } => sample_on_device(logits, params, rngs, done),
        }
    }

    /// Append `next[i]` to every row that is not `done`.
    fn step(&mut self, next: Vec<u32>, done: &[bool]) -> Result<()> {
        match self {
            State::Cpu {
                dec,
                cache,
                rows,
                next_pos,
                logits,
            } => {
                // Drop finished rows once they are a quarter of the batch.
                let finished = rows.iter().filter(|&&r| done[r]).count();
                if finished > 0 && finished * 4 >= rows.len() {
                    let keep: Vec<usize> = (0..rows.len()).filter(|&j| !done[rows[j]]).collect();
                    cache.retain_rows(&keep);
                    *rows = keep.iter().map(|&j| rows[j]).collect();
                    *next_pos = keep.iter().map(|&j| next_pos[j]).collect();
                }
                let ids: Vec<u32> = rows.iter().map(|&r| next[r]).collect();
                let valid = vec![true; ids.len()];
                *logits = dec.forward(&ids, next_pos, &valid, 1, cache)?;
                next_pos.iter_mut().for_each(|p| *p += 1);
            }
            State::Candle {
                model,
                cache,
                key_mask,
                next_pos,
                logits,
            } => {
                let (b, dev) = (next.len(), model.device().clone());
                for km in key_mask.iter_mut() {
                    km.push(1);
                }
                let ids = Tensor::from_vec(next, (b, 1), &dev)?;
                let pos = Tensor::from_vec(next_pos.clone(), (b, 1), &dev)?;
                next_pos.iter_mut().for_each(|p| *p += 1);
                let mask = model.attention_mask(key_mask, 1)?;
                let hidden = model.forward_hidden(&ids, &pos, &mask, Some(cache))?;
                *logits = candle_logits(model, &hidden)?;
            }
        }
        Ok(())
    }
}

/// Logits of hidden states [B, 1, H] as [B, V] f32, on the model's device.
fn candle_logits(model: &Model, hidden: &Tensor) -> Result<Tensor> {
    let logits = model.logits(hidden)?.to_dtype(DType::F32)?;
    let (b, _, v) = logits.dims3()?;
    Ok(logits.reshape((b, v))?)
}

/// Tokens per chunk of the two-stage draw of [`sample_on_device`].
pub const SAMPLE_CHUNK: usize = 512;

/// [`sample`] for the rows of `logits` [B, V] (f32) where they are (a
/// GPU), from the same draws of the same generators, copying to the host
/// only what a draw needs instead of B x V floats per token:
/// - greedy: each row's argmax and its log-prob (B tokens, B floats);
/// - temperature without top-p or top-k (the recipe's sampling): exact
///   inverse-CDF sampling in two stages: the unnormalised probabilities'
///   sums over chunks of [`SAMPLE_CHUNK`] tokens ([B, V / 512]) let the
///   row's uniform draw pick a chunk, then that chunk's probabilities
///   ([B, 512]) pick the token: 1.3% of the logits of a 49k vocabulary,
///   0.7% of a 152k one;
/// - top-p or top-k: the whole logits (their partial sort runs on the
///   host, as [`sample`]).
///
/// Tokens equal [`sample`]'s but where a draw falls within rounding of a
/// boundary between two tokens (the chunk sums are f32, summed on the
/// device).
pub fn sample_on_device(
    logits: &Tensor,
    params: &SamplingParams,
    rngs: &mut [ChaCha8Rng],
    done: &[bool],
) -> Result<Vec<Option<(u32, f32)>>> {
    let (b, v) = logits.dims2()?;
    let dev = logits.device().clone();
    if params.top_p < 1.0 || params.top_k.is_some() {
        let host: Vec<Vec<f32>> = logits.to_vec2()?;
        return Ok(rngs
            .iter_mut()
            .zip(&host)
            .zip(done)
            .map(|((rng, row), &d)| (!d).then(|| sample(row, params, rng)))
            .collect());
    }
    let max = logits.max_keepdim(D::Minus1)?;
    if params.temperature <= 0.0 {
        let tok = logits.argmax_keepdim(D::Minus1)?;
        let z = logits.broadcast_sub(&max)?;
        let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let lp = (z.gather(&tok, D::Minus1)? - lse)?;
        let tok: Vec<u32> = tok.flatten_all()?.to_vec1()?;
        let lp: Vec<f32> = lp.flatten_all()?.to_vec1()?;
        return Ok((0..b)
            .map(|i| (!done[i]).then(|| (tok[i], lp[i])))
            .collect());
    }
    // Unnormalised probabilities at the temperature, padded to whole chunks.
    let inv_t = 1.0 / params.temperature;
    let p = (logits.broadcast_sub(&max)? * inv_t)?.exp()?;
    let chunks = v.div_ceil(SAMPLE_CHUNK);
    let pad = chunks * SAMPLE_CHUNK - v;
    let p = if pad > 0 {
        Tensor::cat(&[&p, &Tensor::zeros((b, pad), DType::F32, &dev)?], 1)?
    } else {
        p
    };
    let p = p.reshape((b, chunks, SAMPLE_CHUNK))?;
    let sums: Vec<Vec<f32>> = p.sum(2)?.to_vec2()?;
    // Stage 1: the chunk each running row's draw falls in.
    let mut draw = vec![(0usize, 0f64, 0f64); b];
    for i in (0..b).filter(|&i| !done[i]) {
        let total: f64 = sums[i].iter().map(|&x| x as f64).sum();
        let mut u = rngs[i].random::<f64>() * total;
        let mut chunk = sums[i].iter().rposition(|&x| x > 0.0).unwrap_or(0);
        for (c, &x) in sums[i].iter().enumerate() {
            if u <= x as f64 && x > 0.0 {
                chunk = c;
                break;
            }
            u -= x as f64;
        }
        draw[i] = (chunk, u, total);
    }
    // Stage 2: the token within the chunk.
    let idx: Vec<u32> = draw.iter().map(|d| d.0 as u32).collect();
    let idx = Tensor::from_vec(idx, (b, 1, 1), &dev)?
        .broadcast_as((b, 1, SAMPLE_CHUNK))?
        .contiguous()?;
    let within: Vec<Vec<f32>> = p.gather(&idx, 1)?.squeeze(1)?.to_vec2()?;
    Ok((0..b)
        .map(|i| {
            if done[i] {
                return None;
            }
            let (chunk, mut u, total) = draw[i];
            let row = &within[i];
            let mut k = row.iter().rposition(|&x| x > 0.0).unwrap_or(0);
            for (j, &x) in row.iter().enumerate() {
                u -= x as f64;
                if u <= 0.0 && x > 0.0 {
                    k = j;
                    break;
                }
            }
            let tok = (chunk * SAMPLE_CHUNK + k).min(v - 1);
            Some((tok as u32, ((row[k] as f64) / total).ln() as f32))
        })
        .collect())
}

/// [`Engine::generate`] on a new engine for `model` (which copies the
/// weights on the CPU: callers that generate repeatedly keep an engine).
pub fn generate(
    model: &Model,
    prompts: &[Vec<u32>],
    seeds: &[u64],
    params: &SamplingParams,
    stop: &dyn Fn(usize, &[u32]) -> bool,
    on_step: impl FnMut(usize),
) -> Result<Vec<Generation>> {
    Engine::new(model)?.generate(prompts, seeds, params, stop, on_step)
}

/// Sample one token from `logits`; returns it and its log-prob under the
/// sampling distribution.
pub fn sample(logits: &[f32], params: &SamplingParams, rng: &mut ChaCha8Rng) -> (u32, f32) {
    if params.temperature <= 0.0 {
        let (tok, _) =
            logits
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |best, (i, &x)| {
                    if x > best.1 {
                        (i, x)
                    } else {
                        best
                    }
                });
        return (tok as u32, log_softmax_at(logits, tok, 1.0));
    }
    let inv_t = 1.0 / params.temperature as f32;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // Unnormalised probabilities at the temperature.
    let mut p: Vec<f32> = logits.iter().map(|&x| ((x - max) * inv_t).exp()).collect();
    let filtering = params.top_p < 1.0 || params.top_k.is_some();
    if filtering {
        let mut order: Vec<usize> = (0..p.len()).collect();
        let k = params.top_k.unwrap_or(p.len()).clamp(1, p.len());
        // The k largest, in order (partial sort).
        order.select_nth_unstable_by(k - 1, |&a, &b| p[b].total_cmp(&p[a]));
        order.truncate(k);
        order.sort_unstable_by(|&a, &b| p[b].total_cmp(&p[a]));
        let total: f32 = p.iter().sum();
        let mut keep = Vec::with_capacity(order.len());
        let mut cum = 0.0f32;
        for &i in &order {
            keep.push(i);
            cum += p[i] / total;
            if cum >= params.top_p as f32 {
                break;
            }
        }
        let mut filtered = vec![0f32; p.len()];
        for &i in &keep {
            filtered[i] = p[i];
        }
        p = filtered;
    }
    let total: f64 = p.iter().map(|&x| x as f64).sum();
    let mut u = rng.random::<f64>() * total;
    let mut tok = p.len() - 1;
    for (i, &x) in p.iter().enumerate() {
        u -= x as f64;
        if u <= 0.0 && x > 0.0 {
            tok = i;
            break;
        }
    }
    let lp = if filtering {
        ((p[tok] as f64) / total).ln() as f32
    } else {
        log_softmax_at(logits, tok, params.temperature as f32)
    };
    (tok as u32, lp)
}

/// log softmax(logits / t)[i], computed stably.
fn log_softmax_at(logits: &[f32], i: usize, t: f32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse: f64 = logits
        .iter()
        .map(|&x| (((x - max) / t) as f64).exp())
        .sum::<f64>()
        .ln();
    (((logits[i] - max) / t) as f64 - lse) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_is_argmax_and_top_k_one_is_greedy() {
        let logits = [0.1, 2.0, -1.0, 1.9];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let greedy = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(sample(&logits, &greedy, &mut rng).0, 1);
        let k1 = SamplingParams {
            top_k: Some(1),
            ..Default::default()
        };
        for _ in 0..20 {
            let (tok, lp) = sample(&logits, &k1, &mut rng);
            assert_eq!((tok, lp), (1, 0.0));
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus_and_renormalises() {
        // probs ~ [0.64, 0.24, 0.09, 0.03]
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        let params = SamplingParams {
            top_p: 0.8,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = [0usize; 4];
        for _ in 0..2000 {
            let (tok, lp) = sample(&logits, &params, &mut rng);
            seen[tok as usize] += 1;
            let z: f32 = [3.0f32, 2.0].iter().map(|x| x.exp()).sum();
            assert!((lp - (logits[tok as usize].exp() / z).ln()).abs() < 1e-5);
        }
        assert_eq!(seen[2] + seen[3], 0);
        assert!(seen[1] > 300 && seen[0] > 1200, "{seen:?}");
    }

    #[test]
    fn same_seed_same_samples() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let p = SamplingParams::default();
        let draw = |seed| {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            (0..30)
                .map(|_| sample(&logits, &p, &mut r).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
