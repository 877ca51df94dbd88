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

use crate::model::{Batch, Model};
use crate::{ModelError, Result};

/// A head: the last decoder layer's output for rows `rows` of the batch,
/// `[b, T, H]` (before the final norm) -> per-row outputs, each `[b, ..]`.
pub type Head<'a> = dyn Fn(&Tensor, Range<usize>) -> Result<Vec<Tensor>> + 'a;

/// How a training pass keeps its activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// keep only each layer's input and recompute the layer in backward
    pub checkpointing: bool,
    /// rows of the batch the head runs at once when checkpointing
    pub head_rows: usize,
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
fn head_nograd(x: &Tensor, head: &Head, rows: usize) -> Result<Vec<Tensor>> {
    let mut parts: Vec<Vec<Tensor>> = Vec::new();
    for r in row_chunks(x.dim(0)?, rows) {
        let xr = x.narrow(0, r.start, r.len())?;
        let outs = head(&xr, r)?;
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
/// the head runs `head_rows` rows at a time.
pub fn outputs_nograd(
    model: &Model,
    batch: &Batch,
    head: &Head,
    head_rows: usize,
) -> Result<Vec<Tensor>> {
    let mask = model.batch_mask(batch)?;
    let x = model.forward_trunk(&batch.ids, &batch.positions, &mask, None, true)?;
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
    head: &Head,
    pass: Pass,
    loss: impl FnOnce(&[Tensor]) -> Result<(Tensor, T), E>,
    sink: &mut dyn FnMut(&GradStore) -> Result<(), E>,
) -> Result<T, E>
where
    E: From<ModelError> + From<candle_core::Error>,
{
    let mask = model.batch_mask(batch)?;
    let (ids, pos) = (&batch.ids, &batch.positions);
    if !pass.checkpointing {
        let x = model.forward_trunk(ids, pos, &mask, None, false)?;
        let outs = head(&x, 0..x.dim(0)?)?;
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
    // 2. The head's outputs as leaves; the loss; its gradient at them.
    let leaves = head_nograd(&x, head, pass.head_rows)?
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
    // 3. The head again, a chunk of rows at a time, with gradients.
    let mut gx = Vec::new();
    for r in row_chunks(x.dim(0)?, pass.head_rows) {
        let xv = Var::from_tensor(&x.narrow(0, r.start, r.len())?)?;
        let outs = head(xv.as_tensor(), r.clone())?;
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
    drop(x);
    let mut g = Tensor::cat(&gx, 0)?;
    drop(gx);
    // 4. The layers, last to first, each recomputed from its input.
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
    // 5. The embedding.
    let e = model.embed(ids)?;
    let store = (e * &g)?.sum_all()?.backward()?;
    sink(&store)?;
    Ok(t)
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
    ) -> impl Fn(&Tensor, Range<usize>) -> Result<Vec<Tensor>> + 'a {
        move |x: &Tensor, rows: Range<usize>| {
            let ids = batch.ids.narrow(0, rows.start, rows.len())?;
            let ix = index
                .map(|ix| ix.narrow(0, rows.start, rows.len()))
                .transpose()?;
            let out = self.logprob_head(x, &ids, temperature, ix.as_ref(), entropy_grad)?;
            Ok(vec![out.logprobs, out.entropy])
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
