//! Matching at scale: link N synthetic people-like records to N others (half of them perturbed
//! twins) with the inferred spec, and report time, candidates and F1 against the planted twins.
//!
//! `cargo run --release -p opsweave-benches --bin er_scale -- [N]` (default 100,000; the issue's
//! target is 1,000,000). Peak memory: run it under `/usr/bin/time -v`.

use opsweave::matching::{run_link, Table};
use std::collections::HashSet;
use std::time::Instant;

const FIRST: [&str; 32] = [
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "chris",
    "lisa",
    "daniel",
    "nancy",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "donald",
    "ashley",
];
const LAST: [&str; 32] = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
];
const STREETS: [&str; 16] = [
    "main", "oak", "pine", "maple", "cedar", "elm", "view", "lake", "hill", "park", "river",
    "spring", "north", "south", "west", "east",
];

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// One record: id, given name, surname, street, postcode, birth date.
fn person(rng: &mut Rng) -> [String; 5] {
    [
        rng.pick(&FIRST).to_string(),
        rng.pick(&LAST).to_string(),
        format!("{} {} street", rng.next() % 999 + 1, rng.pick(&STREETS)),
        format!("{:05}", rng.next() % 100_000),
        format!(
            "19{:02}-{:02}-{:02}",
            rng.next() % 80 + 20,
            rng.next() % 12 + 1,
            rng.next() % 28 + 1
        ),
    ]
}

/// A typo: one character dropped, swapped or replaced.
fn typo(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.len() < 3 {
        return text.to_string();
    }
    let at = (rng.next() % (chars.len() as u64 - 1)) as usize;
    match rng.next() % 3 {
        0 => {
            chars.remove(at);
        }
        1 => chars.swap(at, at + 1),
        _ => chars[at] = (b'a' + (rng.next() % 26) as u8) as char,
    }
    chars.into_iter().collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let columns: Vec<String> = ["id", "given_name", "surname", "address", "postcode", "dob"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let started = Instant::now();
    let mut left = Vec::with_capacity(n);
    let mut right = Vec::with_capacity(n);
    let mut gold = HashSet::new();
    for i in 0..n {
        let p = person(&mut rng);
        let mut row = vec![format!("l{i}")];
        row.extend(p.iter().cloned());
        left.push(row);
        // Half the right side are twins with one or two fields perturbed; the rest are strangers.
        let mut twin = vec![format!("r{i}")];
        if i % 2 == 0 {
            let mut q = p.clone();
            let field = (rng.next() % 5) as usize;
            q[field] = typo(&mut rng, &q[field]);
            if rng.next() % 4 == 0 {
                let other = (rng.next() % 5) as usize;
                q[other] = typo(&mut rng, &q[other]);
            }
            twin.extend(q);
            gold.insert((i, i));
        } else {
            twin.extend(person(&mut rng));
        }
        right.push(twin);
    }
    let left = Table::new("left", columns.clone(), left)?;
    let right = Table::new("right", columns, right)?;
    eprintln!(
        "generated {n} × {n} records in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let outcome = run_link(&left, &right, None)?;
    let secs = t.elapsed().as_secs_f64();
    // Twins that blocking let through: recall lost before any comparison.
    let blocked = gold
        .iter()
        .filter(|(i, j)| {
            outcome
                .candidates
                .binary_search(&(*i as u32, *j as u32))
                .is_ok()
        })
        .count();
    let blocking_recall = blocked as f64 / gold.len().max(1) as f64;
    let predicted: HashSet<(usize, usize)> = outcome.predicted_pairs().into_iter().collect();
    let tp = predicted.intersection(&gold).count() as f64;
    let precision = tp / predicted.len().max(1) as f64;
    let recall = tp / gold.len().max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE);
    println!(
        "link {n} × {n}: {secs:.1}s, {} candidates (blocking recall {blocking_recall:.4}), {} matches; precision {precision:.4}, recall {recall:.4}, F1 {f1:.4}",
        outcome.candidates.len(),
        predicted.len()
    );
    Ok(())
}
