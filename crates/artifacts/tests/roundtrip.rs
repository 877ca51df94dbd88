//! Each stage's typed rows survive a write and read; a file missing a
//! column or with a mistyped one is rejected with an error naming both.

use artifacts::metrics::Metric;
use std::sync::Arc;

use arrow::array::{Int32Array, LargeStringArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use artifacts::prompts::PromptRow;
use artifacts::rollouts::RolloutRow;
use artifacts::scored::ScoredRow;

fn rollout(i: i64) -> RolloutRow {
    RolloutRow {
        prompt_id: format!("p{i}"),
        sample_index: i,
        prompt: "What is 1 + 1?".into(),
        answer: "2".into(),
        response: r"\boxed{2}".into(),
        prompt_token_ids: vec![1, 2, 3],
        response_token_ids: vec![4, 5],
        response_logprobs: vec![-0.5, -1.25],
        finish_reason: "stop".into(),
        policy: "models/x".into(),
        temperature: 0.6,
        top_p: 1.0,
        seed: 42 + i,
    }
}

#[test]
fn every_stage_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = vec![PromptRow {
        id: "a/1".into(),
        source: "a".into(),
        question: "q".into(),
        answer: "1".into(),
        level: None,
        subject: Some("s".into()),
        prompt: "p".into(),
        metadata: Some("{}".into()),
    }];
    let p = dir.path().join("prompts.parquet");
    artifacts::prompts::write(&p, &prompts).unwrap();
    assert_eq!(artifacts::prompts::read(&p).unwrap(), prompts);

    let rollouts = vec![rollout(0), rollout(1)];
    let p = dir.path().join("rollouts.parquet");
    artifacts::rollouts::write(&p, &rollouts).unwrap();
    assert_eq!(artifacts::rollouts::read(&p).unwrap(), rollouts);

    let scored: Vec<ScoredRow> = rollouts
        .iter()
        .map(|r| ScoredRow {
            rollout: r.clone(),
            extracted_answer: Some("2".into()),
            has_answer: true,
            correct: true,
            reward: 1.0,
            verdict: "equal_exact".into(),
            verdict_detail: None,
        })
        .collect();
    let p = dir.path().join("scored.parquet");
    artifacts::scored::write(&p, &scored).unwrap();
    assert_eq!(artifacts::scored::read(&p).unwrap(), scored);
    // A scored file is also a valid rollouts file.
    assert_eq!(artifacts::rollouts::read(&p).unwrap(), rollouts);

    let p = dir.path().join("metrics.parquet");
    for step in 0..3 {
        let mut row = artifacts::metrics::MetricsRow {
            step,
            ..Default::default()
        };
        row.values.insert(Metric::PgLoss, step as f64 * 0.5);
        if step == 1 {
            row.values.insert(Metric::Epoch, 1.0);
        }
        artifacts::metrics::append(&p, row).unwrap();
    }
    let m = artifacts::metrics::read(&p).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[2].get(Metric::PgLoss), Some(1.0));
    // A metric a step did not measure stays absent (null in the file).
    assert_eq!(m[1].get(Metric::Epoch), Some(1.0));
    assert_eq!(m[2].get(Metric::Epoch), None);
    // Re-appending a step replaces its row.
    let mut again = m[1].clone();
    again.values.insert(Metric::PgLoss, 9.0);
    artifacts::metrics::append(&p, again).unwrap();
    let m = artifacts::metrics::read(&p).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[1].get(Metric::PgLoss), Some(9.0));
    assert_eq!(artifacts::metrics::next_step(&p).unwrap(), 3);
}

#[test]
fn metrics_files_keep_their_columns_and_ignore_others() {
    // A file from a user's tool (or an older version): a column that is
    // not a metric is ignored, a metric it lacks is absent.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("metrics.parquet");
    let schema = Schema::new(vec![
        Field::new("step", DataType::Int32, false),
        Field::new("reward_mean", DataType::Float32, true),
        Field::new("my_note", DataType::Utf8, true),
    ]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int32Array::from(vec![4])),
            Arc::new(arrow::array::Float32Array::from(vec![0.5])),
            Arc::new(StringArray::from(vec!["x"])),
        ],
    )
    .unwrap();
    artifacts::write_table(&p, &b).unwrap();
    let m = artifacts::metrics::read(&p).unwrap();
    assert_eq!(m[0].step, 4);
    assert_eq!(m[0].get(Metric::RewardMean), Some(0.5));
    assert_eq!(m[0].values.len(), 1);
    // A metric column of the wrong type is named.
    let schema = Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("accuracy", DataType::Utf8, true),
    ]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![0])),
            Arc::new(StringArray::from(vec!["high"])),
        ],
    )
    .unwrap();
    artifacts::write_table(&p, &b).unwrap();
    let e = artifacts::metrics::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("metrics.parquet") && e.contains("`accuracy`"),
        "{e}"
    );
}

#[test]
fn missing_and_mistyped_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.parquet");
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Int32, false),
    ]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec!["x"])),
            Arc::new(Int32Array::from(vec![1])),
        ],
    )
    .unwrap();
    artifacts::write_table(&p, &b).unwrap();
    let e = artifacts::prompts::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.parquet") && e.contains("`source`") && e.contains("Int32"),
        "{e}"
    );

    let schema = Schema::new(vec![Field::new("id", DataType::Utf8, false)]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    artifacts::write_table(&p, &b).unwrap();
    let e = artifacts::prompts::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.parquet") && e.contains("missing column `source`"),
        "{e}"
    );

    std::fs::write(&p, b"not parquet").unwrap();
    let e = artifacts::prompts::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.parquet") && e.contains("not a readable Parquet file"),
        "{e}"
    );
}

#[test]
fn large_strings_from_other_writers_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("polars.parquet");
    let names = ["id", "source", "question", "answer", "prompt"];
    let schema = Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::LargeUtf8, false))
            .collect::<Vec<_>>(),
    );
    let cols = names
        .iter()
        .map(|n| Arc::new(LargeStringArray::from(vec![*n])) as _)
        .collect();
    let mut b = RecordBatch::try_new(Arc::new(schema), cols).unwrap();
    let extra = Schema::new(vec![
        Field::new("level", DataType::Int32, true),
        Field::new("subject", DataType::LargeUtf8, true),
        Field::new("metadata", DataType::Utf8, true),
    ]);
    let extra = RecordBatch::try_new(
        Arc::new(extra),
        vec![
            Arc::new(Int32Array::from(vec![Some(3)])),
            Arc::new(LargeStringArray::from(vec![None::<&str>])),
            Arc::new(StringArray::from(vec![None::<&str>])),
        ],
    )
    .unwrap();
    b = artifacts::table::append_columns(&b, &extra).unwrap();
    artifacts::write_table(&p, &b).unwrap();
    let rows = artifacts::prompts::read(&p).unwrap();
    assert_eq!(rows[0].question, "question");
    assert_eq!(rows[0].level, Some(3));
}

/// Two writers appending to one metrics file at once lose no row (each
/// read-modify-write holds the folder's lock), and a step numbered from
/// the file that another writer took meanwhile is an error, not a lost row.
#[test]
fn concurrent_metrics_writers_lose_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("metrics.parquet");
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let row = artifacts::metrics::MetricsRow {
                        step: 2 * i + w,
                        ..Default::default()
                    };
                    artifacts::metrics::append(&p, row).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let steps: Vec<i64> = artifacts::metrics::read(&p)
        .unwrap()
        .iter()
        .map(|r| r.step)
        .collect();
    assert_eq!(steps, (0..30).collect::<Vec<_>>());
    let taken = artifacts::metrics::MetricsRow {
        step: 7,
        ..Default::default()
    };
    let e = artifacts::metrics::append_new(&p, taken).unwrap_err();
    assert!(e.to_string().contains("step 7 is already there"), "{e}");
    assert_eq!(artifacts::metrics::read(&p).unwrap().len(), 30);
}

/// A rollouts file whose `response_token_ids` is replaced by `ids` (one
/// list per row, Int64 elements as another writer might make them).
fn with_token_ids(dir: &std::path::Path, ids: Vec<Option<Vec<Option<i64>>>>) -> std::path::PathBuf {
    use arrow::array::{ArrayRef, ListArray};
    use arrow::datatypes::Int64Type;
    let p = dir.join("r.parquet");
    artifacts::rollouts::write(&p, &[rollout(0), rollout(1)]).unwrap();
    let batch = artifacts::read_table(&p).unwrap().batch;
    let col: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(ids));
    let schema = batch.schema();
    let (fields, cols): (Vec<Field>, Vec<ArrayRef>) = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| match f.name().as_str() {
            "response_token_ids" => (
                Field::new(f.name(), col.data_type().clone(), false),
                col.clone(),
            ),
            _ => (f.as_ref().clone(), c.clone()),
        })
        .unzip();
    let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    artifacts::write_table(&p, &b).unwrap();
    p
}

/// Token ids are read exactly or refused: a value that does not fit 32
/// bits (it used to become 0), a null inside a list and a negative id are
/// errors naming the file, row, column and element.
#[test]
fn token_ids_that_do_not_fit_or_are_null_are_refused_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let ok = with_token_ids(dir.path(), vec![Some(vec![Some(4), Some(5)]); 2]);
    assert_eq!(
        artifacts::rollouts::read(&ok).unwrap()[1].response_token_ids,
        [4, 5]
    );
    for (ids, says) in [
        (
            vec![Some(4), Some((1 << 32) + 300)],
            "element 1, 4294967596, does not fit",
        ),
        (vec![Some(4), None], "element 1 of the list is null"),
        (
            vec![Some(-5), Some(5)],
            "token id -5 is negative (element 0)",
        ),
    ] {
        let p = with_token_ids(dir.path(), vec![Some(vec![Some(4), Some(5)]), Some(ids)]);
        let e = artifacts::rollouts::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("r.parquet")
                && e.contains("row 1")
                && e.contains("response_token_ids")
                && e.contains(says),
            "{e}"
        );
    }
}

/// A row's sampling temperature that is NaN, infinite or negative is
/// refused naming row and column (a NaN one used to read as 1.0 in
/// training, or to be blamed on the other rows).
#[test]
fn a_temperature_that_is_not_one_is_refused_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.parquet");
    for t in [f64::NAN, f64::INFINITY, -1.0] {
        let mut bad = rollout(1);
        bad.temperature = t;
        artifacts::rollouts::write(&p, &[rollout(0), bad]).unwrap();
        let e = artifacts::rollouts::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("row 1")
                && e.contains("`temperature`")
                && e.contains("not a sampling temperature"),
            "{e}"
        );
    }
}

/// A small Parquet file whose one 100 MB string repeats in 24 rows (one
/// dictionary entry on disk) decodes to 2.4 GB: refused from the sizes in its metadata, before
/// decoding (it used to grow to gigabytes, then abort on a LargeUtf8 error).
#[test]
fn a_parquet_file_that_decodes_to_gigabytes_is_refused_before_decoding() {
    use arrow::array::{Array, StringViewBuilder};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bomb.parquet");
    let big = "x".repeat(100_000_000);
    // 24 views of one 100 MB string: 100 MB here, dictionary pages on disk.
    let mut views = StringViewBuilder::new().with_deduplicate_strings();
    for _ in 0..24 {
        views.append_value(&big);
    }
    let question = views.finish();
    let small = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Schema::new(vec![
        small("id"),
        small("source"),
        Field::new("question", question.data_type().clone(), false),
        small("answer"),
        small("prompt"),
    ]);
    let ids: Vec<String> = (0..24).map(|i| format!("q{i}")).collect();
    let text = |s: &str| Arc::new(StringArray::from(vec![s; 24]));
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(ids)),
            text("bomb"),
            Arc::new(question),
            text("1"),
            text("x"),
        ],
    )
    .unwrap();
    drop(big);
    artifacts::write_table(&p, &b).unwrap();
    drop(b);
    assert!(
        std::fs::metadata(&p).unwrap().len() < 1_000_000,
        "not a small file"
    );
    let e = artifacts::prompts::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("bomb.parquet")
            && e.contains("column `question`")
            && e.contains("decodes to 2.40 GB"),
        "{e}"
    );
}
