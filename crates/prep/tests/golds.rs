//! Every gold of the public sets matches itself through the recipe's
//! reward (a boxed response), and no gold is judged unfinished against
//! itself: the 12,500 MATH answers and the recipe's 8,523 training golds
//! (in each, two are empty, and refused).

use std::path::{Path, PathBuf};

use prep::raw::{load, FieldMap, LoadOptions, LoadReport, RawFormat};

/// ../shared/data/raw beside the checkout (or $SIMPLERL_RAW_DATA).
/// Absent, skipped with a message, unless SIMPLERL_REQUIRE_DATA=1.
fn raw() -> Option<PathBuf> {
    let p = std::env::var_os("SIMPLERL_RAW_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/raw"));
    if p.join("math").is_dir() {
        return Some(p);
    }
    assert!(
        std::env::var("SIMPLERL_REQUIRE_DATA").as_deref() != Ok("1"),
        "raw data not found at {} (set SIMPLERL_RAW_DATA)",
        p.display()
    );
    eprintln!("skipped: the public data sets are not at {}", p.display());
    None
}

/// The golds that do not earn +1 when boxed as the response.
fn unmatched(golds: &[String]) -> Vec<String> {
    let scheme = grader::RewardScheme::default();
    golds
        .iter()
        .filter(|g| {
            let grade = grader::grade(&format!("So the answer is $\\boxed{{{g}}}$."), g, &scheme);
            !grade.correct
        })
        .cloned()
        .collect()
}

/// Every gold of `path`, the bad records skipped and counted.
fn golds(path: &Path, format: RawFormat, fields: &FieldMap) -> (Vec<String>, LoadReport) {
    let mut report = LoadReport::default();
    let options = LoadOptions {
        skip_bad: true,
        ..Default::default()
    };
    let problems = load(path, format, fields, options, &mut report).unwrap();
    (problems.into_iter().map(|p| p.answer).collect(), report)
}

#[test]
fn every_math_gold_matches_itself() {
    let Some(raw) = raw() else { return };
    let (golds, report) = golds(&raw.join("math"), RawFormat::Math, &FieldMap::default());
    // Two MATH solutions box nothing (number_theory_train lines 662 and
    // 664, the recipe's rows 5055 and 5159): refused as empty golds.
    assert_eq!((report.read, golds.len()), (12_500, 12_498));
    assert_eq!(
        report.skipped.get("empty answer"),
        Some(&2),
        "{:?}",
        report.skipped
    );
    let bad = unmatched(&golds);
    assert!(
        bad.is_empty(),
        "{} MATH golds do not match themselves: {bad:#?}",
        bad.len()
    );
}

#[test]
fn every_recipe_gold_matches_itself_and_the_empty_ones_are_refused() {
    let Some(raw) = raw() else { return };
    let path = raw.join("simplerl/train.parquet");
    let fields = FieldMap {
        answer: vec!["gt_answer".into()],
        ..Default::default()
    };
    let (golds, report) = golds(&path, RawFormat::Fields, &fields);
    assert_eq!(report.read, 8_523);
    // Rows 5055 and 5159 have an empty gold.
    assert_eq!(
        report.skipped.get("empty answer"),
        Some(&2),
        "{:?}",
        report.skipped
    );
    let bad = unmatched(&golds);
    assert!(
        bad.is_empty(),
        "{} recipe golds do not match themselves: {bad:#?}",
        bad.len()
    );
    // Without --skip-bad the first empty gold stops the load, named.
    let err = load(
        &path,
        RawFormat::Fields,
        &fields,
        LoadOptions::default(),
        &mut LoadReport::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("train.parquet:5055: empty answer"), "{err}");
}
