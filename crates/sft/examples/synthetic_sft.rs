//! An SFT file of given shape for measuring sft-step's memory and speed:
//! `synthetic_sft OUT ROWS PROMPT_DIGITS RESPONSE_DIGITS`. Prompts and
//! responses are strings of random digits, which Llama- and Qwen-family
//! tokenizers split one digit per token, so a row is PROMPT_DIGITS +
//! RESPONSE_DIGITS + 1 (end of sequence) tokens.

use artifacts::prompts::PromptRow;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        eprintln!("usage: synthetic_sft OUT ROWS PROMPT_DIGITS RESPONSE_DIGITS");
        std::process::exit(2);
    }
    let n: usize = a[2].parse().expect("ROWS");
    let (p, r): (usize, usize) = (
        a[3].parse().expect("PROMPT_DIGITS"),
        a[4].parse().expect("RESPONSE_DIGITS"),
    );
    let mut rng = rng::SplitMix64::new(1);
    let mut digits = |k: usize| -> String {
        (0..k)
            .map(|_| char::from(b'0' + (rng.next_u64() % 10) as u8))
            .collect()
    };
    let rows: Vec<(PromptRow, String)> = (0..n)
        .map(|i| {
            let prompt = digits(p);
            let row = PromptRow {
                id: format!("s{i}"),
                source: "synthetic".into(),
                question: prompt.clone(),
                answer: String::new(),
                level: None,
                subject: None,
                prompt,
                metadata: None,
            };
            (row, digits(r))
        })
        .collect();
    artifacts::sft::write(&a[1], &rows).expect("write the SFT file");
}
