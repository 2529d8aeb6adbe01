//! The committed JSON Schema is the one callbook uses and prints.

mod support;

use std::fs;

fn schema() -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string("schema/playbook.schema.json").unwrap()).unwrap()
}

fn yaml_as_json(path: &std::path::Path) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap();
    callbook::playbook::yaml::parse(&text).unwrap().0
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = support::run(&["schema"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout,
        fs::read_to_string("schema/playbook.schema.json").unwrap()
    );
}

#[test]
fn committed_schema_accepts_every_example() {
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    for entry in fs::read_dir("playbooks").unwrap() {
        let path = entry.unwrap().path();
        // Test files (`*.test.yaml`) have their own schema.
        if path.extension().is_some_and(|e| e == "yaml") && !callbook::playtest::is_test_file(&path)
        {
            let errors: Vec<String> = validator
                .iter_errors(&yaml_as_json(&path))
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
}

#[test]
fn committed_schema_rejects_every_schema_level_bad_fixture() {
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    // These fixtures are valid YAML whose problem only the meaning checks can see.
    let meaning_only = ["unknown-message", "bad-phone", "bad-timezone"];
    for entry in fs::read_dir("tests/fixtures/invalid").unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let valid = validator.is_valid(&yaml_as_json(&path));
        assert_eq!(valid, meaning_only.contains(&stem.as_str()), "{stem}");
    }
}

/// The schema states the same bounds that callbook enforces, so an editor
/// and `callbook validate` never disagree about a number.
#[test]
fn schema_bounds_are_the_ones_callbook_enforces() {
    use callbook::limits;
    let schema = schema();
    let props = &schema["properties"];
    let bound = |pointer: &str| {
        props
            .pointer(pointer)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("schema has no {pointer}"))
    };
    assert_eq!(
        bound("/provider/properties/rate_limit/minimum"),
        limits::MIN_RATE_LIMIT
    );
    assert_eq!(
        bound("/provider/properties/rate_limit/maximum"),
        limits::MAX_RATE_LIMIT
    );
    assert_eq!(
        bound("/provider/properties/concurrency/maximum"),
        f64::from(limits::MAX_CONCURRENCY)
    );
    assert_eq!(
        bound("/provider/properties/retries/maximum"),
        f64::from(limits::MAX_RETRIES)
    );
    assert_eq!(
        bound("/limits/properties/max_calls/maximum"),
        limits::MAX_CALLS as f64
    );
    assert_eq!(
        bound("/limits/properties/max_message_bytes/maximum"),
        limits::MAX_MESSAGE_BYTES as f64
    );
    assert_eq!(
        bound("/limits/properties/max_message_bytes/default"),
        limits::DEFAULT_MAX_MESSAGE_BYTES as f64
    );
}
