//! Training passes that bound the memory of activations.
//!
//! [`forward_backward`] runs a head (the language-model head's log-probs,
//! or the critic's values) on the decoder's output, a loss on the head's
//! outputs, and backpropagates. With activation checkpointing it keeps
//! only each decoder layer's input during the forward pass and recomputes
//! one layer at a time during the backward pass, so the activations alive
//! at once are those of one layer (plus the layers' inputs) instead of
//! the whole graph; the head runs a few rows at a time, so no
//! vocabulary-sized tensor covers the whole micro-batch.
//!
//! The backward pass of a recomputed layer is driven by the gradient of
//! its output: `sum(y * g)` has gradient `g` at `y`, so backpropagating
//! it from the layer's input (a fresh variable) gives the layer's
//! parameter gradients and the gradient of its input, which drives the
//! layer below.

use std::ops::Range;

use candle_core::{backprop::GradStore, Tensor, Var};

pub use crate::cpu::train::Packing;
use crate::cpu::train::{Keep, Trunk};
use crate::model::{Batch, LogprobHead, Model};
use crate::{ModelError, Result};

/// A head: the last decoder layer's output for rows `rows` of the batch,
/// `[b, T, H]` (before the final norm) -> per-row outputs, each `[b, ..]`.
/// Any such closure is a head (the critic's value head is one).
pub trait Head {
    fn outputs(&self, x: &Tensor, rows: Range<usize>) -> Result<Vec<Tensor>>;
    /// The language-model head's settings, when this is it: the CPU
    /// training pass computes it fused, a chunk of tokens at a time.
    fn logprobs(&self) -> Option<&LogprobHead<'_>> {
        None
    }
}

impl<F> Head for F
where
    F: Fn(&Tensor, Range<usize>) -> Result<Vec<Tensor>>,
{
    fn outputs(&self, x: &Tensor, rows: Range<usize>) -> Result<Vec<Tensor>> {
        self(x, rows)
    }
}

impl Head for LogprobHead<'_> {
    fn outputs(&self, x: &Tensor, rows: Range<usize>) -> Result<Vec<Tensor>> {
        let ids = self.batch.ids.narrow(0, rows.start, rows.len())?;
        let ix = self
            .index
            .map(|ix| ix.narrow(0, rows.start, rows.len()))
            .transpose()?;
        let out =
            self.model
                .logprob_head(x, &ids, self.temperature, ix.as_ref(), self.entropy_grad)?;
        Ok(vec![out.logprobs, out.entropy])
    }
    fn logprobs(&self) -> Option<&LogprobHead<'_>> {
        Some(self)
    }
}

/// How a training pass keeps its activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// keep only each layer's input and recompute the layer in backward
    pub checkpointing: bool,
    /// rows of the batch the head runs at once when checkpointing
    pub head_rows: usize,
    /// what runs the decoder's layers
    pub engine: Engine,
    /// the positions the CPU pass computes: a prefix that rows share (a
    /// prompt's samples, a common system turn) once, and packed, no
    /// padding ([`Packing`]); candle's path computes every position
    pub packing: Packing,
}

/// What runs the decoder's layers in a training pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The hand-written CPU pass ([`crate::cpu::train`]) for f32 models on
    /// the CPU; candle's autograd for every other device and dtype.
    #[default]
    Auto,
    /// candle's autograd everywhere (the reference the CPU pass is tested
    /// against).
    Candle,
}

impl Engine {
    fn native(self, model: &Model) -> bool {
        self == Engine::Auto && crate::cpu::train::supported(model)
    }
}

/// The row ranges of `b` rows, `per` at a time.
fn row_chunks(b: usize, per: usize) -> Vec<Range<usize>> {
    (0..b)
        .step_by(per.max(1))
        .map(|s| s..(s + per.max(1)).min(b))
        .collect()
}

/// `head` over the rows of `x` in chunks, without gradients; the chunks'
/// outputs concatenated along the rows.
fn head_nograd(x: &Tensor, head: &dyn Head, rows: usize) -> Result<Vec<Tensor>> {
    let mut parts: Vec<Vec<Tensor>> = Vec::new();
    for r in row_chunks(x.dim(0)?, rows) {
        let xr = x.narrow(0, r.start, r.len())?;
        let outs = head.outputs(&xr, r)?;
        for (k, o) in outs.into_iter().enumerate() {
            if parts.len() <= k {
                parts.push(Vec::new());
            }
            parts[k].push(o.detach());
        }
    }
    Ok(parts
        .iter()
        .map(|p| Tensor::cat(p, 0))
        .collect::<candle_core::Result<_>>()?)
}

/// The head's outputs for a batch without gradients (scoring passes):
/// each layer's intermediates are freed as soon as its output exists and
/// the head runs `head_rows` rows at a time; the CPU pass computes the
/// positions `packing` says.
pub fn outputs_nograd(
    model: &Model,
    batch: &Batch,
    head: &dyn Head,
    head_rows: usize,
    packing: Packing,
) -> Result<Vec<Tensor>> {
    let x = if Engine::Auto.native(model) {
        let trunk = Trunk::new(model, batch, packing)?;
        let x = trunk.forward(Keep::Nothing)?.0;
        if let Some(lh) = head.logprobs() {
            let (lp, ent, _) = trunk.logprob_forward(&x, lh, false)?;
            return Ok(vec![lp, ent]);
        }
        trunk.tensor(x)?
    } else {
        let mask = model.batch_mask(batch)?;
        model.forward_trunk(&batch.ids, &batch.positions, &mask, None, true)?
    };
    head_nograd(&x, head, head_rows)
}

/// `sum_k sum(outs_k * grads_k)` over the outputs that have a gradient
/// (None when none has).
fn surrogate(outs: &[Tensor], grads: &[Option<Tensor>]) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for (o, g) in outs.iter().zip(grads) {
        let Some(g) = g else { continue };
        let term = (o * g.to_dtype(o.dtype())?)?.sum_all()?;
        total = Some(match total {
            None => term,
            Some(t) => (t + term)?,
        });
    }
    Ok(total)
}

/// One forward and backward pass of `model` on `batch`: `head` on the
/// decoder's output, `loss` on the head's outputs (the loss to
/// backpropagate, and whatever the caller measured), the gradients handed
/// to `sink`. Checkpointed, `sink` is called once per layer (and for the
/// head chunks and the embedding), each store holding part of the
/// parameters' gradients: the caller adds them up (tied weights get a
/// part from the embedding and one from the head).
pub fn forward_backward<T, E>(
    model: &Model,
    batch: &Batch,
    head: &dyn Head,
    pass: Pass,
    loss: impl FnOnce(&[Tensor]) -> Result<(Tensor, T), E>,
    sink: &mut dyn FnMut(&GradStore) -> Result<(), E>,
) -> Result<T, E>
where
    E: From<ModelError> + From<candle_core::Error>,
{
    if pass.engine.native(model) {
        let trunk = Trunk::new(model, batch, pass.packing)?;
        let keep = if pass.checkpointing {
            Keep::Inputs
        } else {
            Keep::Activations
        };
        let (x, saved) = trunk.forward(keep)?;
        let (t, g) = match head.logprobs() {
            Some(lh) => fused_head(&trunk, x, lh, !pass.checkpointing, loss, sink)?,
            None => {
                let x = trunk.tensor(x)?;
                let (t, g) = if pass.checkpointing {
                    head_chunked(&x, head, pass.head_rows, loss, sink)?
                } else {
                    head_whole(&x, head, loss, sink)?
                };
                (t, trunk.compact(&g.flatten_all()?.to_vec1()?)?)
            }
        };
        trunk.backward(saved, g, sink)?;
        return Ok(t);
    }
    let mask = model.batch_mask(batch)?;
    let (ids, pos) = (&batch.ids, &batch.positions);
    if !pass.checkpointing {
        let x = model.forward_trunk(ids, pos, &mask, None, false)?;
        let outs = head.outputs(&x, 0..x.dim(0)?)?;
        let (l, t) = loss(&outs)?;
        sink(&l.backward()?)?;
        return Ok(t);
    }
    // 1. Each layer's input, without a graph.
    let n = model.num_layers();
    let mut inputs = Vec::with_capacity(n);
    let mut x = model.embed(ids)?.detach();
    for i in 0..n {
        let y = model.layer(i, &x, pos, &mask, None)?.detach();
        inputs.push(x);
        x = y;
    }
    let (t, mut g) = head_chunked(&x, head, pass.head_rows, loss, sink)?;
    drop(x);
    // 2. The head and the loss (head_chunked).
    // 3. The layers, last to first, each recomputed from its input.
    for i in (0..n).rev() {
        let input = inputs.pop().expect("one input per layer");
        let xv = Var::from_tensor(&input)?;
        drop(input);
        let y = model.layer(i, xv.as_tensor(), pos, &mask, None)?;
        let store = (y * &g)?.sum_all()?.backward()?;
        sink(&store)?;
        g = match store.get(xv.as_tensor()) {
            Some(g) => g.clone(),
            None => xv.as_tensor().zeros_like()?,
        };
    }
    // 4. The embedding.
    let e = model.embed(ids)?;
    let store = (e * &g)?.sum_all()?.backward()?;
    sink(&store)?;
    Ok(t)
}

/// The head on `x` (the last layer's output), the loss on its outputs,
/// the head's parameter gradients to `sink`; returns the loss's value
/// and the gradient at `x`. The head runs `head_rows` rows at a time:
/// first without gradients (the loss needs every row's outputs), then
/// again with them, chunk by chunk, driven by the loss's gradient at the
/// outputs.
fn head_chunked<T, E>(
    x: &Tensor,
    head: &dyn Head,
    head_rows: usize,
    loss: impl FnOnce(&[Tensor]) -> Result<(Tensor, T), E>,
    sink: &mut dyn FnMut(&GradStore) -> Result<(), E>,
) -> Result<(T, Tensor), E>
where
    E: From<ModelError> + From<candle_core::Error>,
{
    // The head's outputs as leaves; the loss; its gradient at them.
    let leaves = head_nograd(x, head, head_rows)?
        .iter()
        .map(Var::from_tensor)
        .collect::<candle_core::Result<Vec<_>>>()?;
    let leaf_tensors: Vec<Tensor> = leaves.iter().map(|v| v.as_tensor().clone()).collect();
    let (l, t) = loss(&leaf_tensors)?;
    let out_grads: Vec<Option<Tensor>> = {
        let store = l.backward()?;
        leaves
            .iter()
            .map(|v| store.get(v.as_tensor()).cloned())
            .collect()
    };
    drop((leaves, leaf_tensors, l));
    // The head again, a chunk of rows at a time, with gradients.
    let mut gx = Vec::new();
    for r in row_chunks(x.dim(0)?, head_rows) {
        let xv = Var::from_tensor(&x.narrow(0, r.start, r.len())?)?;
        let outs = head.outputs(xv.as_tensor(), r.clone())?;
        let grads: Vec<Option<Tensor>> = out_grads
            .iter()
            .map(|g| {
                g.as_ref()
                    .map(|g| g.narrow(0, r.start, r.len()))
                    .transpose()
            })
            .collect::<candle_core::Result<_>>()?;
        let g = match surrogate(&outs, &grads)? {
            Some(s) => {
                let store = s.backward()?;
                sink(&store)?;
                store.get(xv.as_tensor()).cloned()
            }
            None => None,
        };
        gx.push(match g {
            Some(g) => g,
            None => xv.as_tensor().zeros_like()?,
        });
    }
    Ok((t, Tensor::cat(&gx, 0)?))
}

/// The fused language-model head of the CPU training pass on the trunk's
/// output `x` (its logits kept for the backward pass when `keep_logits`,
/// else recomputed a chunk at a time), the loss on its outputs (log-probs, entropies), the head's
/// gradients to `sink`; returns the loss's value and the gradient at `x`.
/// The entropies carry a gradient only when the head asks for it.
fn fused_head<T, E>(
    trunk: &Trunk,
    x: Vec<f32>,
    lh: &LogprobHead,
    keep_logits: bool,
    loss: impl FnOnce(&[Tensor]) -> Result<(Tensor, T), E>,
    sink: &mut dyn FnMut(&GradStore) -> Result<(), E>,
) -> Result<(T, Vec<f32>), E>
where
    E: From<ModelError> + From<candle_core::Error>,
{
    let (lp, ent, acts) = trunk.logprob_forward(&x, lh, keep_logits)?;
    drop(x);
    let lp = Var::from_tensor(&lp)?;
    let ent_var = lh
        .entropy_grad
        .then(|| Var::from_tensor(&ent))
        .transpose()?;
    let outs = [
        lp.as_tensor().clone(),
        ent_var.as_ref().map_or(ent, |v| v.as_tensor().clone()),
    ];
    let (l, t) = loss(&outs)?;
    let store = l.backward()?;
    let grad = |v: &Var| -> Result<Option<Vec<f32>>> {
        Ok(store
            .get(v.as_tensor())
            .map(|g| g.flatten_all()?.to_vec1::<f32>())
            .transpose()?)
    };
    let g_lp = grad(&lp)?;
    let g_ent = ent_var.as_ref().map(grad).transpose()?.flatten();
    drop((store, l, outs));
    let g = trunk.logprob_backward(acts, lh, g_lp, g_ent, sink)?;
    Ok((t, g))
}

/// The head and the loss in one graph over every row of `x` (whose
/// layers are not in the graph): the head's parameter gradients to `sink`;
/// returns the loss's value and the gradient at `x`.
fn head_whole<T, E>(
    x: &Tensor,
    head: &dyn Head,
    loss: impl FnOnce(&[Tensor]) -> Result<(Tensor, T), E>,
    sink: &mut dyn FnMut(&GradStore) -> Result<(), E>,
) -> Result<(T, Tensor), E>
where
    E: From<ModelError> + From<candle_core::Error>,
{
    let xv = Var::from_tensor(x)?;
    let outs = head.outputs(xv.as_tensor(), 0..x.dim(0)?)?;
    let (l, t) = loss(&outs)?;
    let store = l.backward()?;
    sink(&store)?;
    let g = match store.get(xv.as_tensor()) {
        Some(g) => g.clone(),
        None => x.zeros_like()?,
    };
    Ok((t, g))
}

impl Model {
    /// The language-model head as a [`Head`] for `batch`: the log-probs
    /// and entropies ([`Model::logprob_head`]) of the rows asked for, at
    /// `index` ([B, R]) when given.
    pub fn logprob_head_of<'a>(
        &'a self,
        batch: &'a Batch,
        index: Option<&'a Tensor>,
        temperature: f64,
        entropy_grad: bool,
    ) -> LogprobHead<'a> {
        LogprobHead {
            model: self,
            batch,
            index,
            temperature,
            entropy_grad,
        }
    }

    /// Rows of `width` positions the language-model head takes at once
    /// ([`head_rows`] for this model's config).
    pub fn head_rows(&self, width: usize) -> usize {
        head_rows(self.config(), width)
    }
}

/// Rows of `width` positions the language-model head of a model with
/// `cfg` takes at once, so its vocabulary-sized tensors (logits, their f32
/// copy and their gradient) stay near 256 MB.
pub fn head_rows(cfg: &crate::Config, width: usize) -> usize {
    const BUDGET: usize = 256 << 20;
    let per_row = width.max(1) * cfg.vocab_size * 12;
    (BUDGET / per_row).max(1)
}
