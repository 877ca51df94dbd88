//! Each function on a tiny case computed by hand.

use candle_core::{Device, Tensor, Var};
use rl::*;

fn t(rows: &[Vec<f32>]) -> Tensor {
    from_rows(rows, &Device::Cpu).unwrap()
}
fn v2(x: &Tensor) -> Vec<Vec<f32>> {
    x.to_vec2::<f32>().unwrap()
}
fn s(x: &Tensor) -> f32 {
    x.to_scalar::<f32>().unwrap()
}
fn close(a: f32, b: f32) {
    assert!((a - b).abs() < 1e-4, "{a} != {b}");
}
fn close_rows(a: &[Vec<f32>], b: &[Vec<f32>]) {
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            close(*x, *y);
        }
    }
}

#[test]
fn gae_with_lambda_one_is_return_minus_value() {
    let r = t(&[vec![0., 0., 1.], vec![0., 1., 0.]]);
    let v = t(&[vec![0.5, 0.6, 0.7], vec![0.5, 0.6, 9.0]]);
    let m = t(&[vec![1., 1., 1.], vec![1., 1., 0.]]);
    let (adv, ret) = gae(&r, &v, &m, 1.0, 1.0).unwrap();
    close_rows(&v2(&adv), &[vec![0.5, 0.4, 0.3], vec![0.5, 0.4, 0.0]]);
    close_rows(&v2(&ret), &[vec![1.0, 1.0, 1.0], vec![1.0, 1.0, 0.0]]);
}

#[test]
fn gae_with_lambda_half() {
    let r = t(&[vec![0., 0., 1.]]);
    let v = t(&[vec![0.5, 0.6, 0.7]]);
    let m = t(&[vec![1., 1., 1.]]);
    let (adv, ret) = gae(&r, &v, &m, 1.0, 0.5).unwrap();
    close_rows(&v2(&adv), &[vec![0.225, 0.25, 0.3]]);
    close_rows(&v2(&ret), &[vec![0.725, 0.85, 1.0]]);
    // gamma discounts the future: gamma 0.5, lambda 1.
    let (adv, _) = gae(&r, &v, &m, 0.5, 1.0).unwrap();
    // t2: 1 - 0.7 = 0.3; t1: 0 + 0.35 - 0.6 + 0.5*0.3 = -0.1; t0: 0.3 - 0.5 - 0.05 = -0.25
    close_rows(&v2(&adv), &[vec![-0.25, -0.1, 0.3]]);
}

#[test]
fn group_advantages_grpo_dr_grpo_rloo() {
    let scores = [1.0, 0.0, 0.0, 1.0, 2.0];
    let groups = [0, 0, 0, 0, 1];
    let g = group_advantages(&scores, &groups, AdvantageEstimator::Grpo, 1e-6);
    for (a, e) in g
        .iter()
        .zip([0.866025, -0.866025, -0.866025, 0.866025, 0.0])
    {
        close(*a, e);
    }
    let d = group_advantages(&scores, &groups, AdvantageEstimator::DrGrpo, 1e-6);
    for (a, e) in d.iter().zip([0.5, -0.5, -0.5, 0.5, 0.0]) {
        close(*a, e);
    }
    let r = group_advantages(&scores, &groups, AdvantageEstimator::Rloo, 1e-6);
    // 1 - mean(0, 0, 1) = 2/3; 0 - mean(1, 0, 1) = -2/3
    for (a, e) in r
        .iter()
        .zip([2.0 / 3.0, -2.0 / 3.0, -2.0 / 3.0, 2.0 / 3.0, 0.0])
    {
        close(*a, e);
    }
    // A group with one score value has nothing to learn from.
    let same = group_advantages(&[0.5, 0.5], &[0, 0], AdvantageEstimator::Grpo, 1e-6);
    assert_eq!(same, vec![0.0, 0.0]);
}

#[test]
fn whitening_and_standardize() {
    let x = t(&[vec![1., 2., 100.], vec![3., 0., 0.]]);
    let m = t(&[vec![1., 1., 0.], vec![1., 0., 0.]]);
    let w = v2(&masked_whiten(&x, &m, true).unwrap());
    // masked values 1, 2, 3: mean 2, unbiased var 1
    close_rows(&w, &[vec![-1.0, 0.0, 0.0], vec![1.0, 0.0, 0.0]]);
    let st = standardize(&[1.0, -1.0, 1.0, -1.0]);
    for (a, e) in st.iter().zip([1.0, -1.0, 1.0, -1.0]) {
        close(*a, e);
    }
}

#[test]
fn policy_loss_clips_both_sides_and_reports() {
    let old = t(&[vec![0., 0., 0.]]);
    let logp = t(&[vec![1.5f32.ln(), 0.5f32.ln(), 1.1f32.ln()]]);
    let adv = t(&[vec![1., -1., 2.]]);
    let m = t(&[vec![1., 1., 1.]]);
    let clip = ClipRange {
        low: 0.2,
        high: 0.2,
        dual_clip: None,
    };
    let (loss, met) = policy_loss(&old, &logp, &adv, &m, clip, LossAgg::TokenMean, 3).unwrap();
    close(s(&loss), (-1.2 + 0.8 - 2.2) / 3.0);
    close(met.pg_clipfrac as f32, 2.0 / 3.0);
    close(
        met.ppo_kl as f32,
        -(1.5f32.ln() + 0.5f32.ln() + 1.1f32.ln()) / 3.0,
    );
    // Clip-higher: the upper bound moves to 1.28.
    let higher = ClipRange {
        low: 0.2,
        high: 0.28,
        dual_clip: None,
    };
    let (loss, _) = policy_loss(&old, &logp, &adv, &m, higher, LossAgg::TokenMean, 3).unwrap();
    close(s(&loss), (-1.28 + 0.8 - 2.2) / 3.0);
}

#[test]
fn dual_clip_caps_negative_advantage_losses() {
    let old = t(&[vec![0., 0.]]);
    let logp = t(&[vec![4f32.ln(), 4f32.ln()]]);
    let adv = t(&[vec![-1., 1.]]);
    let m = t(&[vec![1., 1.]]);
    let clip = ClipRange {
        low: 0.2,
        high: 0.2,
        dual_clip: Some(3.0),
    };
    let (loss, met) = policy_loss(&old, &logp, &adv, &m, clip, LossAgg::TokenMean, 2).unwrap();
    // token 0: max(4, 1.2) = 4 capped at 3; token 1: max(-4, -1.2) = -1.2
    close(s(&loss), (3.0 - 1.2) / 2.0);
    close(met.pg_clipfrac_lower as f32, 0.5);
    let plain = ClipRange {
        dual_clip: None,
        ..clip
    };
    let (loss, _) = policy_loss(&old, &logp, &adv, &m, plain, LossAgg::TokenMean, 2).unwrap();
    close(s(&loss), (4.0 - 1.2) / 2.0);
}

#[test]
fn policy_gradient_flows_only_through_unclipped_tokens() {
    let old = t(&[vec![0., 0., 0.]]);
    let lp = Var::from_tensor(&t(&[vec![1.5f32.ln(), 0.9f32.ln(), 1.1f32.ln()]])).unwrap();
    let adv = t(&[vec![1., -1., 2.]]);
    let m = t(&[vec![1., 1., 1.]]);
    let clip = ClipRange {
        low: 0.2,
        high: 0.2,
        dual_clip: None,
    };
    let (loss, _) =
        policy_loss(&old, lp.as_tensor(), &adv, &m, clip, LossAgg::TokenMean, 3).unwrap();
    let g = loss.backward().unwrap();
    let g = v2(g.get(lp.as_tensor()).unwrap());
    // d/dlogp of -A * exp(logp) / 3 where not clipped
    close_rows(&g, &[vec![0.0, 0.9 / 3.0, -2.0 * 1.1 / 3.0]]);
}

#[test]
fn value_loss_takes_the_larger_clipped_error() {
    let v = t(&[vec![1.0, 0.0]]);
    let old = t(&[vec![0.5, 0.5]]);
    let ret = t(&[vec![2.0, 0.0]]);
    let m = t(&[vec![1., 1.]]);
    let (loss, clipfrac) = value_loss(&v, &old, &ret, &m, 0.2, LossAgg::TokenMean, 2).unwrap();
    close(s(&loss), 0.5 * (1.69 + 0.09) / 2.0);
    close(clipfrac as f32, 1.0);
    let (loss, clipfrac) = value_loss(&v, &old, &ret, &m, 10.0, LossAgg::TokenMean, 2).unwrap();
    close(s(&loss), 0.5 * (1.0 + 0.0) / 2.0);
    close(clipfrac as f32, 0.0);
}

#[test]
fn kl_estimators() {
    let lp = t(&[vec![0.5f32.ln()]]);
    let rf = t(&[vec![0.25f32.ln()]]);
    let k = |e| v2(&kl_penalty(&lp, &rf, e).unwrap())[0][0];
    close(k(KlEstimator::K1), 2f32.ln());
    close(k(KlEstimator::K2), 0.5 * 2f32.ln().powi(2));
    close(k(KlEstimator::K3), 0.5 + 2f32.ln() - 1.0);
    // k3 is never negative; k1 is when the policy is less likely.
    let k3 = v2(&kl_penalty(&rf, &lp, KlEstimator::K3).unwrap())[0][0];
    assert!(k3 >= 0.0);
    assert!(v2(&kl_penalty(&rf, &lp, KlEstimator::K1).unwrap())[0][0] < 0.0);
}

#[test]
fn token_rewards_put_the_score_on_the_last_token() {
    let m = t(&[vec![1., 1., 0.], vec![0., 1., 1.]]);
    let kl = t(&[vec![1., 1., 1.], vec![1., 1., 1.]]);
    let r = token_rewards(&[1.0, -0.5], Some(&kl), 0.1, &m).unwrap();
    close_rows(&v2(&r), &[vec![-0.1, 0.9, 0.0], vec![0.0, -0.1, -0.6]]);
    let r = token_rewards(&[1.0, -0.5], None, 0.1, &m).unwrap();
    close_rows(&v2(&r), &[vec![0.0, 1.0, 0.0], vec![0.0, 0.0, -0.5]]);
}

#[test]
fn loss_aggregation_modes() {
    let l = t(&[vec![1., 2., 3.], vec![4., 9., 9.]]);
    let m = t(&[vec![1., 1., 1.], vec![1., 0., 0.]]);
    close(
        s(&agg_loss(&l, &m, LossAgg::TokenMean, 0).unwrap()),
        10.0 / 4.0,
    );
    close(
        s(&agg_loss(&l, &m, LossAgg::SeqMeanTokenMean, 0).unwrap()),
        (2.0 + 4.0) / 2.0,
    );
    close(
        s(&agg_loss(&l, &m, LossAgg::SeqMeanTokenSumNorm, 4).unwrap()),
        10.0 / 8.0,
    );
}

#[test]
fn micro_batch_weights_recover_the_full_batch_loss() {
    let rows = vec![vec![1., 2., 3.], vec![4., 0., 0.], vec![5., 6., 0.]];
    let masks = vec![vec![1., 1., 1.], vec![1., 0., 0.], vec![1., 1., 0.]];
    for agg in [
        LossAgg::TokenMean,
        LossAgg::SeqMeanTokenMean,
        LossAgg::SeqMeanTokenSumNorm,
    ] {
        let full = s(&agg_loss(&t(&rows), &t(&masks), agg, 3).unwrap());
        let mut sum = 0.0;
        for (r, mk) in [(0..1, 0..1), (1..3, 1..3)] {
            let tokens = masks[mk.clone()].iter().flatten().sum::<f32>() as usize;
            let w = micro_weight(agg, (r.len(), tokens), (3, 6));
            let part = agg_loss(&t(&rows[r]), &t(&masks[mk]), agg, 3).unwrap();
            sum += w as f32 * s(&part);
        }
        close(sum, full);
    }
}

#[test]
fn explained_variance_bounds() {
    let r = t(&[vec![1., 2., 3.]]);
    let m = t(&[vec![1., 1., 1.]]);
    close(explained_variance(&r, &r, &m).unwrap() as f32, 1.0);
    close(
        explained_variance(&r, &t(&[vec![2., 2., 2.]]), &m).unwrap() as f32,
        0.0,
    );
}

#[test]
fn choices_parse_from_their_flag_names() {
    use clap::ValueEnum;
    assert_eq!(
        AdvantageEstimator::from_str("dr-grpo", false),
        Ok(AdvantageEstimator::DrGrpo)
    );
    assert_eq!(
        LossAgg::from_str("seq-mean-token-sum-norm", false),
        Ok(LossAgg::SeqMeanTokenSumNorm)
    );
    assert_eq!(KlEstimator::from_str("k3", false), Ok(KlEstimator::K3));
    assert!(KlPlacement::from_str("rewards", false).is_err());
}

#[test]
fn reward_clip_clamps_both_sides() {
    assert_eq!(
        rl::clip_rewards(&[-12.0, -0.5, 1.0, 10.0, 30.0], 10.0),
        vec![-10.0, -0.5, 1.0, 10.0, 10.0]
    );
}

#[test]
fn reinforce_returns_sum_the_rewards_to_come() {
    // Row 0: rewards 0.1, -0.2, 1 on three tokens; row 1: two tokens and
    // a padded position that must stay 0.
    let r = t(&[vec![0.1, -0.2, 1.0], vec![0.5, 2.0, 9.0]]);
    let m = t(&[vec![1., 1., 1.], vec![1., 1., 0.]]);
    close_rows(
        &v2(&reinforce_returns(&r, &m, 1.0).unwrap()),
        &[vec![0.9, 0.8, 1.0], vec![2.5, 2.0, 0.0]],
    );
    // gamma 0.5: 1, -0.2 + 0.5, 0.1 + 0.5 * 0.3
    close_rows(
        &v2(&reinforce_returns(&r, &m, 0.5).unwrap()),
        &[vec![0.25, 0.3, 1.0], vec![1.5, 2.0, 0.0]],
    );
}

#[test]
fn reinforce_pp_baseline_subtracts_the_group_mean() {
    let scores = [1.0, -0.5, -1.0, 1.0];
    let groups = [0, 0, 0, 1];
    let b = group_advantages(
        &scores,
        &groups,
        AdvantageEstimator::ReinforcePpBaseline,
        1e-6,
    );
    // group 0 mean -1/6; group 1 has one sample: 0
    for (x, e) in b
        .iter()
        .zip([1.0 + 1.0 / 6.0, -0.5 + 1.0 / 6.0, -1.0 + 1.0 / 6.0, 0.0])
    {
        close(*x, e);
    }
}

#[test]
fn informative_groups_have_different_rewards() {
    let scores = [1.0, 1.0, -0.5, -1.0, -1.0, 0.2];
    let groups = [0, 0, 1, 1, 2, 3];
    assert_eq!(
        informative_groups(&scores, &groups),
        vec![false, true, false, false]
    );
}

#[test]
fn overlong_penalty_is_dapos_soft_punishment() {
    // limit 20, buffer 4: free up to 16, then -1/4 per token, -1 beyond.
    let p: Vec<f64> = [0, 16, 17, 18, 20, 21]
        .iter()
        .map(|&l| overlong_penalty(l, 20, 4))
        .collect();
    assert_eq!(p, vec![0.0, 0.0, -0.25, -0.5, -1.0, -1.0]);
}

#[test]
fn tis_weights_cap_the_ratio_and_carry_no_gradient() {
    let old = t(&[vec![0.0, 0.0, 0.0]]);
    // ratios exp(old - rollout) = 0.5, 1.5, 4
    let rollout = t(&[vec![2f32.ln(), -(1.5f32.ln()), -(4f32.ln())]]);
    let m = t(&[vec![1., 1., 1.]]);
    let (w, met) = tis_weights(&old, &rollout, &m, 2.0).unwrap();
    close_rows(&v2(&w), &[vec![0.5, 1.5, 2.0]]);
    close(met.tis_weight_mean as f32, 4.0 / 3.0);
    close(met.tis_clipfrac as f32, 1.0 / 3.0);
    // The weighted loss is each token's loss times its weight.
    let logp = t(&[vec![0.0, 0.0, 0.0]]);
    let adv = t(&[vec![1., 1., -1.]]);
    let clip = ClipRange {
        low: 0.2,
        high: 0.2,
        dual_clip: None,
    };
    let (loss, _) =
        policy_loss_weighted(&old, &logp, &adv, &m, clip, LossAgg::TokenMean, 3, Some(&w)).unwrap();
    close(s(&loss), (-0.5 - 1.5 + 2.0) / 3.0);
}

#[test]
fn adaptive_kl_moves_towards_the_target() {
    let ctl = AdaptiveKl {
        target: 0.1,
        horizon: 10_000.0,
    };
    // KL twice the target: error clipped to 0.2; 1,000 samples.
    assert!((ctl.update(0.05, 0.2, 1_000) - 0.05 * 1.02).abs() < 1e-12);
    // KL half the target: error -0.5 clipped to -0.2.
    assert!((ctl.update(0.05, 0.05, 1_000) - 0.05 * 0.98).abs() < 1e-12);
    // On target: unchanged.
    assert_eq!(ctl.update(0.05, 0.1, 1_000), 0.05);
}
