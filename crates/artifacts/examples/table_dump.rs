//! `table_dump FILE`: the table's rows as an Arrow IPC stream on stdout
//! (the same rows and columns give the same bytes, whatever the file's
//! metadata); `table_dump --kv FILE`: its key-value metadata, `key=value`
//! per line. Used by tests/pipeline.sh.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kv, path) = match args.as_slice() {
        [flag, p] if flag == "--kv" => (true, p.clone()),
        [p] => (false, p.clone()),
        _ => {
            eprintln!("usage: table_dump [--kv] FILE");
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
    let mut w =
        arrow::ipc::writer::StreamWriter::try_new(std::io::stdout().lock(), &t.batch.schema())
            .expect("stdout");
    w.write(&t.batch).expect("write");
    w.finish().expect("finish");
}
