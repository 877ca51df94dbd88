//! Per-token log-probs of given targets from logits, keeping nothing but
//! the logits for the backward pass: log-softmax, gather and temperature
//! fused into one differentiable op (the log-softmax of a
//! `tokens x vocab` matrix would otherwise keep three more copies of it
//! alive until backward, 400 MB each for 8 x 256 tokens of a 49k vocab).

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Storage, Tensor, D};
use rayon::prelude::*;

use crate::Result;

/// log p(target_i) under softmax(logits_i / T), for logits [N, V] (f32,
/// contiguous). Gradient: (onehot(target) - softmax) / T.
struct TargetLogprob {
    targets: Vec<u32>,
    inv_t: f32,
}

fn contiguous_rows<'a>(
    s: &'a [f32],
    layout: &Layout,
) -> candle_core::Result<(&'a [f32], usize, usize)> {
    let (n, v) = layout.shape().dims2()?;
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("target-logprob: logits must be contiguous".into())
    })?;
    Ok((&s[start..end], n, v))
}

/// Log-sum-exp of a row scaled by `inv_t`.
fn lse(row: &[f32], inv_t: f32) -> f32 {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) * inv_t;
    let s: f32 = row.iter().map(|&x| (x * inv_t - m).exp()).sum();
    m + s.ln()
}

impl CustomOp1 for TargetLogprob {
    fn name(&self) -> &'static str {
        "target-logprob"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, n, v) = contiguous_rows(storage.as_slice::<f32>()?, layout)?;
        let out: Vec<f32> = x
            .par_chunks(v)
            .zip(self.targets.par_iter())
            .map(|(row, &t)| row[t as usize] * self.inv_t - lse(row, self.inv_t))
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res.to_vec1::<f32>()?;
        let (guard, layout) = arg.storage_and_layout();
        let Storage::Cpu(cpu) = &*guard else {
            return Err(candle_core::Error::Msg("target-logprob: cpu only".into()));
        };
        let (x, n, v) = contiguous_rows(cpu.as_slice::<f32>()?, layout)?;
        let mut out = vec![0f32; n * v];
        out.par_chunks_mut(v)
            .zip(x.par_chunks(v))
            .zip(self.targets.par_iter().zip(g.par_iter()))
            .for_each(|((o, row), (&t, &gi))| {
                let l = lse(row, self.inv_t);
                let k = gi * self.inv_t;
                for (o, &xj) in o.iter_mut().zip(row) {
                    *o = -k * (xj * self.inv_t - l).exp();
                }
                o[t as usize] += k;
            });
        drop(guard);
        Ok(Some(Tensor::from_vec(out, (n, v), arg.device())?))
    }
}

/// Entropy of softmax(logits_i / T) per row, for logits [N, V]; no gradient.
struct RowEntropy {
    inv_t: f32,
}

impl CustomOp1 for RowEntropy {
    fn name(&self) -> &'static str {
        "row-entropy"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, n, v) = contiguous_rows(storage.as_slice::<f32>()?, layout)?;
        let out: Vec<f32> = x
            .par_chunks(v)
            .map(|row| {
                let l = lse(row, self.inv_t);
                // H = lse - sum p z
                let pz: f32 = row
                    .iter()
                    .map(|&xj| {
                        let z = xj * self.inv_t;
                        (z - l).exp() * z
                    })
                    .sum();
                l - pz
            })
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }
}

/// Log-probs of `targets` [B, N] (u32) and entropies under logits
/// [B, N, V] / `temperature`: ([B, N], [B, N]). The log-probs are
/// differentiable; the entropy is too only with `entropy_grad` (it then
/// costs the vocabulary-sized intermediates the fused path avoids).
pub fn logprobs_and_entropy(
    logits: &Tensor,
    targets: &Tensor,
    temperature: f64,
    entropy_grad: bool,
) -> Result<(Tensor, Tensor)> {
    let (b, n, v) = logits.dims3()?;
    let on_cpu = logits.device().is_cpu() && logits.dtype() == DType::F32;
    if on_cpu && !entropy_grad {
        let flat = logits.reshape((b * n, v))?.contiguous()?;
        let inv_t = (1.0 / temperature) as f32;
        let t: Vec<u32> = targets.flatten_all()?.to_vec1::<u32>()?;
        let lp = flat.apply_op1(TargetLogprob { targets: t, inv_t })?;
        let ent = flat.detach().apply_op1(RowEntropy { inv_t })?;
        return Ok((lp.reshape((b, n))?, ent.reshape((b, n))?));
    }
    // The plain differentiable path (other devices and dtypes, or an
    // entropy bonus in the loss).
    let mut logits = if logits.dtype() == DType::F64 {
        logits.clone()
    } else {
        logits.to_dtype(DType::F32)?
    };
    if temperature != 1.0 {
        logits = (logits / temperature)?;
    }
    let m = logits.max_keepdim(D::Minus1)?.detach();
    let z = logits.broadcast_sub(&m)?;
    let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = z.broadcast_sub(&lse)?;
    let lp = logp
        .gather(&targets.contiguous()?.unsqueeze(D::Minus1)?, D::Minus1)?
        .squeeze(D::Minus1)?;
    let ent = (logp.exp()? * &logp)?.sum(D::Minus1)?.neg()?;
    Ok((lp, ent))
}
