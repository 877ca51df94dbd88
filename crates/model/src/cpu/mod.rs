//! The decoder on the CPU, outside candle. This file: the inference forward,
//! the same decoder as [`crate::model::Model`] (the same weights, copied
//! once into packed f32 buffers), with fused attention over a preallocated
//! KV cache and every matrix product in [`gemm`]; generation on the CPU
//! runs here. It computes only what sampling needs: logits of each row's
//! last new token. [`train`] is the training forward and backward (on
//! [`sgemm`], the weights' own storage), [`vmath`] the vectorized exp both
//! softmaxes use.
//!
//! Numerically it is the candle forward up to the order of f32 sums, which
//! the tests bound (logits within 1e-4; sampled log-probs equal the training
//! forward's within 1e-4).

pub mod gemm;
pub mod sgemm;
pub mod train;
pub mod vmath;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use crate::model::{Linear, Model};
use crate::{Config, Result};
use gemm::Packed;

struct Layer {
    input_norm: Vec<f32>,
    post_norm: Vec<f32>,
    /// q, k and v projections stacked: [(nh + 2 nkv) hd, h].
    qkv: Packed,
    o: Packed,
    /// gate and up projections stacked: [2 i, h].
    gate_up: Packed,
    down: Packed,
}

/// The decoder's weights, packed for [`gemm`].
pub struct CpuDecoder {
    cfg: Config,
    embed: Vec<f32>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    lm_head: Packed,
    /// cos/sin of position x frequency: [max_position_embeddings, hd / 2].
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Keys and values of every layer, [B, nkv, capacity, hd] each, with which
/// cache positions hold a real token (false for left padding).
pub struct CpuCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    valid: Vec<Vec<bool>>,
    batch: usize,
    capacity: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Positions filled so far (the same for every row).
    pub len: usize,
}

impl CpuCache {
    /// Keep only rows `keep` (increasing), renumbered 0.., in place: the
    /// rows of finished samples stop costing compute.
    pub fn retain_rows(&mut self, keep: &[usize]) {
        assert!(
            keep.windows(2).all(|w| w[0] < w[1]),
            "rows to keep must increase"
        );
        assert!(
            keep.last().is_none_or(|&r| r < self.batch),
            "row out of range"
        );
        let head = self.capacity * self.head_dim;
        let row = self.kv_heads * head;
        let used = self.len * self.head_dim;
        for buf in self.k.iter_mut().chain(self.v.iter_mut()) {
            for (to, &from) in keep.iter().enumerate().filter(|(to, from)| to != *from) {
                for g in 0..self.kv_heads {
                    let src = from * row + g * head;
                    buf.copy_within(src..src + used, to * row + g * head);
                }
            }
        }
        self.valid = keep
            .iter()
            .map(|&r| std::mem::take(&mut self.valid[r]))
            .collect();
        self.batch = keep.len();
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn bias(l: &Linear) -> Result<Option<Vec<f32>>> {
    l.bias().map(to_vec).transpose()
}

impl CpuDecoder {
    /// Copy and pack `model`'s weights (later changes to the model are not
    /// seen: build a new decoder after an update).
    pub fn new(model: &Model) -> Result<CpuDecoder> {
        let cfg = model.config().clone();
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (nh, nkv, inter) = (
            cfg.num_attention_heads,
            cfg.num_kv_heads(),
            cfg.intermediate_size,
        );
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in &model.layers {
            let a = &l.self_attn;
            let mut qkv = to_vec(a.q_proj.weight())?;
            qkv.extend(to_vec(a.k_proj.weight())?);
            qkv.extend(to_vec(a.v_proj.weight())?);
            let qkv_bias = match (bias(&a.q_proj)?, bias(&a.k_proj)?, bias(&a.v_proj)?) {
                (Some(mut q), Some(k), Some(v)) => {
                    q.extend(k);
                    q.extend(v);
                    Some(q)
                }
                _ => None,
            };
            let mut gate_up = to_vec(l.mlp.gate_proj.weight())?;
            gate_up.extend(to_vec(l.mlp.up_proj.weight())?);
            layers.push(Layer {
                input_norm: to_vec(&l.input_layernorm.weight)?,
                post_norm: to_vec(&l.post_attention_layernorm.weight)?,
                qkv: Packed::new(&qkv, (nh + 2 * nkv) * hd, h, qkv_bias),
                o: Packed::new(&to_vec(a.o_proj.weight())?, h, nh * hd, bias(&a.o_proj)?),
                gate_up: Packed::new(&gate_up, 2 * inter, h, None),
                down: Packed::new(&to_vec(l.mlp.down_proj.weight())?, h, inter, None),
            });
        }
        let embed = to_vec(model.embed_tokens.embeddings())?;
        let lm_head = match &model.lm_head {
            Some(l) => Packed::new(&to_vec(l.weight())?, cfg.vocab_size, h, bias(l)?),
            None => Packed::new(&embed, cfg.vocab_size, h, None),
        };
        Ok(CpuDecoder {
            embed,
            layers,
            norm: to_vec(&model.norm.weight)?,
            lm_head,
            cos: to_vec(&model.rope.cos)?,
            sin: to_vec(&model.rope.sin)?,
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn new_cache(&self, batch: usize, capacity: usize) -> CpuCache {
        let size = batch * self.cfg.num_kv_heads() * capacity * self.cfg.head_dim();
        let n = self.cfg.num_hidden_layers;
        CpuCache {
            k: (0..n).map(|_| vec![0f32; size]).collect(),
            v: (0..n).map(|_| vec![0f32; size]).collect(),
            valid: vec![vec![false; capacity]; batch],
            batch,
            capacity,
            kv_heads: self.cfg.num_kv_heads(),
            head_dim: self.cfg.head_dim(),
            len: 0,
        }
    }

    /// A cache of `rows.len()` rows, row i a copy of `self`'s row `rows[i]`
    /// (so prompts shared by several samples are run through the model
    /// once), with room for `capacity` positions.
    pub fn gather(&self, src: &CpuCache, rows: &[usize], capacity: usize) -> CpuCache {
        assert!(capacity >= src.len, "capacity below the cached length");
        let mut dst = self.new_cache(rows.len(), capacity);
        let (nkv, hd) = (self.cfg.num_kv_heads(), self.cfg.head_dim());
        let copy = |from: &[f32], to: &mut [f32]| {
            for (r, &s) in rows.iter().enumerate() {
                for g in 0..nkv {
                    let a = (s * nkv + g) * src.capacity * hd;
                    let b = (r * nkv + g) * capacity * hd;
                    to[b..b + src.len * hd].copy_from_slice(&from[a..a + src.len * hd]);
                }
            }
        };
        for l in 0..src.k.len() {
            copy(&src.k[l], &mut dst.k[l]);
            copy(&src.v[l], &mut dst.v[l]);
        }
        for (r, &s) in rows.iter().enumerate() {
            dst.valid[r][..src.len].copy_from_slice(&src.valid[s][..src.len]);
        }
        dst.len = src.len;
        dst
    }

    /// Append `t` new tokens to every row of `cache` and return the logits
    /// of each row's last one: [B, V], row-major.
    ///
    /// `ids`, `positions`, `valid`: [B, t] row-major; `valid` is false for
    /// padding (never attended to). Every token sees itself and the valid
    /// tokens before it.
    pub fn forward(
        &self,
        ids: &[u32],
        positions: &[u32],
        valid: &[bool],
        t: usize,
        cache: &mut CpuCache,
    ) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let b = cache.batch;
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_kv_heads());
        let m = b * t;
        if ids.len() != m || positions.len() != m || valid.len() != m {
            return Err(crate::ModelError::Invalid(format!(
                "cpu forward: expected {m} = {b} x {t} ids, positions and flags"
            )));
        }
        if cache.len + t > cache.capacity {
            return Err(crate::ModelError::Invalid(format!(
                "KV cache full: {} + {t} > {}",
                cache.len, cache.capacity
            )));
        }
        if let Some(&p) = positions.iter().max() {
            if p as usize >= cfg.max_position_embeddings {
                return Err(crate::ModelError::Invalid(format!(
                    "position {p} is beyond max_position_embeddings {}",
                    cfg.max_position_embeddings
                )));
            }
        }
        for (i, &id) in ids.iter().enumerate() {
            if id as usize >= cfg.vocab_size {
                return Err(crate::ModelError::Invalid(format!(
                    "token id {id} is outside the vocabulary ({})",
                    cfg.vocab_size
                )));
            }
            cache.valid[i / t][cache.len + i % t] = valid[i];
        }
        let mut x = vec![0f32; m * h];
        for (row, &id) in x.chunks_exact_mut(h).zip(ids) {
            row.copy_from_slice(&self.embed[id as usize * h..(id as usize + 1) * h]);
        }
        let qkv_w = (nh + 2 * nkv) * hd;
        let inter = cfg.intermediate_size;
        let mut normed = vec![0f32; m * h];
        let mut qkv = vec![0f32; m * qkv_w];
        let mut att = vec![0f32; m * nh * hd];
        let mut proj = vec![0f32; m * h];
        let mut gu = vec![0f32; m * 2 * inter];
        let mut act = vec![0f32; m * inter];
        for (li, layer) in self.layers.iter().enumerate() {
            rms_norm(&x, &layer.input_norm, cfg.rms_norm_eps, &mut normed);
            layer.qkv.matmul(&normed, &mut qkv);
            self.rope_and_store(&mut qkv, positions, t, li, cache);
            self.attend(&qkv, t, li, cache, &mut att);
            layer.o.matmul(&att, &mut proj);
            add(&mut x, &proj);
            rms_norm(&x, &layer.post_norm, cfg.rms_norm_eps, &mut normed);
            layer.gate_up.matmul(&normed, &mut gu);
            act.par_chunks_mut(inter)
                .zip(gu.par_chunks(2 * inter))
                .for_each(|(a, gu)| {
                    let (g, u) = gu.split_at(inter);
                    for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                        *a = g / (1.0 + (-g).exp()) * u;
                    }
                });
            layer.down.matmul(&act, &mut proj);
            add(&mut x, &proj);
        }
        cache.len += t;
        let mut last = Vec::with_capacity(b * h);
        for r in 0..b {
            last.extend_from_slice(&x[((r + 1) * t - 1) * h..(r + 1) * t * h]);
        }
        let mut normed = vec![0f32; b * h];
        rms_norm(&last, &self.norm, cfg.rms_norm_eps, &mut normed);
        let mut logits = vec![0f32; b * cfg.vocab_size];
        self.lm_head.matmul(&normed, &mut logits);
        Ok(logits)
    }

    /// Rotate q and k of each new token (HF's rotate-half layout) in place
    /// and write k and v into the cache at `cache.len + t_i`.
    fn rope_and_store(
        &self,
        qkv: &mut [f32],
        positions: &[u32],
        t: usize,
        li: usize,
        cache: &mut CpuCache,
    ) {
        let cfg = &self.cfg;
        let (hd, nh, nkv) = (cfg.head_dim(), cfg.num_attention_heads, cfg.num_kv_heads());
        let half = hd / 2;
        let row_w = (nh + 2 * nkv) * hd;
        let (cap, len) = (cache.capacity, cache.len);
        let (kc, vc) = (&mut cache.k[li], &mut cache.v[li]);
        for (i, row) in qkv.chunks_exact_mut(row_w).enumerate() {
            let p = positions[i] as usize;
            let cos = &self.cos[p * half..(p + 1) * half];
            let sin = &self.sin[p * half..(p + 1) * half];
            for head in row[..(nh + nkv) * hd].chunks_exact_mut(hd) {
                let (x1, x2) = head.split_at_mut(half);
                for j in 0..half {
                    let (a, b) = (x1[j], x2[j]);
                    x1[j] = a * cos[j] - b * sin[j];
                    x2[j] = b * cos[j] + a * sin[j];
                }
            }
            let (r, s) = (i / t, len + i % t);
            for g in 0..nkv {
                let at = ((r * nkv + g) * cap + s) * hd;
                let k = &row[(nh + g) * hd..(nh + g + 1) * hd];
                let v = &row[(nh + nkv + g) * hd..(nh + nkv + g + 1) * hd];
                kc[at..at + hd].copy_from_slice(k);
                vc[at..at + hd].copy_from_slice(v);
            }
        }
    }

    /// Causal attention of the `t` new tokens of each row over its cache:
    /// out [B t, nh hd].
    fn attend(&self, qkv: &[f32], t: usize, li: usize, cache: &CpuCache, out: &mut [f32]) {
        let cfg = &self.cfg;
        let (hd, nh, nkv) = (cfg.head_dim(), cfg.num_attention_heads, cfg.num_kv_heads());
        let row_w = (nh + 2 * nkv) * hd;
        let rep = nh / nkv;
        let (cap, len) = (cache.capacity, cache.len);
        let scale = 1.0 / (hd as f32).sqrt();
        let (kc, vc) = (&cache.k[li], &cache.v[li]);
        // One task per row: its [t, nh, hd] block of the output.
        out.par_chunks_mut(t * nh * hd)
            .enumerate()
            .for_each(|(r, rows)| {
                let valid = &cache.valid[r];
                let mut scores = vec![0f32; len + t];
                for ti in 0..t {
                    let q_pos = len + ti;
                    let q_row = &qkv[(r * t + ti) * row_w..(r * t + ti + 1) * row_w];
                    for head in 0..nh {
                        let g = head / rep;
                        let q = &q_row[head * hd..(head + 1) * hd];
                        let keys = &kc[(r * nkv + g) * cap * hd..];
                        let vals = &vc[(r * nkv + g) * cap * hd..];
                        let mut max = f32::NEG_INFINITY;
                        for s in 0..=q_pos {
                            if s == q_pos || valid[s] {
                                let d = dot(q, &keys[s * hd..(s + 1) * hd]) * scale;
                                scores[s] = d;
                                max = max.max(d);
                            } else {
                                scores[s] = f32::NEG_INFINITY;
                            }
                        }
                        let mut sum = 0f32;
                        for sc in scores[..=q_pos].iter_mut() {
                            *sc = (*sc - max).exp();
                            sum += *sc;
                        }
                        let o = &mut rows[(ti * nh + head) * hd..(ti * nh + head + 1) * hd];
                        o.fill(0.0);
                        for (s, &p) in scores[..=q_pos].iter().enumerate() {
                            if p != 0.0 {
                                let w = p / sum;
                                for (o, &v) in o.iter_mut().zip(&vals[s * hd..(s + 1) * hd]) {
                                    *o += w * v;
                                }
                            }
                        }
                    }
                }
            });
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums, which the compiler keeps in one vector register.
    let mut acc = [0f32; 8];
    let (ac, ar) = a.split_at(a.len() / 8 * 8);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f32>()
}

fn rms_norm(x: &[f32], w: &[f32], eps: f64, out: &mut [f32]) {
    let h = w.len();
    out.par_chunks_mut(h)
        .zip(x.par_chunks(h))
        .for_each(|(o, x)| {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / h as f32;
            let inv = 1.0 / (ms + eps as f32).sqrt();
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
                *o = x * inv * w;
            }
        });
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
