//! A broken policy directory is refused with every problem at its file, line and column.

use std::fs;
use std::path::{Path, PathBuf};

use kafka_pdp_core::PolicySnapshot;

fn default_policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// A copy of the default policies, with `edits` applied as (file, text).
fn policy_dir(edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(default_policies()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    for (file, text) in edits {
        fs::write(dir.path().join(file), text).unwrap();
    }
    dir
}

fn load_error(dir: &Path) -> String {
    match PolicySnapshot::load_dir(dir) {
        Ok(_) => panic!("the broken set was accepted"),
        Err(e) => {
            let shown = e.to_string().replace(&format!("{}/", dir.display()), "");
            eprintln!("{shown}");
            shown
        }
    }
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let broken = "@id(\"ok\")\npermit (principal, action, resource);\n\n@id(\"bad\")\npermit (\n    principal,\n    action,\n    resource\n  when { true };\n";
    let dir = policy_dir(&[("extra.cedar", broken)]);
    let err = load_error(dir.path());
    assert!(err.starts_with("extra.cedar:9:3: "), "{err}");
}

#[test]
fn a_type_error_in_strict_mode_names_its_place() {
    let text =
        "@id(\"typo\")\npermit (principal, action, resource)\nwhen { principal.nmae == \"x\" };\n";
    let dir = policy_dir(&[("extra.cedar", text)]);
    let err = load_error(dir.path());
    assert!(err.starts_with("extra.cedar:3:8: "), "{err}");
    assert!(err.contains("nmae"), "{err}");
}

#[test]
fn a_missing_id_and_a_duplicate_id_are_both_reported() {
    let text = "permit (principal, action, resource);\n\n@id(\"producer\")\nforbid (principal, action, resource);\n";
    let dir = policy_dir(&[("extra.cedar", text)]);
    let err = load_error(dir.path());
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("extra.cedar:1:1: policy has no `@id")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("duplicate policy id `producer`")),
        "{err}"
    );
}

#[test]
fn bad_bindings_and_links_name_their_place() {
    let bindings = "[\n  {\"uid\": {\"type\": \"Kafka::Principal\", \"id\": \"User:x\"},\n   \"attrs\": {\"principal_type\": \"User\"}, \"parents\": []}\n]\n";
    let links = "[\n  {\"template_id\": \"producer\", \"link_id\": \"p1\",\n   \"args\": {\"?principal\": \"Kafka::Role::\\\"r\\\"\", \"?resource\": \"not a uid\"}}\n]\n";
    let dir = policy_dir(&[("bindings.entities.json", bindings), ("links.json", links)]);
    let err = load_error(dir.path());
    assert!(err.contains("bindings.entities.json:2:"), "{err}");
    assert!(err.contains("links.json:2:"), "{err}");
    assert!(err.contains("`not a uid`"), "{err}");
}

#[test]
fn malformed_json_names_line_and_column() {
    let dir = policy_dir(&[("links.json", "[\n  {\"template_id\": }\n]")]);
    let err = load_error(dir.path());
    assert!(err.starts_with("links.json:2:19: invalid links"), "{err}");
}

#[test]
fn a_schema_error_is_refused() {
    let dir = policy_dir(&[("schema.cedarschema", "namespace Kafka { entity ; }")]);
    let err = load_error(dir.path());
    assert!(err.starts_with("schema.cedarschema:1:"), "{err}");
}
