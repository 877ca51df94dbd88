//! `table_dump FILE`: the table's rows as an Arrow IPC stream on stdout
//! (the same rows and columns give the same bytes, whatever the file's
//! metadata); `table_dump --kv FILE`: its key-value metadata, `key=value`
//! per line; `table_dump --sort-by COL,COL FILE`: the rows sorted by those
//! columns (a dataset directory's parts against one file). FILE may be a
//! dataset directory. Used by tests/pipeline.sh and tests/mpi.sh.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kv, sort_by, path) = match args.as_slice() {
        [flag, p] if flag == "--kv" => (true, None, p.clone()),
        [flag, cols, p] if flag == "--sort-by" => (false, Some(cols.clone()), p.clone()),
        [p] => (false, None, p.clone()),
        _ => {
            eprintln!("usage: table_dump [--kv | --sort-by COL,COL] FILE");
            std::process::exit(2);
        }
    };
    let t = match artifacts::read_table(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("table_dump: {e}");
            std::process::exit(1);
        }
    };
    if kv {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for (k, v) in &t.kv {
            // A reader that has seen enough (grep -q) closes the pipe.
            if writeln!(out, "{k}={v}").is_err() {
                return;
            }
        }
        return;
    }
    let batch = match sort_by {
        None => t.batch,
        Some(cols) => {
            let keys: Vec<arrow::compute::SortColumn> = cols
                .split(',')
                .map(|c| arrow::compute::SortColumn {
                    values: t
                        .batch
                        .column_by_name(c)
                        .unwrap_or_else(|| {
                            eprintln!("table_dump: {path}: no column `{c}`");
                            std::process::exit(1)
                        })
                        .clone(),
                    options: None,
                })
                .collect();
            let idx = arrow::compute::lexsort_to_indices(&keys, None).expect("sortable columns");
            let cols = t
                .batch
                .columns()
                .iter()
                .map(|c| arrow::compute::take(c.as_ref(), &idx, None).expect("in range"))
                .collect();
            arrow::array::RecordBatch::try_new(t.batch.schema(), cols).expect("same schema")
        }
    };
    let mut w =
        arrow::ipc::writer::StreamWriter::try_new(std::io::stdout().lock(), &batch.schema())
            .expect("stdout");
    w.write(&batch).expect("write");
    w.finish().expect("finish");
}
