use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use train::*;

fn one_param(values: &[f32]) -> (VarMap, Params) {
    let vm = VarMap::new();
    vm.data().lock().unwrap().insert(
        "w".into(),
        Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap(),
    );
    let p = Params::from_varmap(&vm);
    (vm, p)
}

fn grads_of(p: &Params, scale: f32) -> GradAccum {
    // loss = scale * sum(w^2) / 2 -> grad = scale * w
    let w = p.vars[0].as_tensor();
    let loss = ((w.sqr().unwrap().sum_all().unwrap()) * (scale as f64 / 2.0)).unwrap();
    let mut acc = GradAccum::new(p);
    acc.add(p, &loss.backward().unwrap()).unwrap();
    acc
}

fn values(p: &Params) -> Vec<f32> {
    p.vars[0].as_tensor().to_vec1::<f32>().unwrap()
}

#[test]
fn adamw_first_step_matches_the_formula() {
    let (_vm, p) = one_param(&[1.0]);
    let mut acc = GradAccum::new(&p);
    let loss = (p.vars[0].as_tensor().sum_all().unwrap() * 0.5).unwrap(); // grad 0.5
    acc.add(&p, &loss.backward().unwrap()).unwrap();
    let mut opt = AdamW::new(&p, AdamWConfig::default());
    opt.step(&p, &acc, 0.1, 1.0).unwrap();
    // decay 1 * (1 - 0.1 * 0.01) = 0.999; m_hat = 0.5, sqrt(v_hat) = 0.5 -> step 0.1
    assert!((values(&p)[0] - 0.899).abs() < 1e-6, "{:?}", values(&p));
}

#[test]
fn accumulation_sums_micro_batches() {
    let (_vm, p) = one_param(&[1.0, -2.0]);
    let w = p.vars[0].as_tensor();
    let mut acc = GradAccum::new(&p);
    for s in [0.25, 0.75] {
        let loss = ((w.sqr().unwrap().sum_all().unwrap()) * (s / 2.0)).unwrap();
        acc.add(&p, &loss.backward().unwrap()).unwrap();
    }
    assert_eq!(acc.grads[0].as_ref().unwrap(), &vec![1.0, -2.0]);
    assert!((acc.norm() - 5f64.sqrt()).abs() < 1e-9);
    assert_eq!(clip_coef(5f64.sqrt(), 10.0), 1.0);
    assert!((clip_coef(5f64.sqrt(), 1.0) * 5f64.sqrt() - 1.0).abs() < 1e-5);
}

#[test]
fn saved_state_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AdamWConfig::default();
    // Uninterrupted: four steps.
    let (_a, pa) = one_param(&[1.0, -2.0, 3.0]);
    let mut oa = AdamW::new(&pa, cfg);
    for _ in 0..4 {
        let g = grads_of(&pa, 1.0);
        oa.step(&pa, &g, 0.05, 1.0).unwrap();
    }
    // Interrupted after two: state saved, a new optimizer loaded from it.
    let (_b, pb) = one_param(&[1.0, -2.0, 3.0]);
    let mut ob = AdamW::new(&pb, cfg);
    for _ in 0..2 {
        let g = grads_of(&pb, 1.0);
        ob.step(&pb, &g, 0.05, 1.0).unwrap();
    }
    let path = dir.path().join(OPTIMIZER_FILE);
    ob.carried.insert("kl_coef".into(), 0.0123456789012345);
    ob.save(&pb, &path).unwrap();
    let mut ob = AdamW::resume_or_new(&pb, cfg, dir.path()).unwrap();
    assert_eq!(ob.step, 2);
    assert_eq!(
        ob.carried.get("kl_coef"),
        Some(&0.0123456789012345),
        "carried exactly"
    );
    for _ in 0..2 {
        let g = grads_of(&pb, 1.0);
        ob.step(&pb, &g, 0.05, 1.0).unwrap();
    }
    assert_eq!(values(&pa), values(&pb));
    // A fresh optimizer (state lost) gives a different trajectory.
    let (_c, pc) = one_param(&[1.0, -2.0, 3.0]);
    let mut oc = AdamW::new(&pc, cfg);
    for i in 0..4 {
        if i == 2 {
            oc = AdamW::new(&pc, cfg);
        }
        let g = grads_of(&pc, 1.0);
        oc.step(&pc, &g, 0.05, 1.0).unwrap();
    }
    assert_ne!(values(&pa), values(&pc));
}

#[test]
fn state_for_other_parameters_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, pa) = one_param(&[1.0, 2.0]);
    let mut oa = AdamW::new(&pa, AdamWConfig::default());
    oa.step(&pa, &grads_of(&pa, 1.0), 0.1, 1.0).unwrap();
    let path = dir.path().join(OPTIMIZER_FILE);
    oa.save(&pa, &path).unwrap();
    let (_b, pb) = one_param(&[1.0, 2.0, 3.0]);
    let e = AdamW::load(&pb, AdamWConfig::default(), &path)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("optimizer.safetensors") && e.contains("`w`"),
        "{e}"
    );
}

#[test]
fn schedules() {
    let s = LrSchedule::Cosine;
    assert!((s.lr(1.0, 0, 10, 2, 0.0) - 0.5).abs() < 1e-12);
    assert!((s.lr(1.0, 1, 10, 2, 0.0) - 1.0).abs() < 1e-12);
    assert!((s.lr(1.0, 2, 10, 2, 0.0) - 1.0).abs() < 1e-12);
    assert!((s.lr(1.0, 6, 10, 2, 0.0) - 0.5).abs() < 1e-12);
    assert!((s.lr(1.0, 10, 10, 2, 0.1) - 0.1).abs() < 1e-12);
    assert!((LrSchedule::Linear.lr(1.0, 6, 10, 2, 0.0) - 0.5).abs() < 1e-12);
    assert_eq!(LrSchedule::Constant.lr(3e-4, 7, 10, 0, 0.0), 3e-4);
    assert!(ensure_finite(f64::NAN, "the loss")
        .unwrap_err()
        .to_string()
        .contains("loss is NaN"));
}

#[test]
fn trainable_clips_steps_and_refuses_a_non_finite_norm() {
    let (vm, _) = one_param(&[3.0, 4.0]);
    let cfg = AdamWConfig {
        weight_decay: 0.0,
        ..AdamWConfig::default()
    };
    let mut t = Trainable::new(&vm, cfg, None).unwrap();
    // grad = w = (3, 4): norm 5, clipped to 1.
    let mut g = grads_of(&t.params, 1.0);
    let before = values(&t.params);
    assert!((t.clip_and_step(&mut g, 0.1, 1.0, "test").unwrap() - 5.0).abs() < 1e-6);
    assert_eq!(t.opt.step, 1);
    assert_ne!(values(&t.params), before);
    // A NaN gradient: an error naming it, and nothing moves.
    let before = values(&t.params);
    let mut nan = grads_of(&t.params, f32::NAN);
    let e = t
        .clip_and_step(&mut nan, 0.1, 1.0, "test")
        .unwrap_err()
        .to_string();
    assert!(e.contains("the test gradient norm is NaN"), "{e}");
    assert_eq!(values(&t.params), before);
    assert_eq!(t.opt.step, 1);
}

#[test]
fn epoch_order_is_a_permutation_fixed_by_seed_round_and_epoch() {
    let a = epoch_order(40, 7, 3, 0);
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..40).collect::<Vec<_>>());
    assert_eq!(a, epoch_order(40, 7, 3, 0));
    assert_ne!(a, epoch_order(40, 7, 3, 1));
    assert_ne!(a, epoch_order(40, 7, 4, 0));
    assert_ne!(a, epoch_order(40, 8, 3, 0));
}

#[test]
fn sharded_owners_balance_the_parameters_over_the_ranks() {
    // The largest first, each to the least-loaded rank (ties: lowest).
    assert_eq!(owners(&[10, 1, 6, 5, 1], 2), [0, 0, 1, 1, 0]);
    let sizes = [4096, 64, 64, 4096, 512, 512, 64, 4096, 1];
    for ranks in 1..=4 {
        let o = owners(&sizes, ranks);
        let mut load = vec![0; ranks];
        for (i, &r) in o.iter().enumerate() {
            load[r] += sizes[i];
        }
        let (lo, hi) = (load.iter().min().unwrap(), load.iter().max().unwrap());
        assert!(hi - lo <= 4096, "ranks {ranks}: loads {load:?}");
        assert!(o.iter().all(|&r| r < ranks));
    }
}

#[test]
fn a_state_split_over_rank_files_resumes_as_one() {
    // Two parameters; "rank 1" wrote the moments of `b` beside rank 0's
    // file (what --shard-optimizer leaves in a checkpoint).
    let cfg = AdamWConfig::default();
    let vm = VarMap::new();
    for (n, v) in [("a", [1.0f32, 2.0]), ("b", [3.0, -4.0])] {
        vm.data().lock().unwrap().insert(
            n.into(),
            Var::from_tensor(&Tensor::new(&v, &Device::Cpu).unwrap()).unwrap(),
        );
    }
    let p = Params::from_varmap(&vm);
    let loss = |p: &Params| {
        let mut acc = GradAccum::new(p);
        let l = (p.vars[0].as_tensor().sqr().unwrap().sum_all().unwrap()
            + p.vars[1].as_tensor().sqr().unwrap().sum_all().unwrap())
        .unwrap();
        acc.add(p, &l.backward().unwrap()).unwrap();
        acc
    };
    let mut whole = AdamW::new(&p, cfg);
    whole.step(&p, &loss(&p), 0.01, 1.0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    whole
        .save(&p, &dir.path().join("whole.safetensors"))
        .unwrap();
    // The split: each file holds one parameter's moments.
    let only = |keep: usize, file: &str| {
        let mut g = loss(&p);
        g.grads[1 - keep] = None;
        let mut o = AdamW::new(&p, cfg);
        o.step(&p, &g, 0.0, 1.0).unwrap(); // lr 0: moments only
        o.save(&p, &dir.path().join(file)).unwrap();
    };
    only(0, OPTIMIZER_FILE);
    only(1, &rank_state_file(1));
    let resumed = AdamW::resume_or_new(&p, cfg, dir.path()).unwrap();
    let reference = AdamW::load(&p, cfg, &dir.path().join("whole.safetensors")).unwrap();
    assert_eq!(resumed.state_bytes(), reference.state_bytes());
    assert_eq!(resumed.step, 1);
    // One parameter's share only: what a sharded rank loads.
    let paths = [
        dir.path().join(OPTIMIZER_FILE),
        dir.path().join(rank_state_file(1)),
    ];
    let share = AdamW::load_owned(&p, cfg, &paths, &|i| i == 1).unwrap();
    assert_eq!(share.state_bytes(), 2 * 2 * 4);
}
