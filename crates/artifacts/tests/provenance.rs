//! A stage's outputs carry its provenance: tool, version, command line,
//! the tables it read, and the stage timings of its inputs plus its own.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

fn batch() -> RecordBatch {
    let schema = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Int64Array::from(vec![1, 2]))],
    )
    .unwrap()
}

#[test]
fn outputs_name_their_tool_inputs_and_timings() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.parquet"),
        dir.path().join("b.parquet"),
        dir.path().join("c.parquet"),
    );
    // Before `begin` (a library caller) nothing is written.
    artifacts::write_table(&a, &batch()).unwrap();
    assert!(artifacts::read_table_unrecorded(&a).unwrap().kv.is_empty());

    artifacts::provenance::begin("rollout", "9.9.9 (commit abc)");
    artifacts::write_table(&b, &batch()).unwrap();
    let kv = artifacts::read_table_unrecorded(&b).unwrap().kv;
    assert_eq!(kv["simplerl.tool"], "rollout");
    assert_eq!(kv["simplerl.version"], "9.9.9 (commit abc)");
    assert!(!kv["simplerl.command"].is_empty());
    assert_eq!(kv["simplerl.inputs"], "[]");
    let t = artifacts::provenance::timings(&kv);
    assert_eq!(t.keys().collect::<Vec<_>>(), ["rollout"]);

    // The next stage reads b: b is its input, and rollout's time carries.
    artifacts::provenance::begin("verify", "9.9.9 (commit abc)");
    let read = artifacts::read_table(&b).unwrap();
    // The rows come without the file's metadata (a pass-through column
    // set does not copy the input's provenance).
    assert!(read.batch.schema().metadata().is_empty());
    assert_eq!(
        artifacts::provenance::upstream_seconds("rollout"),
        Some(t["rollout"])
    );
    artifacts::write_table(&c, &read.batch).unwrap();
    let kv = artifacts::read_table_unrecorded(&c).unwrap().kv;
    assert_eq!(kv["simplerl.tool"], "verify");
    assert_eq!(
        kv["simplerl.inputs"],
        serde_json::to_string(&[b.display().to_string()]).unwrap()
    );
    let t2 = artifacts::provenance::timings(&kv);
    assert_eq!(t2.keys().collect::<Vec<_>>(), ["rollout", "verify"]);
    assert_eq!(t2["rollout"], t["rollout"]);
}
