//! Print docs/cli.md (`make docs` writes it).

fn main() {
    print!("{}", cli::markdown());
}
