//! A scored file of given shape with random tokens, for measuring
//! ppo-step's memory and speed: `synthetic_scored OUT ROWS PROMPT_LEN
//! RESPONSE_LEN VOCAB`.

use artifacts::rollouts::RolloutRow;
use artifacts::scored::ScoredRow;

pub fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        eprintln!("usage: synthetic_scored OUT ROWS PROMPT_LEN RESPONSE_LEN VOCAB");
        std::process::exit(2);
    }
    let n: usize = a[2].parse().expect("ROWS");
    let (p, r, vocab): (usize, usize, u64) = (
        a[3].parse().expect("PROMPT_LEN"),
        a[4].parse().expect("RESPONSE_LEN"),
        a[5].parse().expect("VOCAB"),
    );
    let mut rng = rng::SplitMix64::new(1);
    let mut ids =
        |k: usize| -> Vec<u32> { (0..k).map(|_| (rng.next_u64() % vocab) as u32).collect() };
    let rows: Vec<ScoredRow> = (0..n)
        .map(|i| ScoredRow {
            rollout: RolloutRow {
                prompt_id: format!("p{}", i / 2),
                sample_index: (i % 2) as i64,
                prompt: String::new(),
                answer: "1".into(),
                response: String::new(),
                prompt_token_ids: ids(p),
                response_token_ids: ids(r),
                response_logprobs: vec![-10.0; r],
                finish_reason: artifacts::rollouts::FinishReason::Length.as_str().into(),
                policy: "synthetic".into(),
                temperature: 1.0,
                top_p: 1.0,
                seed: i as i64,
            },
            extracted_answer: None,
            has_answer: i % 2 == 0,
            correct: i % 4 == 0,
            reward: [1.0, -0.5, -1.0, -0.5][i % 4],
            verdict: ["equal_exact", "wrong_value", "no_answer", "wrong_value"][i % 4].into(),
            verdict_detail: None,
        })
        .collect();
    artifacts::scored::write(&a[1], &rows).expect("write");
}
