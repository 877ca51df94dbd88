fn main() {
    let args: Vec<String> = std::env::args().collect();
    let g = grader::Answer::parse(&args[1]);
    let p = grader::Answer::parse(&args[2]);
    println!("{g:?}\n{p:?}\n{}", grader::policy::equivalent(&g, &p));
}
