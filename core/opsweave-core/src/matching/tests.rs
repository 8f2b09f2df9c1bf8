use super::*;
use proptest::prelude::*;

const ALL: [Comparator; 12] = [
    Comparator::Exact,
    Comparator::JaroWinkler,
    Comparator::Levenshtein,
    Comparator::TokenJaccard,
    Comparator::QgramJaccard,
    Comparator::TokenSet,
    Comparator::TfidfCosine,
    Comparator::Identifier,
    Comparator::Numeric,
    Comparator::Date,
    Comparator::Email,
    Comparator::Domain,
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 @.,/-]{0,24}",
        "[A-Z]{2,4}-?[0-9]{2,5}[A-Z]?",
        "-?[0-9]{1,6}(\\.[0-9]{1,2})?",
        "(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])",
        "[a-z]{1,8}@[a-z]{1,8}\\.(com|org)",
        "\\PC{0,16}",
    ]
}

proptest! {
    #[test]
    fn comparators_are_symmetric_and_bounded(a in value(), b in value()) {
        for c in ALL {
            let ab = similarity(c, &a, &b);
            let ba = similarity(c, &b, &a);
            match (ab, ba) {
                (Some(x), Some(y)) => {
                    prop_assert!((0.0..=1.0).contains(&x), "{c:?} {a:?} {b:?} -> {x}");
                    prop_assert!((x - y).abs() < 1e-6, "{c:?} not symmetric on {a:?} {b:?}: {x} vs {y}");
                }
                (None, None) => {}
                other => prop_assert!(false, "{c:?} missing on one side only: {other:?}"),
            }
        }
    }

    #[test]
    fn a_value_is_most_similar_to_itself(a in value()) {
        for c in ALL {
            if let Some(x) = similarity(c, &a, &a) {
                prop_assert!(x > 0.999, "{c:?} {a:?} -> {x}");
            }
        }
    }
}

/// Small people tables with planted typo twins and strangers.
fn people() -> (Table, Table, Gold) {
    let first = [
        "anna", "bruno", "carla", "dmitri", "elena", "farid", "greta", "hiro", "ines", "jonas",
        "kofi", "lena", "marco", "nadia", "oscar", "priya", "quinn", "rosa", "sven", "tara",
    ];
    let last = [
        "smith", "garcia", "mueller", "rossi", "novak", "khan", "silva", "tanaka", "dubois",
        "jensen", "okafor", "larsen", "ricci", "haddad", "berg", "patel", "walsh", "moreno",
        "lind", "fischer",
    ];
    let towns = ["springfield", "riverton", "lakeside", "hillview", "oakdale"];
    let mut l = vec![vec![
        "id".to_string(),
        "given".into(),
        "surname".into(),
        "town".into(),
        "dob".into(),
        "phone".into(),
    ]];
    let mut r = l.clone();
    let mut gold = String::from("left_id,right_id\n");
    for i in 0..60usize {
        let given = first[i % 20];
        let sur = last[(i * 7 + i / 20) % 20];
        let town = towns[i % 5];
        let dob = format!(
            "19{:02}-{:02}-{:02}",
            40 + i % 50,
            1 + i % 12,
            1 + (i * 3) % 28
        );
        let phone = format!("555{:07}", i * 7919 % 10_000_000);
        l.push(vec![
            format!("L{i}"),
            given.into(),
            sur.into(),
            town.into(),
            dob.clone(),
            phone.clone(),
        ]);
        if i < 45 {
            // A twin with a typo in one field.
            let typo_given: String = if i % 3 == 0 {
                given.chars().rev().collect::<String>()
            } else {
                given.to_string()
            };
            let typo_sur = if i % 3 == 1 {
                format!("{sur}e")
            } else {
                sur.to_string()
            };
            let dob2 = if i % 3 == 2 {
                dob.replace('-', "/")
            } else {
                dob.clone()
            };
            r.push(vec![
                format!("R{i}"),
                typo_given,
                typo_sur,
                town.into(),
                dob2,
                phone,
            ]);
            gold.push_str(&format!("L{i},R{i}\n"));
        }
    }
    for i in 0..20usize {
        r.push(vec![
            format!("S{i}"),
            first[(i * 3) % 20].into(),
            last[(i * 11 + 3) % 20].into(),
            towns[(i + 2) % 5].into(),
            format!("18{:02}-06-15", i),
            format!("777{:07}", i),
        ]);
    }
    let to_table = |name: &str, rows: Vec<Vec<String>>| {
        let mut it = rows.into_iter();
        let header = it.next().unwrap_or_default();
        Table::new(name, header, it.collect()).unwrap()
    };
    let (lt, rt) = (to_table("l.csv", l), to_table("r.csv", r));
    let g = Gold::from_csv(gold.as_bytes(), "g.csv", &lt, Some(&rt)).unwrap();
    (lt, rt, g)
}

#[test]
fn links_planted_twins_on_synthetic_people() {
    let (l, r, gold) = people();
    let (eval, outcome) = evaluate_link(&l, &r, &gold, None).unwrap();
    assert!(eval.blocking_recall > 0.99, "{eval:?}");
    assert!(eval.f1 > 0.95, "{eval:?}\n{:?}", outcome.model);
    let pair = &outcome.matches[0];
    assert_eq!(pair.band, Band::Match);
    assert_eq!(pair.explanation.len(), outcome.spec.comparisons.len());
    let sum: f64 = pair.explanation.iter().map(|c| c.weight).sum();
    let prior = (outcome.model.lambda / (1.0 - outcome.model.lambda)).log2();
    assert!((sum + prior - pair.score).abs() < 1e-9);
}

#[test]
fn dedupes_planted_twins_in_one_table() {
    let (l, r, _) = people();
    let mut rows = l.rows.clone();
    rows.extend(r.rows.iter().cloned());
    let all = Table::new("all.csv", l.columns.clone(), rows).unwrap();
    let gold_csv: String = std::iter::once("a,b\n".to_string())
        .chain((0..45).map(|i| format!("L{i},R{i}\n")))
        .collect();
    let gold = Gold::from_csv(gold_csv.as_bytes(), "g.csv", &all, None).unwrap();
    let (eval, outcome) = evaluate_dedupe(&all, &gold, None).unwrap();
    assert!(eval.f1 > 0.9, "{eval:?}");
    assert!(outcome.clusters.iter().all(|c| c.len() >= 2));
}

#[test]
fn a_spec_that_names_a_missing_field_is_refused() {
    let (l, r, _) = people();
    let mut spec = MatchSpec::infer(&l, Some(&r));
    spec.blocking.token_fields.push("shoe_size".into());
    let err = run_link(&l, &r, Some(&spec)).unwrap_err();
    assert!(err.message().contains("shoe_size"), "{err}");
    assert!(run_dedupe(&l, Some(&spec)).is_err());
}

#[test]
fn supervised_mode_takes_m_from_labels() {
    let (l, r, gold) = people();
    // Half the true pairs as labels, as a reviewer would have confirmed them.
    let labels = Gold {
        pairs: gold
            .pairs
            .iter()
            .copied()
            .filter(|(i, _)| i % 2 == 0)
            .collect(),
        unknown: 0,
    };
    let outcome = run_link_supervised(&l, &r, None, &labels).unwrap();
    let eval = score_against_gold(&outcome, &gold, 0.0);
    assert!(eval.f1 > 0.95, "{eval:?}");
    assert!(outcome.model.comparisons.iter().all(|c| c.m[0] > c.u[0]));
}

#[test]
fn nothing_to_compare_names_the_columns_no_row_fills() {
    let rows = (0..6)
        .map(|i| vec![format!("r{i}"), String::new()])
        .collect();
    let table = Table::new("records", vec!["id".into(), "summry".into()], rows).unwrap();
    let gold = Gold::from_csv("a,b\nr0,r1\n".as_bytes(), "g.csv", &table, None).unwrap();
    let err = evaluate_dedupe(&table, &gold, None).unwrap_err();
    assert!(
        err.message().contains("nothing to compare")
            && err.message().contains("column `summry` of records")
            && err.message().contains("misspelt"),
        "{err}"
    );
}
