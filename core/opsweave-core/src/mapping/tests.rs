use super::presets::preset;
use super::*;
use crate::source::{SourceItem, SourceReader};
use chrono::TimeZone;
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .expect("valid time")
}

/// Reads a sample file through a preset: (records, rejections).
fn run(preset_name: &str, data: &[u8]) -> (Vec<Normalised>, Vec<Rejection>) {
    let mapping = preset(preset_name).unwrap();
    let compiled = mapping.compile().unwrap();
    let reader = SourceReader::new(
        mapping.format.unwrap(),
        data,
        "sample",
        &compiled.required_columns(),
        mapping.records.as_deref(),
    )
    .unwrap();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for item in reader {
        match item.unwrap() {
            SourceItem::Raw(raw) => match compiled.apply(&Scope::default(), &raw, now()) {
                Ok(n) => ok.push(n),
                Err(r) => bad.push(r),
            },
            SourceItem::Rejected(r) => bad.push(r),
        }
    }
    (ok, bad)
}

#[test]
fn odoo_sample_maps_every_row() {
    let (ok, bad) = run(
        "odoo-crm-lead",
        include_bytes!("../../../../examples/data/odoo-crm-lead.csv"),
    );
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(ok.len(), 10);
    let globex = &ok[0];
    assert_eq!(
        globex.record.title,
        "Data platform migration to AWS — Globex Corporation"
    );
    assert_eq!(
        globex.record.source.external_id,
        "__export__.crm_lead_101_5f3a1c"
    );
    assert_eq!(
        globex.record.fields["website"],
        Value::Domain("globex.com".into())
    );
    let task = globex.task.as_ref().unwrap();
    assert_eq!(task.status, Some(TaskStatus::Todo));
    assert_eq!(task.due, chrono::NaiveDate::from_ymd_opt(2026, 11, 23));
    assert_eq!(task.signals.labels, vec!["excellent".to_string()]);
    assert_eq!(task.signals.value, Some(480_000.0));
    assert_eq!(task.signals.probability, Some(60.0));
    let won = ok
        .iter()
        .find(|n| n.record.title.starts_with("Managed SOC"))
        .unwrap();
    assert_eq!(won.task.as_ref().unwrap().status, Some(TaskStatus::Done));
}

#[test]
fn ace_sample_maps_every_row() {
    let (ok, bad) = run(
        "ace-opportunity",
        include_bytes!("../../../../examples/data/ace-opportunity.csv"),
    );
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(ok.len(), 8);
    let first = &ok[0];
    assert_eq!(first.record.source.external_id, "O4518823");
    assert_eq!(
        first.record.fields["aws_account_id"],
        Value::Text("123456789012".into())
    );
    assert_eq!(first.task.as_ref().unwrap().signals.probability, Some(60.0));
    // The console writes US dates; ISO dates are read as well.
    let us = String::from_utf8_lossy(include_bytes!(
        "../../../../examples/data/ace-opportunity.csv"
    ))
    .replace("2026-11-24", "11/24/2026");
    let (ok, bad) = run("ace-opportunity", us.as_bytes());
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        ok[0].task.as_ref().unwrap().due,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
    );
}

#[test]
fn gmail_jira_github_samples_map() {
    let (gmail, bad) = run(
        "gmail-message",
        include_bytes!("../../../../examples/data/gmail-messages.json"),
    );
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(gmail.len(), 6);
    assert_eq!(
        gmail[0].record.title,
        "Globex migration: signed SOW by Monday?"
    );
    assert_eq!(
        gmail[0].record.fields["from"],
        Value::Email("hank.scorpio@globex.com".into())
    );
    assert_eq!(
        gmail[0].task.as_ref().unwrap().status,
        Some(TaskStatus::Todo)
    );
    assert_eq!(
        gmail[1].task.as_ref().unwrap().status,
        Some(TaskStatus::Done)
    );
    assert_eq!(gmail[1].links[0].to_external_id, "18c2f1a9b3e4d501");
    assert_eq!(gmail[0].line, 2);

    let (jira, bad) = run(
        "jira-issue",
        include_bytes!("../../../../examples/data/jira-search.json"),
    );
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(jira.len(), 8);
    assert_eq!(
        jira[0].record.title,
        "OPS-101 Globex migration cutover plan"
    );
    assert_eq!(
        jira[0].task.as_ref().unwrap().status,
        Some(TaskStatus::Doing)
    );
    assert_eq!(jira[4].links[0].kind, LinkKind::ParentOf);
    assert_eq!(jira[4].links[0].to_external_id, "OPS-101");
    assert_eq!(jira[5].task.as_ref().unwrap().due, None);

    let (github, bad) = run(
        "github-issue",
        include_bytes!("../../../../examples/data/github-issues.json"),
    );
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(github.len(), 6);
    assert_eq!(
        github[0].record.title,
        "#412 Login fails for SSO users after IdP certificate rotation"
    );
    assert_eq!(
        github[0].task.as_ref().unwrap().signals.labels,
        vec!["bug".to_string(), "P0".to_string()]
    );
    assert_eq!(
        github[0].record.source.url.as_deref(),
        Some("https://github.example/opsweave-demo/platform/issues/412")
    );
}

#[test]
fn bad_rows_are_rejected_by_line_and_field() {
    let (ok, bad) = run(
        "odoo-crm-lead",
        include_bytes!("../../../../examples/data/odoo-crm-lead-bad-rows.csv"),
    );
    assert_eq!(ok.len(), 2, "{bad:?}");
    let found: Vec<(u64, Option<&str>)> =
        bad.iter().map(|r| (r.line, r.field.as_deref())).collect();
    assert_eq!(
        found,
        vec![
            (3, Some("date_deadline")),
            (4, Some("name")),
            (5, None),
            (6, Some("user_id")),
            (7, Some("expected_revenue")),
        ]
    );
    assert!(bad[0].reason.contains("2026-13-01"), "{}", bad[0].reason);
    assert!(bad[1].reason.contains("missing required field"));
    assert!(bad[2].reason.contains("expected 11 columns, found 3"));
}

#[test]
fn same_item_same_hash_and_id_changed_item_new_hash() {
    let data = include_bytes!("../../../../examples/data/odoo-crm-lead.csv");
    let (a, _) = run("odoo-crm-lead", data);
    let (b, _) = run("odoo-crm-lead", data);
    assert_eq!(a[0].record.id, b[0].record.id);
    assert_eq!(a[0].record.content_hash, b[0].record.content_hash);
    let changed = String::from_utf8_lossy(data).replace("480000", "490000");
    let (c, _) = run("odoo-crm-lead", changed.as_bytes());
    assert_eq!(a[0].record.id, c[0].record.id);
    assert_ne!(a[0].record.content_hash, c[0].record.content_hash);
}

#[test]
fn probabilities_are_percent_unless_the_mapping_says_fraction() {
    let csv = b"id,name,partner_name,email_from,website,expected_revenue,probability,date_deadline,stage_id,user_id,priority\n\
                P1,One,A,a@a.com,a.com,480000,1,,New,B,\n";
    let signals = |mapping: Mapping| {
        let compiled = mapping.compile().unwrap();
        let reader = SourceReader::new(
            mapping.format.unwrap(),
            &csv[..],
            "sample",
            &compiled.required_columns(),
            None,
        )
        .unwrap();
        let item = reader.into_iter().next().unwrap().unwrap();
        let SourceItem::Raw(raw) = item else {
            panic!("rejected: {item:?}")
        };
        let n = compiled.apply(&Scope::default(), &raw, now()).unwrap();
        n.task.unwrap().signals.probability
    };
    // Odoo's 1 is 1 %.
    assert_eq!(signals(preset("odoo-crm-lead").unwrap()), Some(1.0));
    let mut fraction = preset("odoo-crm-lead").unwrap();
    fraction.task.as_mut().unwrap().probability_scale = ProbabilityScale::Fraction;
    assert_eq!(signals(fraction.clone()), Some(100.0));
    // The scale survives a round trip through TOML, and the default is not written out.
    let toml = fraction.to_toml().unwrap();
    assert!(toml.contains("probability_scale = \"fraction\""), "{toml}");
    assert_eq!(Mapping::from_toml(&toml).unwrap(), fraction);
    assert!(!preset("odoo-crm-lead")
        .unwrap()
        .to_toml()
        .unwrap()
        .contains("probability_scale"));
}

#[test]
fn a_due_instant_falls_on_the_users_day() {
    let mapping = Mapping::from_toml(
        r#"
name = "due-instants"
source = "tracker"
entity = "task"
format = "jsonl"
id = "id"
title = "{title}"
[fields.title]
from = "title"
[fields.due]
from = "due"
type = "datetime"
[fields.day]
from = "day"
type = "date"
[task]
due = "due"
"#,
    )
    .unwrap();
    let due = |compiled: &CompiledMapping, row: serde_json::Value| {
        let raw = RawItem {
            line: 1,
            payload: row,
        };
        let n = compiled.apply(&Scope::default(), &raw, now()).unwrap();
        n.task.unwrap().due.unwrap().to_string()
    };
    let row = serde_json::json!({"id": "1", "title": "t", "due": "2026-11-23T00:30:00+01:00"});
    // 23:30 UTC on the 22nd: the 22nd in UTC, the 23rd an hour east of it.
    assert_eq!(due(&mapping.compile().unwrap(), row.clone()), "2026-11-22");
    let east = mapping
        .compile()
        .unwrap()
        .with_day_zone(Zone::east_minutes(60).unwrap());
    assert_eq!(due(&east, row.clone()), "2026-11-23");
    let west = mapping
        .compile()
        .unwrap()
        .with_day_zone(Zone::east_minutes(-600).unwrap());
    assert_eq!(due(&west, row), "2026-11-22");
    // A field typed `date` keeps the day as written, whatever the offset.
    let mut by_day = mapping.clone();
    by_day.task.as_mut().unwrap().due = Some("day".into());
    let row = serde_json::json!({"id": "1", "title": "t", "day": "2026-11-23T00:30:00+01:00"});
    assert_eq!(
        due(
            &by_day
                .compile()
                .unwrap()
                .with_day_zone(Zone::east_minutes(-600).unwrap()),
            row
        ),
        "2026-11-23"
    );
    // In a named zone the due day follows daylight saving time: 22:30 UTC on 30 June is
    // 1 July in Berlin (+2 then), though a fixed +1 puts it on 30 June.
    let row = serde_json::json!({"id": "1", "title": "t", "due": "2026-06-30T22:30:00Z"});
    let berlin = mapping
        .compile()
        .unwrap()
        .with_day_zone(Zone::parse("Europe/Berlin").unwrap());
    assert_eq!(due(&berlin, row.clone()), "2026-07-01");
    assert_eq!(due(&east, row), "2026-06-30");
    // A field's timezone may be named too; a name the tz database lacks is refused at compile.
    let mut named = mapping.clone();
    named.fields.get_mut("due").unwrap().timezone = Some("America/New_York".into());
    let row = serde_json::json!({"id": "1", "title": "t", "due": "2026-07-01T21:30:00"});
    assert_eq!(due(&named.compile().unwrap(), row), "2026-07-02");
    named.fields.get_mut("due").unwrap().timezone = Some("Mars/Olympus".into());
    let err = named.compile().unwrap_err();
    assert_eq!(
        err.location().field.as_deref(),
        Some("fields.due.timezone"),
        "{err}"
    );
}

#[test]
fn an_api_answer_read_as_one_item_names_the_records_pointer() {
    let compiled = preset("gmail-message").unwrap().compile().unwrap();
    let raw = RawItem {
        line: 1,
        payload: serde_json::json!({"messages": [{"id": "18c2", "threadId": "18c2"}], "resultSizeEstimate": 1}),
    };
    let rejection = compiled.apply(&Scope::default(), &raw, now()).unwrap_err();
    assert!(
        rejection.reason.contains("missing external id")
            && rejection.reason.contains("records = \"/messages\""),
        "{}",
        rejection.reason
    );
}

#[test]
fn a_probability_that_is_not_a_number_is_no_probability() {
    for text in ["NaN", "inf", "-inf"] {
        assert_eq!(Value::Text(text.into()).as_f64(), None, "{text}");
    }
    assert_eq!(Value::Text(" 40 ".into()).as_f64(), Some(40.0));
}

#[test]
fn compile_reports_unknown_template_fields_and_bad_paths() {
    let mut m = preset("odoo-crm-lead").unwrap();
    m.title = "{nmae}".into();
    let err = m.compile().unwrap_err();
    assert!(
        err.message().contains("nmae") && err.message().contains("title"),
        "{err}"
    );
    let mut m = preset("odoo-crm-lead").unwrap();
    m.task.as_mut().unwrap().due = Some("deadline".into());
    assert!(m.compile().unwrap_err().message().contains("deadline"));
    assert!(Mapping::from_toml("name = 1").is_err());
    let unknown = "name='x'\nsource='s'\nentity='task'\nid='id'\ntitle='{/t}'\nbogus=1\n";
    let err = Mapping::from_toml(unknown).unwrap_err();
    assert!(err.message().contains("bogus"), "{err}");
    assert_eq!(err.location().line, Some(6), "the line of the unknown key");
    // A mistake inside a field's table names its line too.
    let mut text = preset("odoo-crm-lead").unwrap().to_toml().unwrap();
    text = text.replacen("currency = \"USD\"", "currency = USD", 1);
    let line = text.lines().position(|l| l == "currency = USD").unwrap() as u64 + 1;
    assert_eq!(
        Mapping::from_toml(&text).unwrap_err().location().line,
        Some(line)
    );
}

#[test]
fn a_probability_outside_its_scale_is_rejected_on_its_field() {
    let compiled = preset("odoo-crm-lead").unwrap().compile().unwrap();
    let row = |p: &str| RawItem {
        line: 7,
        payload: serde_json::json!({"id": "P1", "name": "One", "expected_revenue": "10", "probability": p}),
    };
    for bad in ["-10", "150", "1e3"] {
        let r = compiled
            .apply(&Scope::default(), &row(bad), now())
            .unwrap_err();
        assert_eq!(
            (r.line, r.field.as_deref()),
            (7, Some("probability")),
            "{bad}"
        );
        assert!(r.reason.contains("outside 0-100"), "{bad}: {}", r.reason);
    }
    for good in ["0", "100", "37.5"] {
        assert!(
            compiled.apply(&Scope::default(), &row(good), now()).is_ok(),
            "{good}"
        );
    }
}

#[test]
fn task_roles_must_name_fields_of_a_fitting_type() {
    let refused = |edit: &dyn Fn(&mut Mapping), role: &str| {
        let mut m = preset("odoo-crm-lead").unwrap();
        edit(&mut m);
        let err = m.compile().unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some(role), "{err}");
        err.message().to_string()
    };
    let e = refused(
        &|m| m.task.as_mut().unwrap().due = Some("name".into()),
        "task.due",
    );
    assert!(
        e.contains("field `name` is \"string\"") && e.contains("\"date\" or \"datetime\""),
        "{e}"
    );
    refused(
        &|m| m.task.as_mut().unwrap().value = Some("name".into()),
        "task.value",
    );
    refused(
        &|m| m.task.as_mut().unwrap().probability = Some("website".into()),
        "task.probability",
    );
    refused(&|m| m.created_at = Some("probability".into()), "created_at");
    let e = refused(
        &|m| m.fields.get_mut("expected_revenue").unwrap().currency = Some("DOLLARS".into()),
        "fields.expected_revenue.currency",
    );
    assert!(e.contains("three-letter"), "{e}");
    // Every preset passes, ACE's probability being an enum of numbers.
    for name in crate::mapping::presets::names() {
        preset(name).unwrap().compile().unwrap();
    }
    // An enum of words is no probability.
    let mut m = preset("ace-opportunity").unwrap();
    let stage = m.fields.get("stage").unwrap().clone();
    m.fields.insert("stage_probability".into(), stage);
    assert!(m.compile().is_err());
}

proptest! {
    #[test]
    fn apply_never_panics_on_arbitrary_rows(
        id in "\\PC{0,12}",
        name in "\\PC{0,20}",
        revenue in "\\PC{0,10}",
        deadline in "\\PC{0,12}",
        prio in "\\PC{0,3}",
    ) {
        let compiled = preset("odoo-crm-lead").unwrap().compile().unwrap();
        let payload = serde_json::json!({
            "id": id, "name": name, "partner_name": "P", "email_from": "", "website": "",
            "expected_revenue": revenue, "probability": "", "date_deadline": deadline,
            "stage_id": "New", "user_id": "", "priority": prio,
        });
        let raw = RawItem { line: 2, payload };
        match compiled.apply(&Scope::default(), &raw, now()) {
            Ok(n) => {
                prop_assert!(!n.record.title.is_empty());
                prop_assert!(!n.record.source.external_id.is_empty());
            }
            Err(r) => {
                prop_assert_eq!(r.line, 2);
                prop_assert!(!r.reason.is_empty());
            }
        }
    }
}
