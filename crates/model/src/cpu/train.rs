//! The training forward and backward of the decoder's layers on the CPU
//! in f32, written out by hand instead of recorded by candle's autograd:
//! every product of a linear layer (`X W^T`, `dY W`, `dY^T X`) is one call
//! of [`sgemm`](super::sgemm) on the weights' own storage (no transposed or
//! packed copy kept), RMSNorm, rope, SwiGLU and attention have fused
//! backward passes, and a layer keeps only what its backward pass reads
//! (its input, the norms' inverse RMS, q/k/v after rope, attention's
//! output and log-sum-exp, the MLP's gate and up projections). Attention
//! never keeps its T x T probabilities: the backward pass recomputes them
//! from the scores and the saved log-sum-exp, a block of queries at a time
//! over the keys up to the block's end (the causal half only).
//!
//! It computes what [`Model::layer`] computes (the tests hold the outputs
//! and every parameter's gradient to the candle path's within 1e-4); the
//! heads (log-probs, values) and their losses stay in candle, fed the last
//! layer's output and handing back its gradient. Used by
//! [`crate::checkpointing`] for f32 models on the CPU; candle remains the
//! path for other devices and dtypes.

use candle_core::{backprop::GradStore, DType, Device, Layout, Storage, Tensor};
use rayon::prelude::*;

use super::sgemm::{gemm, MatMut, MatRef, Out};
use super::vmath;
use crate::model::{Batch, Layer, Linear, LogprobHead, Model};
use crate::{ModelError, Result};

/// Queries per block of attention.
const QB: usize = 64;
/// Tokens per chunk of the language-model head (a 512 x vocabulary block
/// of logits: 100 MB for a 49k vocabulary).
const HEAD_CHUNK: usize = 512;

/// Keep freed memory in the process for reuse (glibc only). glibc hands
/// blocks above its mmap threshold back to the kernel when they are freed
/// and trims the heap's top, so a pass that frees and allocates its
/// activations layer after layer pays a page fault (and a zeroed page)
/// for every 4 KB each time: a fifth of a training step, measured on
/// SmolLM2. After this, freed blocks stay in the heap and are reused; the
/// peak RSS is unchanged (bench/train.sh prints it), but the process's RSS
/// no longer shrinks after its peak.
fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes glibc's allocation thresholds; it
        // is safe to call at any time, from any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        }
    });
}

/// Whether `model` trains on this path: f32 weights and compute on the CPU.
pub fn supported(model: &Model) -> bool {
    model.device().is_cpu() && model.dtype() == DType::F32 && model.param_dtype() == DType::F32
}

/// The shapes of one batch through one model.
#[derive(Clone, Copy, Debug)]
struct Dims {
    b: usize,
    t: usize,
    /// rows: b x t
    m: usize,
    h: usize,
    hd: usize,
    nh: usize,
    nkv: usize,
    /// width of the q|k|v rows: (nh + 2 nkv) hd
    w: usize,
    inter: usize,
    eps: f32,
}

/// What a layer's backward pass reads, saved by its forward pass.
pub struct Acts {
    /// the layer's input [m, h]
    x: Vec<f32>,
    /// 1 / rms of each row of x [m]
    inv1: Vec<f32>,
    /// q and k after rope, v [m, w]
    qkv: Vec<f32>,
    /// log-sum-exp of each query's scores [m, nh]
    lse: Vec<f32>,
    /// attention's output [m, nh hd]
    att: Vec<f32>,
    /// x + attention's projection [m, h]
    x2: Vec<f32>,
    inv2: Vec<f32>,
    /// gate | up projections [m, 2 inter]
    gu: Vec<f32>,
}

/// A layer's saved state: everything, or (checkpointing) its input only.
pub enum Saved {
    Acts(Box<Acts>),
    Input(Vec<f32>),
}

/// What a forward pass keeps for the backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// nothing (a scoring pass)
    Nothing,
    /// every activation a layer's backward pass reads
    Activations,
    /// each layer's input only (activation checkpointing)
    Inputs,
}

/// Which positions of a batch the CPU training pass computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Packing {
    /// every position of every row, padding included
    Padded,
    /// a prefix of real tokens that rows share (the samples of one
    /// prompt, a system turn every prompt begins with) once: the same
    /// outputs as `Padded` at every position
    SharedPrefixes,
    /// shared prefixes once and no padding: for right-padded rows, a
    /// padded position's output is zero and takes no gradient. For heads
    /// and losses that read real positions only (the RL and SFT losses);
    /// rows with padding elsewhere are computed as `SharedPrefixes`.
    #[default]
    Packed,
}

/// No compact token: a padded position a packed pass does not compute.
const NONE: usize = usize::MAX;

/// One padded batch on its way through a model's layers, each distinct
/// token computed once: a row that begins with the same real tokens as an
/// earlier row (the samples of one prompt, or every prompt's system turn)
/// reads that prefix's keys and values from the earlier row instead of
/// computing them again. Causal attention makes position j's state a
/// function of tokens 0..=j only, so a shared prefix's states are the
/// ones the row would have computed; in the backward pass the gradients
/// that reach a shared token from every row that reads it add up.
/// Packed ([`Packing`]), trailing padding is not computed at all.
///
/// The layer passes work on the `m` distinct tokens ("compact" rows);
/// [`Trunk::tensor`] and [`Trunk::compact`] convert to and from the
/// batch's `[b, t, h]` layout for the heads.
pub struct Trunk<'a> {
    model: &'a Model,
    d: Dims,
    /// each compact token's id and position [m]
    ids: Vec<u32>,
    pos: Vec<u32>,
    /// the batch's token ids [b t]
    batch_ids: Vec<u32>,
    /// real tokens of the batch [b t]
    valid: Vec<bool>,
    /// the compact token at each (row, position) of the batch [b t]
    /// ([`NONE`]: a padded position not computed)
    at: Vec<usize>,
    /// per row: its first position that is its own (not a shared prefix);
    /// its own tokens are compact rows `at[r t + own[r]]..`, in order
    own: Vec<usize>,
    /// per row: the positions computed, 0..len (t, or packed the real ones)
    len: Vec<usize>,
}

/// For each row of `ids` [b, t] (with `valid` and `pos`), the length of
/// the longest prefix of real tokens it shares with an earlier row, and
/// that row (the first of the longest; (0, 0): none). Tokens, positions
/// and validity must all agree.
fn shared_prefixes(
    b: usize,
    t: usize,
    ids: &[u32],
    pos: &[u32],
    valid: &[bool],
) -> Vec<(usize, usize)> {
    let same = |r: usize, q: usize, j: usize| {
        let (x, y) = (r * t + j, q * t + j);
        valid[x] && valid[y] && ids[x] == ids[y] && pos[x] == pos[y]
    };
    (0..b)
        .map(|r| {
            (0..r)
                .map(|q| ((0..t).take_while(|&j| same(r, q, j)).count(), q))
                .fold((0, 0), |best, c| if c.0 > best.0 { c } else { best })
        })
        .collect()
}

fn invalid(m: String) -> ModelError {
    ModelError::Invalid(m)
}

/// The f32 values of a contiguous CPU tensor whose storage `g` is borrowed.
fn values<'g>(g: &'g Storage, l: &Layout, what: &str) -> Result<&'g [f32]> {
    let Storage::Cpu(c) = g else {
        return Err(invalid(format!("{what}: not on the CPU")));
    };
    let s = c.as_slice::<f32>()?;
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| invalid(format!("{what}: not contiguous")))?;
    Ok(&s[a..b])
}

/// A layer's parameters in a fixed order (None: no such bias).
fn layer_tensors(l: &Layer) -> [Option<&Tensor>; 13] {
    fn w(x: &Linear) -> Option<&Tensor> {
        Some(x.weight())
    }
    let a = &l.self_attn;
    [
        Some(&l.input_layernorm.weight),
        w(&a.q_proj),
        a.q_proj.bias(),
        w(&a.k_proj),
        a.k_proj.bias(),
        w(&a.v_proj),
        a.v_proj.bias(),
        w(&a.o_proj),
        a.o_proj.bias(),
        Some(&l.post_attention_layernorm.weight),
        w(&l.mlp.gate_proj),
        w(&l.mlp.up_proj),
        w(&l.mlp.down_proj),
    ]
}

/// A layer's weights as slices, in [`layer_tensors`]' order.
struct W<'g> {
    s: [Option<&'g [f32]>; 13],
}

impl<'g> W<'g> {
    fn w(&self, i: usize) -> &'g [f32] {
        self.s[i].expect("a weight is always present")
    }
    fn in_norm(&self) -> &'g [f32] {
        self.w(0)
    }
    /// q, k or v (j = 0, 1, 2): weight and bias.
    fn proj(&self, j: usize) -> (&'g [f32], Option<&'g [f32]>) {
        (self.w(1 + 2 * j), self.s[2 + 2 * j])
    }
    fn o(&self) -> (&'g [f32], Option<&'g [f32]>) {
        (self.w(7), self.s[8])
    }
    fn post_norm(&self) -> &'g [f32] {
        self.w(9)
    }
    fn gate(&self) -> &'g [f32] {
        self.w(10)
    }
    fn up(&self) -> &'g [f32] {
        self.w(11)
    }
    fn down(&self) -> &'g [f32] {
        self.w(12)
    }
}

/// Run `f` with layer `l`'s weights borrowed as slices.
fn with_weights<R>(l: &Layer, f: impl FnOnce(&W) -> Result<R>) -> Result<R> {
    let tensors = layer_tensors(l);
    let guards: Vec<_> = tensors
        .iter()
        .map(|t| t.map(|t| t.storage_and_layout()))
        .collect();
    let mut s: [Option<&[f32]>; 13] = [None; 13];
    for (slot, g) in s.iter_mut().zip(&guards) {
        if let Some((g, l)) = g {
            *slot = Some(values(g, l, "a layer weight")?);
        }
    }
    f(&W { s })
}

fn mat(x: &[f32], rows: usize, cols: usize) -> MatRef<'_> {
    MatRef::new(x, rows, cols)
}

/// `y[:, c0..c0 + n] = x W^T + b` for x [m, k], W [n, k], y rows `ld` wide.
#[allow(clippy::too_many_arguments)]
fn linear(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ld: usize,
    c0: usize,
    out: Out,
) {
    let n = w.len() / k;
    let mut out = out;
    if let Some(b) = bias {
        y.par_chunks_mut(ld).for_each(|row| {
            let r = &mut row[c0..c0 + n];
            if out == Out::Set {
                r.copy_from_slice(b);
            } else {
                r.iter_mut().zip(b).for_each(|(r, b)| *r += b);
            }
        });
        out = Out::Add;
    }
    let dst = MatMut::strided(y, m, ld, ld).cols(c0, n);
    gemm(mat(x, m, k), mat(w, n, k).t(), dst, out, true);
}

/// RMSNorm of each row: out = x / rms(x) * w; returns 1 / rms per row.
fn rms_forward(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) -> Vec<f32> {
    let h = w.len();
    let mut inv = vec![0f32; x.len() / h];
    out.par_chunks_mut(h)
        .zip(x.par_chunks(h))
        .zip(inv.par_iter_mut())
        .for_each(|((o, x), inv)| {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / h as f32;
            *inv = 1.0 / (ms + eps).sqrt();
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
                *o = x * *inv * w;
            }
        });
    inv
}

/// The norm's output again from its input and saved 1 / rms.
fn rms_apply(x: &[f32], inv: &[f32], w: &[f32]) -> Vec<f32> {
    let h = w.len();
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(h)
        .zip(x.par_chunks(h))
        .zip(inv.par_iter())
        .for_each(|((o, x), &inv)| {
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
                *o = x * inv * w;
            }
        });
    out
}

/// RMSNorm's backward: adds the input's gradient into `dx`, returns the
/// weight's. For n = x r w with r = (mean(x^2) + eps)^-1/2:
/// dx = r (dn w) - x r^3 / h sum(dn w x), dw = sum_rows dn x r.
fn rms_backward(dn: &[f32], x: &[f32], inv: &[f32], w: &[f32], dx: &mut [f32]) -> Vec<f32> {
    let h = w.len();
    dx.par_chunks_mut(h)
        .zip(dn.par_chunks(h).zip(x.par_chunks(h)))
        .zip(inv.par_iter())
        .for_each(|((dx, (dn, x)), &r)| {
            let dot: f64 = dn
                .iter()
                .zip(w)
                .zip(x)
                .map(|((d, w), x)| (d * w * x) as f64)
                .sum();
            let c = r * r * r * (dot / h as f64) as f32;
            for (((dx, &d), &w), &x) in dx.iter_mut().zip(dn).zip(w).zip(x) {
                *dx += r * d * w - x * c;
            }
        });
    col_sums(h, dn.len() / h, |i, acc| {
        let (dn, x, r) = (&dn[i * h..(i + 1) * h], &x[i * h..(i + 1) * h], inv[i]);
        for ((a, &d), &x) in acc.iter_mut().zip(dn).zip(x) {
            *a += (d * x * r) as f64;
        }
    })
}

/// `sum_i row(i)` over `rows` rows of width `n`, where `add(i, acc)` adds
/// row i into acc (in parallel over row ranges, then summed), in f64: a
/// sum over every token of a batch.
fn col_sums(n: usize, rows: usize, add: impl Fn(usize, &mut [f64]) + Sync) -> Vec<f32> {
    let parts = rayon::current_num_threads().max(1) * 2;
    (0..parts)
        .into_par_iter()
        .map(|p| {
            let mut acc = vec![0f64; n];
            for i in rows * p / parts..rows * (p + 1) / parts {
                add(i, &mut acc);
            }
            acc
        })
        .reduce(
            || vec![0f64; n],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        )
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// Column sums of `y[:, c0..c0 + n]` (rows `ld` wide): a bias's gradient.
fn bias_grad(y: &[f32], ld: usize, c0: usize, n: usize) -> Vec<f32> {
    col_sums(n, y.len() / ld, |i, acc| {
        for (a, &v) in acc.iter_mut().zip(&y[i * ld + c0..i * ld + c0 + n]) {
            *a += v as f64;
        }
    })
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl<'a> Trunk<'a> {
    /// `batch` through `model`'s layers ([`supported`] models only), its
    /// positions computed as `packing` says.
    pub fn new(model: &'a Model, batch: &Batch, packing: Packing) -> Result<Trunk<'a>> {
        if !supported(model) {
            return Err(invalid(
                "the CPU training path needs an f32 model on the CPU".into(),
            ));
        }
        keep_freed_memory();
        let cfg = model.config();
        let (b, t) = batch.ids.dims2()?;
        let ids: Vec<u32> = batch.ids.flatten_all()?.to_vec1()?;
        let pos: Vec<u32> = batch.positions.flatten_all()?.to_vec1()?;
        let valid: Vec<bool> = batch
            .mask
            .flatten_all()?
            .to_vec1::<u8>()?
            .into_iter()
            .map(|v| v == 1)
            .collect();
        if let Some(&id) = ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(invalid(format!(
                "token id {id} is outside the vocabulary ({})",
                cfg.vocab_size
            )));
        }
        if let Some(&p) = pos
            .iter()
            .find(|&&p| p as usize >= cfg.max_position_embeddings)
        {
            return Err(invalid(format!(
                "position {p} is beyond max_position_embeddings {}",
                cfg.max_position_embeddings
            )));
        }
        // Each row's own tokens after the longest prefix it shares with an
        // earlier row (whose compact tokens it reads there).
        let shared = if packing == Packing::Padded {
            vec![(0, 0); b]
        } else {
            shared_prefixes(b, t, &ids, &pos, &valid)
        };
        // Packed, each row's real tokens when they come first (right
        // padding): the positions after them are not computed.
        let real: Vec<usize> = valid
            .chunks(t.max(1))
            .map(|v| v.iter().take_while(|&&v| v).count())
            .collect();
        let right_padded = (0..b).all(|r| valid[r * t + real[r]..(r + 1) * t].iter().all(|v| !v));
        let len: Vec<usize> = if packing == Packing::Packed && right_padded {
            real
        } else {
            vec![t; b]
        };
        let mut at = vec![NONE; b * t];
        let (mut cids, mut cpos) = (Vec::with_capacity(b * t), Vec::with_capacity(b * t));
        for (r, &(l, q)) in shared.iter().enumerate() {
            for j in 0..l {
                at[r * t + j] = at[q * t + j];
            }
            for j in l..len[r] {
                at[r * t + j] = cids.len();
                cids.push(ids[r * t + j]);
                cpos.push(pos[r * t + j]);
            }
        }
        let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
        Ok(Trunk {
            model,
            d: Dims {
                b,
                t,
                m: cids.len(),
                h: cfg.hidden_size,
                hd,
                nh,
                nkv,
                w: (nh + 2 * nkv) * hd,
                inter: cfg.intermediate_size,
                eps: cfg.rms_norm_eps as f32,
            },
            ids: cids,
            pos: cpos,
            batch_ids: ids,
            valid,
            at,
            own: shared.iter().map(|&(l, _)| l).collect(),
            len,
        })
    }

    /// Distinct tokens through the layers (the batch's b x t, less the
    /// shared prefixes and, packed, the padding).
    pub fn tokens(&self) -> usize {
        self.d.m
    }

    /// The compact rows' `[m, h]` values in the batch's `[b, t, h]` layout
    /// (zero where a position is not computed).
    fn expand(&self, x: &[f32]) -> Vec<f32> {
        let h = self.d.h;
        let mut out = vec![0f32; self.d.b * self.d.t * h];
        out.par_chunks_mut(h).zip(&self.at).for_each(|(dst, &c)| {
            if c != NONE {
                dst.copy_from_slice(&x[c * h..(c + 1) * h]);
            }
        });
        out
    }

    /// A gradient in the batch's `[b, t, h]` layout (row-major) as the
    /// compact rows' `[m, h]`: a shared token's is the sum over the rows
    /// that read it; a position not computed has none.
    pub fn compact(&self, g: &[f32]) -> Result<Vec<f32>> {
        let (d, h) = (self.d, self.d.h);
        if g.len() != d.b * d.t * h {
            return Err(invalid(format!(
                "the gradient has {} values, the output {} x {} x {}",
                g.len(),
                d.b,
                d.t,
                d.h
            )));
        }
        let mut out = vec![0f32; d.m * h];
        for (row, &c) in g.chunks_exact(h).zip(&self.at).filter(|(_, &c)| c != NONE) {
            out[c * h..(c + 1) * h]
                .iter_mut()
                .zip(row)
                .for_each(|(a, b)| *a += b);
        }
        Ok(out)
    }

    /// The embeddings of the batch's tokens [m, h].
    fn embed(&self) -> Result<Vec<f32>> {
        let h = self.d.h;
        let (g, l) = self.model.embed_tokens.embeddings().storage_and_layout();
        let e = values(&g, l, "the embedding")?;
        let mut x = vec![0f32; self.d.m * h];
        x.par_chunks_mut(h).zip(&self.ids).for_each(|(row, &id)| {
            row.copy_from_slice(&e[id as usize * h..(id as usize + 1) * h]);
        });
        Ok(x)
    }

    /// The last layer's output at the compact rows [m, h] (before the
    /// final norm; [`Trunk::tensor`] makes it the batch's [b, t, h]
    /// tensor), and what each layer saved for
    /// [`Trunk::backward`] as `keep` asks.
    pub fn forward(&self, keep: Keep) -> Result<(Vec<f32>, Vec<Saved>)> {
        let mut x = self.embed()?;
        let mut saved = Vec::new();
        for i in 0..self.model.num_layers() {
            let input = (keep == Keep::Inputs).then(|| x.clone());
            let (y, acts) = self.layer_forward(i, x, keep == Keep::Activations)?;
            saved.extend(acts.map(Saved::Acts));
            saved.extend(input.map(Saved::Input));
            x = y;
        }
        Ok((x, saved))
    }

    /// The last layer's output as the [b, t, h] tensor candle's heads take.
    pub fn tensor(&self, x: Vec<f32>) -> Result<Tensor> {
        let d = self.d;
        // Without a shared prefix the compact rows are the batch's.
        let x = if d.m == d.b * d.t { x } else { self.expand(&x) };
        Ok(Tensor::from_vec(x, (d.b, d.t, d.h), &Device::Cpu)?)
    }

    /// Layer `li` on its input x [m, h]: its output, and its activations
    /// when `keep`.
    fn layer_forward(
        &self,
        li: usize,
        x: Vec<f32>,
        keep: bool,
    ) -> Result<(Vec<f32>, Option<Box<Acts>>)> {
        let d = self.d;
        let (m, h, hd) = (d.m, d.h, d.hd);
        with_weights(&self.model.layers[li], |w| {
            let mut n1 = vec![0f32; m * h];
            let inv1 = rms_forward(&x, w.in_norm(), d.eps, &mut n1);
            let mut qkv = vec![0f32; m * d.w];
            for (j, c0) in [(0, 0), (1, d.nh * hd), (2, (d.nh + d.nkv) * hd)] {
                let (wt, b) = w.proj(j);
                linear(&n1, m, h, wt, b, &mut qkv, d.w, c0, Out::Set);
            }
            drop(n1);
            self.rope(&mut qkv, false)?;
            let (att, lse) = self.attention(&qkv);
            let mut x2 = x.clone();
            let (wo, bo) = w.o();
            linear(&att, m, d.nh * hd, wo, bo, &mut x2, h, 0, Out::Add);
            let mut n2 = vec![0f32; m * h];
            let inv2 = rms_forward(&x2, w.post_norm(), d.eps, &mut n2);
            let i2 = 2 * d.inter;
            let mut gu = vec![0f32; m * i2];
            linear(&n2, m, h, w.gate(), None, &mut gu, i2, 0, Out::Set);
            linear(&n2, m, h, w.up(), None, &mut gu, i2, d.inter, Out::Set);
            drop(n2);
            let act = self.swiglu(&gu);
            let mut y = x2.clone();
            linear(&act, m, d.inter, w.down(), None, &mut y, h, 0, Out::Add);
            let acts = keep.then(|| {
                Box::new(Acts {
                    x,
                    inv1,
                    qkv,
                    lse,
                    att,
                    x2,
                    inv2,
                    gu,
                })
            });
            Ok((y, acts))
        })
    }

    /// silu(gate) * up for gu [m, 2 inter] -> [m, inter].
    fn swiglu(&self, gu: &[f32]) -> Vec<f32> {
        let i = self.d.inter;
        let mut act = vec![0f32; self.d.m * i];
        act.par_chunks_mut(i)
            .zip(gu.par_chunks(2 * i))
            .for_each(|(a, gu)| {
                let (g, u) = gu.split_at(i);
                for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                    *a = g * sigmoid(g) * u;
                }
            });
        act
    }

    /// Rotate q and k of every row of `qkv` [m, w] in place (HF's
    /// rotate-half layout); `inverse` applies the transposed rotation (the
    /// backward pass of rope on a gradient).
    fn rope(&self, qkv: &mut [f32], inverse: bool) -> Result<()> {
        let d = self.d;
        let half = d.hd / 2;
        let rope = &self.model.rope;
        let (gc, lc) = rope.cos.storage_and_layout();
        let (gs, ls) = rope.sin.storage_and_layout();
        let (cos, sin) = (values(&gc, lc, "rope cos")?, values(&gs, ls, "rope sin")?);
        let sign = if inverse { -1.0 } else { 1.0 };
        qkv.par_chunks_mut(d.w)
            .zip(self.pos.par_iter())
            .for_each(|(row, &p)| {
                let p = p as usize;
                let (c, s) = (
                    &cos[p * half..(p + 1) * half],
                    &sin[p * half..(p + 1) * half],
                );
                for head in row[..(d.nh + d.nkv) * d.hd].chunks_exact_mut(d.hd) {
                    let (x1, x2) = head.split_at_mut(half);
                    for j in 0..half {
                        let (a, b, s) = (x1[j], x2[j], sign * s[j]);
                        x1[j] = a * c[j] - b * s;
                        x2[j] = b * c[j] + a * s;
                    }
                }
            });
        Ok(())
    }

    /// The queries i0..i1 of the `rep` heads that share key head `g` in
    /// row `r`, stacked head after head and scaled by 1 / sqrt(hd):
    /// [rep (i1 - i0), hd].
    fn stacked_queries(
        &self,
        qkv: &[f32],
        r: usize,
        g: usize,
        i0: usize,
        i1: usize,
        qs: &mut Vec<f32>,
    ) {
        let d = self.d;
        let (hd, rep) = (d.hd, d.nh / d.nkv);
        let scale = 1.0 / (hd as f32).sqrt();
        qs.clear();
        for hr in 0..rep {
            let c0 = (g * rep + hr) * hd;
            for i in i0..i1 {
                let row = &qkv[self.at[r * d.t + i] * d.w + c0..][..hd];
                qs.extend(row.iter().map(|v| v * scale));
            }
        }
    }

    /// Key head `g`'s keys and values of row `r`'s positions 0..len[r],
    /// each [len, hd], gathered from the compact rows of `qkv` (a shared
    /// prefix's are another row's).
    fn row_kv(&self, qkv: &[f32], r: usize, g: usize, k: &mut Vec<f32>, v: &mut Vec<f32>) {
        let d = self.d;
        let (kc, vc) = ((d.nh + g) * d.hd, (d.nh + d.nkv + g) * d.hd);
        k.clear();
        v.clear();
        for &c in &self.at[r * d.t..r * d.t + self.len[r]] {
            k.extend_from_slice(&qkv[c * d.w + kc..][..d.hd]);
            v.extend_from_slice(&qkv[c * d.w + vc..][..d.hd]);
        }
    }

    /// Scores of the stacked queries `qs` ([`Trunk::stacked_queries`] of
    /// i0..i1) over keys 0..i1 of row `r` (`k`, [`Trunk::row_kv`]), masked
    /// (-inf where the model's mask hides a key: causal, no padded keys,
    /// every query sees itself): `s` [rep (i1 - i0), i1].
    fn masked_scores(
        &self,
        k: &[f32],
        qs: &[f32],
        r: usize,
        i0: usize,
        i1: usize,
        s: &mut Vec<f32>,
    ) {
        let d = self.d;
        let rows = qs.len() / d.hd;
        let k = MatRef::new(&k[..i1 * d.hd], i1, d.hd);
        s.clear();
        s.resize(rows * i1, 0.0);
        gemm(
            mat(qs, rows, d.hd),
            k.t(),
            MatMut::new(s, rows, i1),
            Out::Set,
            false,
        );
        let valid = &self.valid[r * d.t..(r + 1) * d.t];
        let all_valid = valid[..i1].iter().all(|&v| v);
        let qb = i1 - i0;
        for (k, row) in s.chunks_exact_mut(i1).enumerate() {
            let i = i0 + k % qb;
            if all_valid {
                row[i + 1..].fill(f32::NEG_INFINITY);
            } else {
                for (j, v) in row.iter_mut().enumerate() {
                    if !(j == i || (j < i && valid[j])) {
                        *v = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }

    /// Causal attention over `qkv` [m, w]: the output [m, nh hd] and each
    /// query's log-sum-exp [m, nh]. One task per (row, key head) over the
    /// row's own queries (those after its shared prefix) and every key of
    /// the row it computes, whose query heads run as one stacked matrix, a
    /// block of queries at a time over the keys up to the block's end.
    fn attention(&self, qkv: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let d = self.d;
        let (t, hd) = (d.t, d.hd);
        let rep = d.nh / d.nkv;
        // Per task: its rep heads' [t, hd] outputs and log-sum-exps.
        let parts: Vec<(Vec<f32>, Vec<f32>)> = (0..d.b * d.nkv)
            .into_par_iter()
            .map(|task| {
                let (r, g) = (task / d.nkv, task % d.nkv);
                let (own, len) = (self.own[r], self.len[r]);
                let mut out = vec![0f32; rep * t * hd];
                let mut lse = vec![0f32; rep * t];
                let (mut qs, mut s, mut o) = (Vec::new(), Vec::new(), Vec::new());
                let (mut k, mut v) = (Vec::new(), Vec::new());
                self.row_kv(qkv, r, g, &mut k, &mut v);
                let v = MatRef::new(&v, len, hd);
                for i0 in (own..len).step_by(QB) {
                    let i1 = (i0 + QB).min(len);
                    let qb = i1 - i0;
                    self.stacked_queries(qkv, r, g, i0, i1, &mut qs);
                    self.masked_scores(&k, &qs, r, i0, i1, &mut s);
                    for (k, row) in s.chunks_exact_mut(i1).enumerate() {
                        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                        let sum = vmath::exp_affine_sum(row, 1.0, max);
                        let inv = 1.0 / sum;
                        row.iter_mut().for_each(|v| *v *= inv);
                        lse[(k / qb) * t + i0 + k % qb] = max + sum.ln();
                    }
                    o.clear();
                    o.resize(rep * qb * hd, 0.0);
                    let p = MatRef::new(&s, rep * qb, i1);
                    gemm(
                        p,
                        v.rows(0, i1),
                        MatMut::new(&mut o, rep * qb, hd),
                        Out::Set,
                        false,
                    );
                    for hr in 0..rep {
                        let dst = &mut out[(hr * t + i0) * hd..(hr * t + i1) * hd];
                        dst.copy_from_slice(&o[hr * qb * hd..(hr + 1) * qb * hd]);
                    }
                }
                (out, lse)
            })
            .collect();
        let mut att = vec![0f32; d.m * d.nh * hd];
        let mut lse = vec![0f32; d.m * d.nh];
        for (task, (out, l)) in parts.into_iter().enumerate() {
            let (r, g) = (task / d.nkv, task % d.nkv);
            for i in self.own[r]..self.len[r] {
                let c = self.at[r * t + i];
                for hr in 0..rep {
                    let head = g * rep + hr;
                    let dst = c * d.nh * hd + head * hd;
                    att[dst..dst + hd]
                        .copy_from_slice(&out[(hr * t + i) * hd..(hr * t + i + 1) * hd]);
                    lse[c * d.nh + head] = l[hr * t + i];
                }
            }
        }
        (att, lse)
    }

    /// Attention's backward: from the output's gradient `datt` [m, nh hd],
    /// the gradients of q, k (after rope) and v as one [m, w] matrix. The
    /// probabilities are recomputed from the scores and the saved
    /// log-sum-exp, block by block as in [`Trunk::attention`]; a shared
    /// prefix's keys and values get the sum of every reading row's.
    fn attention_backward(&self, qkv: &[f32], lse: &[f32], datt: &[f32]) -> Vec<f32> {
        let d = self.d;
        let (t, hd) = (d.t, d.hd);
        let rep = d.nh / d.nkv;
        let scale = 1.0 / (hd as f32).sqrt();
        let ow = d.nh * hd;
        // Per (row, key head): dq of its rep heads [rep, t, hd], dk and dv
        // [t, hd] each (summed over the heads that share them).
        let parts: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..d.b * d.nkv)
            .into_par_iter()
            .map(|task| {
                let (r, g) = (task / d.nkv, task % d.nkv);
                let (own, len) = (self.own[r], self.len[r]);
                let (mut kb, mut vb) = (Vec::new(), Vec::new());
                self.row_kv(qkv, r, g, &mut kb, &mut vb);
                let k = MatRef::new(&kb, len, hd);
                let v = MatRef::new(&vb, len, hd);
                let mut dq = vec![0f32; rep * t * hd];
                let mut dk = vec![0f32; len * hd];
                let mut dv = vec![0f32; len * hd];
                let (mut qs, mut s, mut dp, mut dos, mut dqs) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for i0 in (own..len).step_by(QB) {
                    let i1 = (i0 + QB).min(len);
                    let qb = i1 - i0;
                    let rows = rep * qb;
                    self.stacked_queries(qkv, r, g, i0, i1, &mut qs);
                    self.masked_scores(&kb, &qs, r, i0, i1, &mut s);
                    for (kq, row) in s.chunks_exact_mut(i1).enumerate() {
                        let head = g * rep + kq / qb;
                        let l = lse[self.at[r * t + i0 + kq % qb] * d.nh + head];
                        vmath::exp_affine_sum(row, 1.0, l);
                    }
                    // The output's gradient, stacked as the queries.
                    dos.clear();
                    for hr in 0..rep {
                        let c0 = (g * rep + hr) * hd;
                        for i in i0..i1 {
                            dos.extend_from_slice(&datt[self.at[r * t + i] * ow + c0..][..hd]);
                        }
                    }
                    let d_o = mat(&dos, rows, hd);
                    dp.clear();
                    dp.resize(rows * i1, 0.0);
                    gemm(
                        d_o,
                        v.rows(0, i1).t(),
                        MatMut::new(&mut dp, rows, i1),
                        Out::Set,
                        false,
                    );
                    // dS = P (dP - sum_j P dP) (the scale is in qs).
                    for (prow, dprow) in s.chunks_exact(i1).zip(dp.chunks_exact_mut(i1)) {
                        let dot: f32 = prow.iter().zip(dprow.iter()).map(|(p, g)| p * g).sum();
                        for (g, &p) in dprow.iter_mut().zip(prow) {
                            *g = p * (*g - dot);
                        }
                    }
                    let ds = MatRef::new(&dp, rows, i1);
                    dqs.clear();
                    dqs.resize(rows * hd, 0.0);
                    gemm(
                        ds,
                        k.rows(0, i1),
                        MatMut::new(&mut dqs, rows, hd),
                        Out::Set,
                        false,
                    );
                    for hr in 0..rep {
                        let dst = &mut dq[(hr * t + i0) * hd..(hr * t + i1) * hd];
                        let src = &dqs[hr * qb * hd..(hr + 1) * qb * hd];
                        dst.iter_mut().zip(src).for_each(|(d, s)| *d = s * scale);
                    }
                    let qsm = mat(&qs, rows, hd);
                    gemm(
                        ds.t(),
                        qsm,
                        MatMut::new(&mut dk[..i1 * hd], i1, hd),
                        Out::Add,
                        false,
                    );
                    let p = MatRef::new(&s, rows, i1);
                    gemm(
                        p.t(),
                        d_o,
                        MatMut::new(&mut dv[..i1 * hd], i1, hd),
                        Out::Add,
                        false,
                    );
                }
                (dq, dk, dv)
            })
            .collect();
        let mut dqkv = vec![0f32; d.m * d.w];
        let add = |dst: &mut [f32], src: &[f32]| dst.iter_mut().zip(src).for_each(|(a, b)| *a += b);
        for (task, (dq, dk, dv)) in parts.into_iter().enumerate() {
            let (r, g) = (task / d.nkv, task % d.nkv);
            for i in 0..self.len[r] {
                let row = &mut dqkv[self.at[r * t + i] * d.w..][..d.w];
                if i >= self.own[r] {
                    for hr in 0..rep {
                        let head = g * rep + hr;
                        row[head * hd..(head + 1) * hd]
                            .copy_from_slice(&dq[(hr * t + i) * hd..(hr * t + i + 1) * hd]);
                    }
                }
                let kc = (d.nh + g) * hd;
                add(&mut row[kc..kc + hd], &dk[i * hd..(i + 1) * hd]);
                let vc = (d.nh + d.nkv + g) * hd;
                add(&mut row[vc..vc + hd], &dv[i * hd..(i + 1) * hd]);
            }
        }
        dqkv
    }
}

/// A layer's parameter gradients, by index into [`layer_tensors`].
type LayerGrads = Vec<(usize, Vec<f32>)>;

impl Trunk<'_> {
    /// The backward pass from `g`, the gradient of the last layer's output
    /// at the compact rows [m, h] ([`Trunk::compact`] of the batch
    /// layout's), over what [`Trunk::forward`] saved: each
    /// layer's parameter gradients (last layer first), then the
    /// embedding's, each handed to `sink` in a store of its own.
    pub fn backward<E>(
        &self,
        mut saved: Vec<Saved>,
        mut g: Vec<f32>,
        sink: &mut dyn FnMut(&GradStore) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        E: From<ModelError> + From<candle_core::Error>,
    {
        let d = self.d;
        if g.len() != d.m * d.h {
            return Err(invalid(format!(
                "the gradient has {} values, the output {} x {}",
                g.len(),
                d.m,
                d.h
            ))
            .into());
        }
        for li in (0..self.model.num_layers()).rev() {
            let acts = match saved.pop() {
                Some(Saved::Acts(a)) => a,
                Some(Saved::Input(x)) => self
                    .layer_forward(li, x, true)?
                    .1
                    .expect("activations kept when asked"),
                None => return Err(invalid("backward: a layer saved nothing".into()).into()),
            };
            let layer = &self.model.layers[li];
            let (dx, grads) = with_weights(layer, |w| self.layer_backward(w, &acts, &g))?;
            drop(acts);
            let tensors = layer_tensors(layer);
            let mut store = GradStore::default();
            for (i, grad) in grads {
                let t = tensors[i].expect("a gradient of a present tensor");
                store.insert(t, Tensor::from_vec(grad, t.shape(), &Device::Cpu)?);
            }
            sink(&store)?;
            g = dx;
        }
        // The embedding: each row's gradient added at its token's row.
        let e = self.model.embed_tokens.embeddings();
        let mut de = vec![0f32; e.elem_count()];
        for (row, &id) in g.chunks_exact(d.h).zip(&self.ids) {
            let dst = &mut de[id as usize * d.h..(id as usize + 1) * d.h];
            dst.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        let mut store = GradStore::default();
        store.insert(e, Tensor::from_vec(de, e.shape(), &Device::Cpu)?);
        sink(&store)
    }

    /// One layer's backward pass: from the gradient of its output `dy`
    /// [m, h], the gradient of its input and of its parameters.
    fn layer_backward(&self, w: &W, a: &Acts, dy: &[f32]) -> Result<(Vec<f32>, LayerGrads)> {
        let d = self.d;
        let (m, h, hd, i) = (d.m, d.h, d.hd, d.inter);
        let mut grads: LayerGrads = Vec::with_capacity(13);
        // MLP: y = x2 + down(silu(gate(n2)) * up(n2)), n2 = norm(x2).
        let act = self.swiglu(&a.gu);
        let mut dwd = vec![0f32; h * i];
        gemm(
            mat(dy, m, h).t(),
            mat(&act, m, i),
            MatMut::new(&mut dwd, h, i),
            Out::Set,
            true,
        );
        drop(act);
        grads.push((12, dwd));
        let mut dact = vec![0f32; m * i];
        let dst = MatMut::new(&mut dact, m, i);
        gemm(mat(dy, m, h), mat(w.down(), h, i), dst, Out::Set, true);
        let mut dgu = vec![0f32; m * 2 * i];
        dgu.par_chunks_mut(2 * i)
            .zip(a.gu.par_chunks(2 * i))
            .zip(dact.par_chunks(i))
            .for_each(|((dgu, gu), da)| {
                let (dg, du) = dgu.split_at_mut(i);
                let (g, u) = gu.split_at(i);
                for j in 0..i {
                    let sg = sigmoid(g[j]);
                    du[j] = da[j] * g[j] * sg;
                    dg[j] = da[j] * u[j] * sg * (1.0 + g[j] * (1.0 - sg));
                }
            });
        drop(dact);
        let n2 = rms_apply(&a.x2, &a.inv2, w.post_norm());
        let dgu_m = mat(&dgu, m, 2 * i);
        let mut dn2 = vec![0f32; m * h];
        for (j, (c0, wt)) in [(0, w.gate()), (i, w.up())].into_iter().enumerate() {
            let mut dw = vec![0f32; i * h];
            let dst = MatMut::new(&mut dw, i, h);
            gemm(dgu_m.cols(c0, i).t(), mat(&n2, m, h), dst, Out::Set, true);
            grads.push((10 + j, dw));
            let out = if j == 0 { Out::Set } else { Out::Add };
            let dst = MatMut::new(&mut dn2, m, h);
            gemm(dgu_m.cols(c0, i), mat(wt, i, h), dst, out, true);
        }
        drop((dgu, n2));
        let mut dx2 = dy.to_vec();
        let dpost = rms_backward(&dn2, &a.x2, &a.inv2, w.post_norm(), &mut dx2);
        drop(dn2);
        grads.push((9, dpost));
        // Attention: x2 = x + o(attention(rope(q, k), v)), q|k|v = qkv(n1).
        let ow = d.nh * hd;
        let (wo, bo) = w.o();
        let mut dwo = vec![0f32; h * ow];
        let dst = MatMut::new(&mut dwo, h, ow);
        gemm(mat(&dx2, m, h).t(), mat(&a.att, m, ow), dst, Out::Set, true);
        grads.push((7, dwo));
        if bo.is_some() {
            grads.push((8, bias_grad(&dx2, h, 0, h)));
        }
        let mut datt = vec![0f32; m * ow];
        gemm(
            mat(&dx2, m, h),
            mat(wo, h, ow),
            MatMut::new(&mut datt, m, ow),
            Out::Set,
            true,
        );
        let mut dqkv = self.attention_backward(&a.qkv, &a.lse, &datt);
        drop(datt);
        self.rope(&mut dqkv, true)?;
        let n1 = rms_apply(&a.x, &a.inv1, w.in_norm());
        let dqkv_m = mat(&dqkv, m, d.w);
        let mut dn1 = vec![0f32; m * h];
        let spans = [
            (0, d.nh * hd),
            (d.nh * hd, d.nkv * hd),
            ((d.nh + d.nkv) * hd, d.nkv * hd),
        ];
        for (j, (c0, n)) in spans.into_iter().enumerate() {
            let (wt, b) = w.proj(j);
            let mut dw = vec![0f32; n * h];
            let dst = MatMut::new(&mut dw, n, h);
            gemm(dqkv_m.cols(c0, n).t(), mat(&n1, m, h), dst, Out::Set, true);
            grads.push((1 + 2 * j, dw));
            if b.is_some() {
                grads.push((2 + 2 * j, bias_grad(&dqkv, d.w, c0, n)));
            }
            let out = if j == 0 { Out::Set } else { Out::Add };
            gemm(
                dqkv_m.cols(c0, n),
                mat(wt, n, h),
                MatMut::new(&mut dn1, m, h),
                out,
                true,
            );
        }
        drop((dqkv, n1));
        let mut dx = dx2;
        let dinput = rms_backward(&dn1, &a.x, &a.inv1, w.in_norm(), &mut dx);
        grads.push((0, dinput));
        Ok((dx, grads))
    }
}

/// What the fused language-model head keeps for its backward pass.
pub struct HeadActs {
    /// per output: the compact row of the trunk's output it reads [n]
    src: Vec<usize>,
    /// per output: the token it scores [n]
    targets: Vec<u32>,
    /// the trunk's output at those rows [n, h], its 1 / rms, the final norm
    xs: Vec<f32>,
    inv: Vec<f32>,
    hn: Vec<f32>,
    /// log-sum-exp and entropy of each output's distribution [n]
    lse: Vec<f32>,
    ent: Vec<f32>,
    /// each chunk's logits, when kept (else the backward recomputes them)
    logits: Vec<Vec<f32>>,
}

/// Per row of logits `z = logits / T`: (lse, entropy, log p(target)).
fn row_stats(row: &[f32], inv_t: f32, target: u32) -> (f32, f32, f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) * inv_t;
    let (mut s, mut sz) = (0f32, 0f32);
    for &v in row {
        let z = v * inv_t;
        let e = (z - max).exp();
        s += e;
        sz += e * z;
    }
    let lse = max + s.ln();
    (lse, lse - sz / s, row[target as usize] * inv_t - lse)
}

impl Trunk<'_> {
    /// The head's weight: the lm_head's, or the embedding when tied.
    fn head_weight(&self) -> &Tensor {
        match &self.model.lm_head {
            Some(l) => l.weight(),
            None => self.model.embed_tokens.embeddings(),
        }
    }

    /// For each of the B x R outputs of the head: the compact row of the
    /// trunk's output it reads and the token it scores; and R.
    fn head_sites(&self, index: Option<&Tensor>) -> Result<(usize, Vec<usize>, Vec<u32>)> {
        let (b, t) = (self.d.b, self.d.t);
        if t < 2 {
            return Err(invalid(
                "the log-prob head needs sequences of 2 tokens or more".into(),
            ));
        }
        let (r, at): (usize, Vec<u32>) = match index {
            Some(ix) => {
                let (ib, r) = ix.dims2()?;
                if ib != b {
                    return Err(invalid(format!("index has {ib} rows, the batch {b}")));
                }
                (r, ix.flatten_all()?.to_vec1()?)
            }
            None => (t - 1, (0..b).flat_map(|_| 0..(t - 1) as u32).collect()),
        };
        let mut src = Vec::with_capacity(b * r);
        let mut targets = Vec::with_capacity(b * r);
        for (i, &p) in at.iter().enumerate() {
            let p = p as usize;
            if p + 1 >= t {
                return Err(invalid(format!(
                    "index {p} is beyond the {} outputs",
                    t - 1
                )));
            }
            let row = i / r;
            if self.at[row * t + p] == NONE {
                return Err(invalid(format!(
                    "the log-prob head reads padded position {p} of row {row}, which a packed pass does not compute"
                )));
            }
            src.push(self.at[row * t + p]);
            targets.push(self.batch_ids[row * t + p + 1]);
        }
        Ok((r, src, targets))
    }

    /// The language-model head on the trunk's output `x` (compact, [m, h]), fused:
    /// the final norm, the logits a chunk of tokens at a time, each next
    /// token's log-prob and each distribution's entropy (logits divided by
    /// the head's temperature): ([B, R], [B, R]) and what the backward
    /// pass needs: with `keep_logits` every chunk's logits (tokens x
    /// vocabulary floats), else none (the backward pass recomputes them a
    /// chunk at a time).
    pub fn logprob_forward(
        &self,
        x: &[f32],
        head: &LogprobHead,
        keep_logits: bool,
    ) -> Result<(Tensor, Tensor, HeadActs)> {
        let (h, v) = (self.d.h, self.model.config().vocab_size);
        let (r, src, targets) = self.head_sites(head.index)?;
        let n = src.len();
        let mut xs = vec![0f32; n * h];
        xs.par_chunks_mut(h).zip(&src).for_each(|(dst, &s)| {
            dst.copy_from_slice(&x[s * h..(s + 1) * h]);
        });
        let (gn, ln) = self.model.norm.weight.storage_and_layout();
        let norm_w = values(&gn, ln, "the final norm")?;
        let mut hn = vec![0f32; n * h];
        let inv = rms_forward(&xs, norm_w, self.d.eps, &mut hn);
        let (gw, lw) = self.head_weight().storage_and_layout();
        let w = values(&gw, lw, "the head's weight")?;
        let inv_t = (1.0 / head.temperature) as f32;
        let (mut lse, mut ent, mut lp) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        let mut logits = Vec::new();
        let mut kept = Vec::new();
        for c0 in (0..n).step_by(HEAD_CHUNK) {
            let c = HEAD_CHUNK.min(n - c0);
            if keep_logits && c0 > 0 {
                kept.push(std::mem::take(&mut logits));
            }
            logits.clear();
            logits.resize(c * v, 0.0);
            let dst = MatMut::new(&mut logits, c, v);
            gemm(
                mat(&hn[c0 * h..(c0 + c) * h], c, h),
                mat(w, v, h).t(),
                dst,
                Out::Set,
                true,
            );
            logits
                .par_chunks(v)
                .zip(targets[c0..c0 + c].par_iter())
                .zip(lse[c0..c0 + c].par_iter_mut())
                .zip(
                    ent[c0..c0 + c]
                        .par_iter_mut()
                        .zip(lp[c0..c0 + c].par_iter_mut()),
                )
                .for_each(|(((row, &tg), l), (e, p))| (*l, *e, *p) = row_stats(row, inv_t, tg));
        }
        if keep_logits && n > 0 {
            kept.push(logits);
        }
        let b = self.d.b;
        let lp_t = Tensor::from_vec(lp, (b, r), &Device::Cpu)?;
        let ent_t = Tensor::from_vec(ent.clone(), (b, r), &Device::Cpu)?;
        Ok((
            lp_t,
            ent_t,
            HeadActs {
                src,
                targets,
                xs,
                inv,
                hn,
                lse,
                ent,
                logits: kept,
            },
        ))
    }

    /// The fused head's backward pass from the gradients of its log-probs
    /// and entropies ([B, R] row-major; None: not in the loss): the head's
    /// weight and the final norm's gradients to `sink`; returns the
    /// gradient of the trunk's output (compact, [m, h]).
    pub fn logprob_backward<E>(
        &self,
        mut a: HeadActs,
        head: &LogprobHead,
        g_lp: Option<Vec<f32>>,
        g_ent: Option<Vec<f32>>,
        sink: &mut dyn FnMut(&GradStore) -> std::result::Result<(), E>,
    ) -> std::result::Result<Vec<f32>, E>
    where
        E: From<ModelError> + From<candle_core::Error>,
    {
        let (h, v) = (self.d.h, self.model.config().vocab_size);
        let n = a.src.len();
        let mut gx = vec![0f32; self.d.m * h];
        if g_lp.is_none() && g_ent.is_none() {
            return Ok(gx);
        }
        for g in [&g_lp, &g_ent].into_iter().flatten() {
            if g.len() != n {
                return Err(invalid(format!(
                    "head gradient of {} values for {n} outputs",
                    g.len()
                ))
                .into());
            }
        }
        let inv_t = (1.0 / head.temperature) as f32;
        let wt = self.head_weight();
        let mut dw = vec![0f32; v * h];
        let mut dhn = vec![0f32; n * h];
        {
            let (gw, lw) = wt.storage_and_layout();
            let w = values(&gw, lw, "the head's weight")?;
            let mut logits = Vec::new();
            let mut kept = std::mem::take(&mut a.logits).into_iter();
            for c0 in (0..n).step_by(HEAD_CHUNK) {
                let c = HEAD_CHUNK.min(n - c0);
                let hc = mat(&a.hn[c0 * h..(c0 + c) * h], c, h);
                match kept.next() {
                    Some(l) => logits = l,
                    None => {
                        logits.clear();
                        logits.resize(c * v, 0.0);
                        let dst = MatMut::new(&mut logits, c, v);
                        gemm(hc, mat(w, v, h).t(), dst, Out::Set, true);
                    }
                }
                // d/dz of g_lp log p_t + g_ent H, times 1 / T, in place:
                // g_lp (onehot_t - p) - g_ent p (log p + H).
                logits.par_chunks_mut(v).enumerate().for_each(|(k, row)| {
                    let i = c0 + k;
                    let gl = g_lp.as_ref().map_or(0.0, |g| g[i]);
                    let ge = g_ent.as_ref().map_or(0.0, |g| g[i]);
                    let (lse, ent) = (a.lse[i], a.ent[i]);
                    if ge == 0.0 {
                        vmath::exp_affine_sum(row, inv_t, lse);
                        row.iter_mut().for_each(|p| *p *= -gl * inv_t);
                    } else {
                        for x in row.iter_mut() {
                            let logp = *x * inv_t - lse;
                            let p = logp.exp();
                            *x = (-gl * p - ge * p * (logp + ent)) * inv_t;
                        }
                    }
                    row[a.targets[i] as usize] += gl * inv_t;
                });
                let dl = mat(&logits, c, v);
                let dst = MatMut::new(&mut dhn[c0 * h..(c0 + c) * h], c, h);
                gemm(dl, mat(w, v, h), dst, Out::Set, true);
                let out = if c0 == 0 { Out::Set } else { Out::Add };
                gemm(dl.t(), hc, MatMut::new(&mut dw, v, h), out, true);
            }
        }
        let (gn, ln) = self.model.norm.weight.storage_and_layout();
        let norm_w = values(&gn, ln, "the final norm")?;
        let mut dxs = vec![0f32; n * h];
        let dnorm = rms_backward(&dhn, &a.xs, &a.inv, norm_w, &mut dxs);
        drop(gn);
        for (row, &s) in dxs.chunks_exact(h).zip(&a.src) {
            let dst = &mut gx[s * h..(s + 1) * h];
            dst.iter_mut().zip(row).for_each(|(d, g)| *d += g);
        }
        let mut store = GradStore::default();
        store.insert(wt, Tensor::from_vec(dw, wt.shape(), &Device::Cpu)?);
        let nw = &self.model.norm.weight;
        store.insert(nw, Tensor::from_vec(dnorm, nw.shape(), &Device::Cpu)?);
        sink(&store)?;
        Ok(gx)
    }
}
