//! `opsweave eval link|dedupe` end to end on small CSV files written by each test.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Companies: (name, street, city, phone).
#[rustfmt::skip]
const COMPANIES: [(&str, &str, &str, &str); 20] = [
    ("Globex Corporation", "12 Harbour Road", "Springfield", "555-0101"),
    ("Initech", "4 Office Park", "Austin", "555-0102"),
    ("Umbrella Pharmaceuticals", "99 Raccoon Street", "Raccoon City", "555-0103"),
    ("Hooli", "1 Silicon Way", "Palo Alto", "555-0104"),
    ("Vandelay Industries", "129 West 81st Street", "New York", "555-0105"),
    ("Stark Industries", "10880 Malibu Point", "Malibu", "555-0106"),
    ("Wayne Enterprises", "1007 Mountain Drive", "Gotham", "555-0107"),
    ("Acme Rocket Supplies", "77 Desert Highway", "Tucson", "555-0108"),
    ("Soylent Foods", "3 Green Lane", "Portland", "555-0109"),
    ("Cyberdyne Systems", "18144 El Camino Real", "Sunnyvale", "555-0110"),
    ("Tyrell Genetics", "2019 Pyramid Avenue", "Los Angeles", "555-0111"),
    ("Wonka Confectionery", "5 Chocolate Row", "Lancaster", "555-0112"),
    ("Oscorp Laboratories", "88 Madison Avenue", "Manhattan", "555-0113"),
    ("Gringotts Banking", "1 Diagon Alley", "London", "555-0114"),
    ("Pied Piper Compression", "5230 Newell Road", "Palo Alto", "555-0115"),
    ("Dunder Mifflin Paper", "1725 Slough Avenue", "Scranton", "555-0116"),
    ("Monarch Solutions", "42 Butterfly Court", "Denver", "555-0117"),
    ("Bluth Property Development", "9 Banana Stand Pier", "Newport Beach", "555-0118"),
    ("Prestige Worldwide Events", "14 Boats Lane", "Catalina", "555-0119"),
    ("Massive Dynamic Research", "500 Bishop Plaza", "Boston", "555-0120"),
];

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> String {
        self.0.path().join(name).display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_opsweave"))
            .args(args)
            .current_dir(self.0.path())
            .env_remove("OPSWEAVE_DB")
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (Value, String) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?} failed: {stderr}");
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        (value, stderr)
    }

    /// Runs a command that must fail with exit code 2 and returns its stderr.
    fn bad_input(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
        stderr
    }
}

/// Left: every company; right: each company with a small change (abbreviation, typo, other
/// phone format) under another id, in reverse order, plus three companies of its own.
fn link_files(dir: &Dir) {
    let mut left = String::from("id,name,street,city,phone\n");
    let mut right = String::from("id,name,street,city,phone\n");
    let mut gold = String::from("left_id,right_id\n");
    for (i, (name, street, city, phone)) in COMPANIES.iter().enumerate() {
        left.push_str(&format!("L{i},{name},{street},{city},{phone}\n"));
        gold.push_str(&format!("L{i},R{}\n", 100 + i));
    }
    for (i, (name, street, city, phone)) in COMPANIES.iter().enumerate().rev() {
        let name = match i % 3 {
            0 => name
                .replace("Corporation", "Corp")
                .replace("Industries", "Inds"),
            1 => format!("{name} Inc"),
            _ => name.to_uppercase(),
        };
        let street = street.replace("Street", "St").replace("Avenue", "Ave");
        let phone = phone.replace('-', " ");
        right.push_str(&format!("R{},{name},{street},{city},{phone}\n", 100 + i));
    }
    right.push_str("R900,Nakatomi Trading,2121 Avenue of the Stars,Century City,555-0900\n");
    right.push_str("R901,Duff Brewing,1 Beer Road,Springfield,555-0901\n");
    right.push_str("R902,Krusty Burger,7 Clown Court,Springfield,555-0902\n");
    dir.write("left.csv", &left);
    dir.write("right.csv", &right);
    dir.write("gold.csv", &gold);
}

/// People with duplicates: each of the first eight appears twice (one with a typo), the rest once.
fn dedupe_files(dir: &Dir) {
    let people = [
        ("mitchell", "green", "7 wallaby place", "19560409"),
        ("harley", "mccarthy", "177 pridham street", "19080419"),
        ("madeline", "mason", "54 hoseason street", "19190318"),
        ("isabelle", "white", "8 bernard street", "19830502"),
        ("taylor", "hathaway", "41 burnie street", "19780114"),
        ("lachlan", "reid", "12 kurrajong avenue", "19650910"),
        ("chloe", "noble", "3 colville place", "19920227"),
        ("joshua", "bond", "25 grimshaw crescent", "19870621"),
        ("emily", "thompson", "60 mort street", "19710806"),
        ("samuel", "clarke", "2 gould place", "19550330"),
        ("olivia", "nguyen", "19 ovens street", "19990101"),
        ("jack", "oconnor", "88 darling street", "19600712"),
    ];
    let mut records = String::from("rec_id,given_name,surname,address,date_of_birth\n");
    let mut gold = String::from("id_a,id_b\n");
    for (i, (given, surname, address, dob)) in people.iter().enumerate() {
        records.push_str(&format!("p{i},{given},{surname},{address},{dob}\n"));
        if i < 8 {
            let typo: String = {
                let mut s: Vec<char> = surname.chars().collect();
                s.swap(1, 2);
                s.into_iter().collect()
            };
            records.push_str(&format!("p{i}-dup,{given},{typo},{address},{dob}\n"));
            gold.push_str(&format!("p{i},p{i}-dup\n"));
        }
    }
    dir.write("records.csv", &records);
    dir.write("dedupe-gold.csv", &gold);
}

fn link_args<'a>(dir: &'a Dir, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "eval".into(),
        "link".into(),
        "--left".into(),
        dir.path("left.csv"),
        "--right".into(),
        dir.path("right.csv"),
        "--gold".into(),
        dir.path("gold.csv"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn link_json_has_the_documented_keys_and_finds_the_twins() {
    let dir = Dir::new();
    link_files(&dir);
    let args = link_args(&dir, &["--json"]);
    let (v, stderr) = dir.json(&strs(&args));
    for key in [
        "precision",
        "recall",
        "f1",
        "predicted_pairs",
        "candidates",
        "blocking_recall",
        "seconds",
    ] {
        assert!(v.get(key).is_some(), "missing `{key}` in {v}");
    }
    assert_eq!(v["gold_pairs"], 20);
    assert!(v["f1"].as_f64().unwrap() >= 0.9, "{v}");
    assert!(v["blocking_recall"].as_f64().unwrap() >= 0.95, "{v}");
    assert!(v["candidates"].as_u64().unwrap() >= 20, "{v}");
    assert!(v["seconds"].as_f64().unwrap() >= 0.0);
    assert!(!stderr.contains("warning"), "{stderr}");
    // The numbers agree with each other.
    let (p, r, f1) = (
        v["precision"].as_f64().unwrap(),
        v["recall"].as_f64().unwrap(),
        v["f1"].as_f64().unwrap(),
    );
    assert!((f1 - 2.0 * p * r / (p + r)).abs() < 1e-9);
    assert_eq!(
        v["true_positives"].as_u64().unwrap(),
        (r * 20.0).round() as u64
    );
}

#[test]
fn link_without_json_prints_a_readable_summary() {
    let dir = Dir::new();
    link_files(&dir);
    let out = dir.run(&strs(&link_args(&dir, &[])));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("link: "), "{text}");
    assert!(
        text.contains("(20 records)") && text.contains("(23 records)"),
        "{text}"
    );
    for word in ["precision", "recall", "F1", "candidates", "blocking recall"] {
        assert!(text.contains(word), "{word}: {text}");
    }
}

#[test]
fn dedupe_finds_the_planted_duplicates() {
    let dir = Dir::new();
    dedupe_files(&dir);
    let (v, _) = dir.json(&[
        "eval",
        "dedupe",
        "--records",
        &dir.path("records.csv"),
        "--gold",
        &dir.path("dedupe-gold.csv"),
        "--json",
    ]);
    assert_eq!(v["task"], "dedupe");
    assert_eq!(v["gold_pairs"], 8);
    assert!(v["f1"].as_f64().unwrap() >= 0.9, "{v}");
}

#[test]
fn gold_naming_unknown_ids_warns_with_the_count() {
    let dir = Dir::new();
    link_files(&dir);
    let gold = std::fs::read_to_string(dir.path("gold.csv")).unwrap();
    dir.write(
        "gold.csv",
        &format!("{gold}L77,R100\nL0,R404\nnobody,nowhere\n"),
    );
    let (v, stderr) = dir.json(&strs(&link_args(&dir, &["--json"])));
    assert_eq!(v["unknown_gold_ids"], 3);
    assert_eq!(v["gold_pairs"], 20);
    assert!(
        stderr.contains("warning") && stderr.contains("3 gold row") && stderr.contains("gold.csv"),
        "{stderr}"
    );
}

#[test]
fn a_spec_file_in_toml_or_json_is_used() {
    let dir = Dir::new();
    link_files(&dir);
    let toml = r#"
mode = "link"
clustering = "one_to_one"

[[comparisons]]
name = "name"
fields = ["name"]
comparator = "token_jaccard"
levels = [0.99, 0.5]

[[comparisons]]
name = "city"
fields = ["city"]
comparator = "exact"
levels = [1.0]

[blocking]
token_fields = ["name"]
top_k = 5
"#;
    dir.write("spec.toml", toml);
    let (v, _) = dir.json(&strs(&link_args(
        &dir,
        &["--spec", &dir.path("spec.toml"), "--json"],
    )));
    assert!(v["f1"].as_f64().unwrap() > 0.5, "{v}");

    // Thresholds above any probability: the run follows the spec, so nothing is a match.
    let json = r#"{"mode": "link", "clustering": "one_to_one",
        "comparisons": [{"name": "name", "fields": ["name"], "comparator": "token_jaccard", "levels": [0.99, 0.5]}],
        "blocking": {"token_fields": ["name"], "top_k": 1},
        "thresholds": {"matched": 1.5, "review": 1.5}}"#;
    dir.write("spec.json", json);
    let (v, _) = dir.json(&strs(&link_args(
        &dir,
        &["--spec", &dir.path("spec.json"), "--json"],
    )));
    assert_eq!(v["predicted_pairs"], 0, "{v}");
    assert_eq!(v["f1"].as_f64(), Some(0.0), "{v}");
    // One neighbour per record on either side at most.
    assert!(v["candidates"].as_u64().unwrap() <= 43, "{v}");

    // A spec naming a field the files lack, or made for the other task, names the spec file.
    dir.write(
        "bad.toml",
        &toml.replace("fields = [\"city\"]", "fields = [\"town\"]"),
    );
    let stderr = dir.bad_input(&strs(&link_args(&dir, &["--spec", &dir.path("bad.toml")])));
    assert!(
        stderr.contains("bad.toml") && stderr.contains("town"),
        "{stderr}"
    );
    dir.write(
        "dedupe.toml",
        &toml.replace("mode = \"link\"", "mode = \"dedupe\""),
    );
    let stderr = dir.bad_input(&strs(&link_args(
        &dir,
        &["--spec", &dir.path("dedupe.toml")],
    )));
    assert!(
        stderr.contains("dedupe.toml") && stderr.contains("link"),
        "{stderr}"
    );
    dir.write("broken.json", "{\"mode\": ");
    let stderr = dir.bad_input(&strs(&link_args(
        &dir,
        &["--spec", &dir.path("broken.json")],
    )));
    assert!(stderr.contains("broken.json"), "{stderr}");
}

/// Replaces `right.csv` with `text` and checks the error names the file and `expect`.
fn bad_right(dir: &Dir, text: &str, expect: &[&str]) {
    dir.write("right.csv", text);
    let stderr = dir.bad_input(&strs(&link_args(dir, &["--json"])));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("right.csv"), "{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "`{e}` not in: {stderr}");
    }
}

#[test]
fn bad_record_files_name_the_file_and_line_and_exit_2() {
    let dir = Dir::new();
    link_files(&dir);
    bad_right(
        &dir,
        "name,city\nGlobex,Springfield\n",
        &["missing id column", "line 1"],
    );
    bad_right(
        &dir,
        "id,name,city\nR1,Globex,Springfield\nR2,Initech,Austin\nR1,Hooli,Palo Alto\n",
        &["duplicate id `R1`", "line 4"],
    );
    bad_right(
        &dir,
        "id,name,city\nR1,Globex,Springfield\nR2,Initech\n",
        &["ragged row", "line 3"],
    );
    bad_right(&dir, "", &["empty file"]);
    bad_right(&dir, "id,name,city\n", &["no rows", "line 1"]);
}

#[test]
fn bad_gold_and_missing_files_exit_2() {
    let dir = Dir::new();
    link_files(&dir);
    dir.write("gold.csv", "");
    let stderr = dir.bad_input(&strs(&link_args(&dir, &[])));
    assert!(
        stderr.contains("gold.csv") && stderr.contains("empty file"),
        "{stderr}"
    );
    dir.write("gold.csv", "left_id,right_id\n");
    let stderr = dir.bad_input(&strs(&link_args(&dir, &[])));
    assert!(
        stderr.contains("gold.csv") && stderr.contains("no pairs"),
        "{stderr}"
    );
    dir.write("gold.csv", "left_id,right_id\nL0,R100\nL1\n");
    let stderr = dir.bad_input(&strs(&link_args(&dir, &[])));
    assert!(
        stderr.contains("gold.csv") && stderr.contains("line 3"),
        "{stderr}"
    );

    std::fs::remove_file(dir.path("left.csv")).unwrap();
    let stderr = dir.bad_input(&strs(&link_args(&dir, &[])));
    assert!(
        stderr.contains("left.csv") && stderr.contains("cannot open"),
        "{stderr}"
    );
    // A folder where a file belongs is the user's mistake too.
    std::fs::create_dir(dir.path("left.csv")).unwrap();
    let stderr = dir.bad_input(&strs(&link_args(&dir, &[])));
    assert!(
        stderr.contains("left.csv") && stderr.contains("it is a folder"),
        "{stderr}"
    );
    // A missing required argument is a usage error.
    let stderr = dir.bad_input(&["eval", "dedupe", "--gold", "g.csv"]);
    assert!(stderr.contains("--records"), "{stderr}");
}

#[test]
fn dedupe_bad_records_name_file_and_line() {
    let dir = Dir::new();
    dedupe_files(&dir);
    let records = Path::new(&dir.path("records.csv")).to_path_buf();
    std::fs::write(&records, "rec_id,given_name\np1,ann\np1,bob\n").unwrap();
    let stderr = dir.bad_input(&[
        "eval",
        "dedupe",
        "--records",
        &dir.path("records.csv"),
        "--gold",
        &dir.path("dedupe-gold.csv"),
    ]);
    assert!(
        stderr.contains("records.csv") && stderr.contains("line 3") && stderr.contains("duplicate"),
        "{stderr}"
    );
}
