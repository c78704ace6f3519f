//! Commits N single-entity transactions in a loop and prints the rate.
//! `cargo run --release --example commit_loop -- 2000`
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let store = got::Store::open(
        dir.path().join(".got"),
        got::Options {
            create_if_missing: true,
            ..Default::default()
        },
    )
    .unwrap();
    let t = std::time::Instant::now();
    for i in 0..n {
        store
            .transaction(|tx| tx.create("task", got::props([("n", got::Value::Int(i as i64))])))
            .unwrap();
    }
    let e = t.elapsed();
    println!(
        "{n} commits in {:?}: {:.0}/s, {:.1} µs each",
        e,
        n as f64 / e.as_secs_f64(),
        e.as_micros() as f64 / n as f64
    );
}
