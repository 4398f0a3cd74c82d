//! Embeds the default policy set (`policies/` at the repository root) in the
//! binary, so `kafka-pdp serve` without `--policy-dir` needs no files.
//!
//! The `*.cedar` files are listed here rather than by hand in the source, so
//! that a policy added to `policies/` is embedded without a code change.

use std::{env, fmt::Write, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let dir = manifest.join("../../policies").canonicalize()?;
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut cedar: Vec<_> = fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    cedar.sort();

    let mut out = String::new();
    writeln!(out, "kafka_pdp_server::EmbeddedPolicies {{")?;
    writeln!(
        out,
        "    schema: {},",
        optional(&dir.join("schema.cedarschema"))
    )?;
    writeln!(out, "    policies: &[")?;
    for path in &cedar {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        writeln!(
            out,
            "        ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )?;
    }
    writeln!(out, "    ],")?;
    writeln!(
        out,
        "    entities: {},",
        optional(&dir.join("bindings.entities.json"))
    )?;
    writeln!(out, "    links: {},", optional(&dir.join("links.json")))?;
    writeln!(out, "}}")?;

    fs::write(
        PathBuf::from(env::var("OUT_DIR")?).join("embedded_policies.rs"),
        out,
    )?;
    Ok(())
}

/// `include_str!` of the file, or an empty string when the set has no such file.
fn optional(path: &std::path::Path) -> String {
    println!("cargo:rerun-if-changed={}", path.display());
    if path.exists() {
        format!("include_str!({:?})", path.display().to_string())
    } else {
        "\"\"".to_owned()
    }
}
