//! Parquet dataset directories (one part per rank of an MPI job): read as
//! one table by every stage, refused when they hold anything else, and
//! replaced whole by a one-process write.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

fn batch(ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("row {i}")),
            )),
        ],
    )
    .unwrap()
}

fn ids(t: &artifacts::Table) -> Vec<i64> {
    t.batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn a_dataset_directory_reads_as_its_parts_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("rollouts.parquet");
    std::fs::create_dir(&ds).unwrap();
    artifacts::write_table(ds.join(artifacts::part_name(1)), &batch(&[3, 4])).unwrap();
    artifacts::write_table(ds.join(artifacts::part_name(0)), &batch(&[1, 2])).unwrap();
    // A writer's hidden temporary is not a part.
    std::fs::write(ds.join(".part-00002.parquet.tmp-1"), b"half").unwrap();
    let t = artifacts::read_table(&ds).unwrap();
    assert_eq!(ids(&t), [1, 2, 3, 4]);
    assert_eq!(t.path, ds);
}

#[test]
fn a_directory_that_is_not_a_dataset_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("d");
    std::fs::create_dir(&ds).unwrap();
    let e = artifacts::read_table(&ds).unwrap_err().to_string();
    assert!(e.contains("no part-*.parquet"), "{e}");
    artifacts::write_table(ds.join(artifacts::part_name(0)), &batch(&[1])).unwrap();
    std::fs::write(ds.join("notes.txt"), b"mine").unwrap();
    let e = artifacts::read_table(&ds).unwrap_err().to_string();
    assert!(e.contains("`notes.txt` is not one"), "{e}");
    // Parts with other columns: named.
    std::fs::remove_file(ds.join("notes.txt")).unwrap();
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![7]))],
    )
    .unwrap();
    artifacts::write_table(ds.join(artifacts::part_name(1)), &other).unwrap();
    let e = artifacts::read_table(&ds).unwrap_err().to_string();
    assert!(
        e.contains("part-00001.parquet") && e.contains("columns differ"),
        "{e}"
    );
}

#[test]
fn one_process_replaces_a_dataset_but_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("scored.parquet");
    std::fs::create_dir(&ds).unwrap();
    artifacts::write_table(ds.join(artifacts::part_name(0)), &batch(&[1])).unwrap();
    // One process: write_table_part is one file, replacing the dataset.
    artifacts::write_table_part(&ds, &batch(&[5, 6])).unwrap();
    assert!(ds.is_file());
    assert_eq!(ids(&artifacts::read_table(&ds).unwrap()), [5, 6]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing left beside it"
    );
    // A directory of the user's is not a dataset: not replaced.
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), b"mine").unwrap();
    assert!(artifacts::write_table(&mine, &batch(&[1])).is_err());
    assert_eq!(std::fs::read(mine.join("notes.txt")).unwrap(), b"mine");
}
