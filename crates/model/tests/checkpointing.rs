//! Activation checkpointing gives the gradients of the plain path: every
//! parameter, f32, within 1e-5 (relative to the parameter's largest
//! gradient when that exceeds 1: f32 rounding of sums taken in another
//! order), on tiny Llama (untied, tied) and Qwen2
//! (q/k/v biases) models with grouped-query attention, for the policy's
//! log-prob head (entropy in the loss, the head a row at a time) and the
//! critic's value head.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Device, Tensor};
use candle_nn::VarMap;
use model::checkpointing::{forward_backward, Head, Pass};
use model::model::{Batch, ResponseBatch};
use model::{Checkpoint, Config, ModelError};

fn tiny(model_type: &str, tied: bool) -> Config {
    serde_json::from_value(serde_json::json!({
        "model_type": model_type,
        "vocab_size": 61,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 128,
        "tie_word_embeddings": tied,
        "eos_token_id": 2,
    }))
    .unwrap()
}

fn responses() -> ResponseBatch {
    let pairs: Vec<(&[u32], &[u32])> = vec![
        (&[5, 9, 13], &[7, 21, 3, 40]),
        (&[11], &[4, 60]),
        (&[8, 8, 1, 30], &[2]),
    ];
    ResponseBatch::new(&pairs, 0, &Device::Cpu).unwrap()
}

/// Every variable's gradient after one pass, summed over the stores.
fn grads_of(
    varmap: &VarMap,
    run: impl FnOnce(&mut dyn FnMut(&GradStore) -> Result<(), ModelError>) -> f32,
) -> (f32, HashMap<String, Vec<f32>>) {
    let vars = varmap.data().lock().unwrap().clone();
    let mut sums: HashMap<String, Vec<f32>> = HashMap::new();
    let loss = run(&mut |store: &GradStore| {
        for (name, var) in &vars {
            if let Some(g) = store.get(var.as_tensor()) {
                let g = g.flatten_all()?.to_vec1::<f32>()?;
                let e = sums
                    .entry(name.clone())
                    .or_insert_with(|| vec![0.0; g.len()]);
                e.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            }
        }
        Ok(())
    });
    (loss, sums)
}

fn assert_close(what: &str, a: &HashMap<String, Vec<f32>>, b: &HashMap<String, Vec<f32>>) {
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: the same parameters get gradients"
    );
    for (name, ga) in a {
        let gb = &b[name];
        let worst = ga
            .iter()
            .zip(gb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let scale = ga.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(
            worst <= 1e-5 * scale.max(1.0),
            "{what}: {name} differs by {worst} (largest gradient {scale})"
        );
        assert!(
            ga.iter().any(|&x| x != 0.0),
            "{what}: {name} has a zero gradient"
        );
    }
}

/// A loss that is not linear in the outputs: a weighted sum, the
/// probabilities and an entropy term (gradients of order 1).
fn policy_loss(outs: &[Tensor], mask: &Tensor) -> Result<(Tensor, f32), ModelError> {
    let (lp, ent) = (&outs[0], &outs[1]);
    let w = Tensor::new(&[[1.0f32, -0.5, 2.0, 0.3]], lp.device())?.broadcast_as(lp.shape())?;
    let a = (lp * &w)?.mul(mask)?.sum_all()?;
    let b = (lp.exp()? * mask)?.sum_all()?;
    let c = ((ent * mask)?.sum_all()? * 0.1)?;
    let loss = ((a + b)? - c)?;
    let v = loss.to_scalar::<f32>()?;
    Ok((loss, v))
}

#[test]
fn checkpointed_policy_gradients_equal_the_plain_path() {
    for (ty, tied) in [("llama", false), ("llama", true), ("qwen2", false)] {
        let ck = Checkpoint::random(tiny(ty, tied), &Device::Cpu, DType::F32).unwrap();
        let rb = responses();
        let head = ck
            .model
            .logprob_head_of(&rb.batch, Some(&rb.index), 0.7, true);
        let pass = |checkpointing| {
            grads_of(&ck.varmap, |sink| {
                let p = Pass {
                    checkpointing,
                    head_rows: 1,
                };
                forward_backward(
                    &ck.model,
                    &rb.batch,
                    &head as &Head,
                    p,
                    |o| policy_loss(o, &rb.mask),
                    sink,
                )
                .unwrap()
            })
        };
        let (l_plain, g_plain) = pass(false);
        let (l_ckpt, g_ckpt) = pass(true);
        assert!(
            (l_plain - l_ckpt).abs() <= 1e-5 * l_plain.abs().max(1.0),
            "{ty}: loss {l_plain} vs {l_ckpt}"
        );
        assert_eq!(
            g_plain.len(),
            ck.varmap.all_vars().len(),
            "{ty}: every parameter"
        );
        assert_close(&format!("{ty} tied={tied}"), &g_plain, &g_ckpt);
    }
}

#[test]
fn checkpointed_critic_gradients_equal_the_plain_path() {
    let dir = tempfile::tempdir().unwrap();
    model::tiny::write_tiny(dir.path(), 32, 3, 7).unwrap();
    let critic = model::Critic::from_policy(dir.path(), &Device::Cpu, DType::F32).unwrap();
    // A value head away from zero, so the trunk gets gradients.
    for v in critic.varmap.all_vars() {
        if v.dims() == [1, 32] {
            v.set(&Tensor::ones((1, 32), DType::F32, &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    let batch = Batch::right_padded(&[vec![5, 9, 13, 7], vec![11, 4]], 0, &Device::Cpu).unwrap();
    let head = critic.head();
    let pass = |checkpointing| {
        grads_of(&critic.varmap, |sink| {
            let p = Pass {
                checkpointing,
                head_rows: 1,
            };
            forward_backward(
                &critic.model,
                &batch,
                &head as &Head,
                p,
                |o| {
                    let target = Tensor::new(&[[1f32, -1.0, 0.5], [0.2, 0.0, 0.0]], &Device::Cpu)?;
                    let loss = (&o[0] - target)?.sqr()?.sum_all()?;
                    let v = loss.to_scalar::<f32>()?;
                    Ok::<_, ModelError>((loss, v))
                },
                sink,
            )
            .unwrap()
        })
    };
    let (l_plain, g_plain) = pass(false);
    let (l_ckpt, g_ckpt) = pass(true);
    assert!((l_plain - l_ckpt).abs() <= 1e-5 * l_plain.abs().max(1.0));
    assert_close("critic", &g_plain, &g_ckpt);
}
