//! The training step bench/train.sh times, the same loop as bench/train.py
//! runs in PyTorch: `train_bench MODEL ROWS SEQ STEPS [WARMUP]` runs STEPS steps of
//! forward + backward + gradient clipping + AdamW on ROWS x SEQ random
//! token ids (the mean next-token loss over every position, as
//! transformers' `labels=input_ids`), f32, and then writes one checkpoint
//! with its optimizer state. The first WARMUP steps (default 1) are not
//! timed. Prints the
//! steady steps' tokens/s, the share of a step each part takes, and the
//! peak RSS:
//! `ours rows=R seq=T steps=S tokens_per_s=X peak_rss_gb=Y fwd_bwd=..% clip=..% adamw=..% checkpoint=..%`.
//! `--engine candle` trains through candle's autograd instead of the CPU
//! training pass; `--checkpointing` turns activation checkpointing on.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use model::checkpointing::{forward_backward, Engine, Packing, Pass};
use model::model::Batch;
use train::{AdamWConfig, Trainable};

/// Peak resident set of this process in GB (VmHWM).
fn peak_rss_gb() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024.0 / 1e9)
}

pub fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let pos: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--engine"))
        .map(|(_, a)| a)
        .collect();
    let (model_dir, rows, seq, steps, warmup) = match pos[..] {
        [m, r, s, n] => (m, r, s, n, "1"),
        [m, r, s, n, w] => (m, r, s, n, w.as_str()),
        _ => bail!(
            "usage: train_bench MODEL ROWS SEQ STEPS [WARMUP] [--engine candle] [--checkpointing]"
        ),
    };
    let (rows, seq, steps): (usize, usize, usize) = (rows.parse()?, seq.parse()?, steps.parse()?);
    let warmup: usize = warmup.parse()?;
    if warmup >= steps {
        bail!("{steps} steps leave none after {warmup} warm-up steps");
    }
    let engine = match args.iter().position(|a| a == "--engine") {
        Some(i) => match args.get(i + 1).map(String::as_str) {
            Some("candle") => Engine::Candle,
            Some("auto") => Engine::Auto,
            other => bail!("--engine {other:?}: auto or candle"),
        },
        None => Engine::Auto,
    };
    let ck = model::Checkpoint::load(model_dir, &Device::Cpu, DType::F32)?;
    let mut trainee = Trainable::new(
        &ck.varmap,
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        },
        None,
    )?;
    let vocab = ck.config.vocab_size as u64;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let ids: Vec<Vec<u32>> = (0..rows)
        .map(|_| {
            (0..seq)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % vocab) as u32
                })
                .collect()
        })
        .collect();
    let batch = Batch::right_padded(&ids, 0, &Device::Cpu)?;
    let pass = Pass {
        checkpointing: flag("--checkpointing"),
        head_rows: ck.model.head_rows(seq),
        engine,
        packing: Packing::Packed,
    };
    let head = ck.model.logprob_head_of(&batch, None, 1.0, false);
    let (mut fb, mut clip, mut adamw) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..steps {
        let t0 = Instant::now();
        let mut grads = trainee.grads();
        let loss = forward_backward(
            &ck.model,
            &batch,
            &head,
            pass,
            |outs: &[Tensor]| -> Result<(Tensor, f32)> {
                let nll = outs[0].neg()?.mean_all()?;
                let v = nll.to_scalar::<f32>()?;
                Ok((nll, v))
            },
            &mut |store| Ok(grads.add(&trainee.params, store)?),
        )?;
        let t1 = Instant::now();
        let norm = grads.norm();
        let coef = train::clip_coef(norm, 1.0);
        let t2 = Instant::now();
        trainee.opt.step(&trainee.params, &grads, 1e-5, coef)?;
        let t3 = Instant::now();
        eprintln!(
            "step {step}: loss {loss:.4} grad_norm {norm:.3} fwd+bwd {:.2}s clip {:.3}s adamw {:.3}s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64()
        );
        if step >= warmup {
            fb.push((t1 - t0).as_secs_f64());
            clip.push((t2 - t1).as_secs_f64());
            adamw.push((t3 - t2).as_secs_f64());
        }
    }
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    ck.save_with(dir.path().join("ckpt"), None, &|d| trainee.save_state(d))?;
    let save = t.elapsed().as_secs_f64();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (fb, clip, adamw) = (mean(&fb), mean(&clip), mean(&adamw));
    let step = fb + clip + adamw;
    let pct = |x: f64| 100.0 * x / step;
    println!(
        "ours rows={rows} seq={seq} steps={steps} warmup={warmup} tokens_per_s={:.1} peak_rss_gb={:.2} \
         fwd_bwd={:.1}% clip={:.2}% adamw={:.1}% checkpoint={:.1}% (one save, {save:.2}s, vs one step {step:.2}s)",
        (rows * seq) as f64 / step,
        peak_rss_gb()?,
        pct(fb),
        pct(clip),
        pct(adamw),
        pct(save),
    );
    Ok(())
}
