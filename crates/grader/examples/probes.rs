fn main() {
    let text = std::fs::read_to_string("../shared/verifier-cases/probe_cases.jsonl").unwrap();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let g = v["gold_answer"].as_str().unwrap();
        let p = v["pred"].as_str().unwrap();
        let out = v["model_output"].as_str().unwrap();
        let ours = grader::grade(out, g, &Default::default()).correct;
        println!(
            "{:5} qwen={:5} mv={:5} {} | {:?} vs {:?} {}",
            ours, v["qwen_verdict"], v["mv_verdict"], v["category"], g, p, v["note"]
        );
    }
}
