//! Loading a policy directory into an immutable [`PolicySnapshot`].
//!
//! A directory holds `schema.cedarschema`, any number of `*.cedar` files,
//! `bindings.entities.json` (principals with their roles and groups) and
//! `links.json` (template links, in the upstream `cedar` CLI's
//! `--template-linked` format). Everything is checked before a snapshot
//! exists: parse errors, schema errors, strict validation, bindings, links and
//! policy ids. Every problem is reported, each with its file, line and
//! column; a directory with any problem never becomes a snapshot.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Effect, Entities, EntityUid, Policy, PolicyId, PolicySet, Schema, SlotId, Template,
    ValidationMode, Validator,
};
use miette::Diagnostic;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::entities::EntityModel;
use crate::error::{line_column, lowercase_first, LoadError, Problems};
use crate::index::Index;

/// The schema file of a policy directory.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// Principals and their roles and groups, as Cedar entities JSON.
pub const BINDINGS_FILE: &str = "bindings.entities.json";
/// Template links, as the upstream `cedar` CLI reads with `--template-linked`.
pub const LINKS_FILE: &str = "links.json";
/// Policy files end with this.
pub const POLICY_EXTENSION: &str = ".cedar";

/// The annotation whose value becomes a policy's id.
const ID_ANNOTATION: &str = "id";

/// One file of a policy set, named relative to the policy directory
/// (`roles.cedar`, `schema.cedarschema`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The file name relative to the policy directory.
    pub name: String,
    /// The file's content.
    pub text: String,
}

impl SourceFile {
    /// A file named `name` holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    fn kind(&self) -> Option<FileKind> {
        match self.name.as_str() {
            SCHEMA_FILE => Some(FileKind::Schema),
            BINDINGS_FILE => Some(FileKind::Bindings),
            LINKS_FILE => Some(FileKind::Links),
            name if name.ends_with(POLICY_EXTENSION) && !name.contains('/') => {
                Some(FileKind::Policies)
            }
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Schema,
    Policies,
    Bindings,
    Links,
}

/// Whether a policy permits or forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyEffect {
    /// Allows when satisfied, unless a forbid is satisfied too.
    Permit,
    /// Denies when satisfied, whatever else is satisfied.
    Forbid,
}

/// What the snapshot knows about one policy (static or template-linked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    /// The policy id: its `@id`, or the link id of a template-linked policy.
    pub id: String,
    /// Permit or forbid.
    pub effect: PolicyEffect,
    /// The template's `@id` for a template-linked policy.
    pub template_id: Option<String>,
    /// The source text: of the policy, or of its template followed by the
    /// link's slot values as a comment.
    pub text: String,
    /// `file:line:column` where the policy (or the link) is written.
    pub source: String,
    /// Whether the policy reads `context.now`: decisions it takes part in
    /// are never cached.
    pub reads_now: bool,
}

/// An immutable, validated policy set with its index, ready to decide.
/// The server shares it as `Arc<PolicySnapshot>` and swaps the `Arc` on
/// reload.
pub struct PolicySnapshot {
    pub(crate) version: String,
    pub(crate) policies: PolicySet,
    pub(crate) infos: Vec<PolicyInfo>,
    pub(crate) info_by_id: HashMap<String, usize>,
    pub(crate) model: EntityModel,
    pub(crate) index: Index,
    /// Whether any policy of the set reads `context.now`.
    pub(crate) any_reads_now: bool,
}

impl std::fmt::Debug for PolicySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySnapshot")
            .field("version", &self.version)
            .field("policy_count", &self.infos.len())
            .finish_non_exhaustive()
    }
}

impl PolicySnapshot {
    /// Loads every policy file of `dir` (see the module docs). Problems name
    /// files as `dir/file`, as the user wrote `dir`.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, LoadError> {
        let dir = dir.as_ref();
        let sources = read_dir_sources(dir)?;
        let shown = dir.display().to_string();
        build(sources, Some(shown.trim_end_matches('/')))
    }

    /// Builds a snapshot from in-memory files, such as the default policies
    /// embedded in the binary. Files whose names are not policy files
    /// (`README.md`, `tests/...`) are ignored.
    pub fn from_sources(sources: Vec<SourceFile>) -> Result<Self, LoadError> {
        build(sources, None)
    }

    /// The SHA-256 (hex) of the policy files' names and contents, sorted by
    /// name. Equal content gives an equal version, wherever it was loaded
    /// from.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of policies: static and template-linked (templates themselves
    /// are not counted).
    pub fn policy_count(&self) -> usize {
        self.infos.len()
    }

    /// Every policy, sorted by id.
    pub fn policies(&self) -> &[PolicyInfo] {
        &self.infos
    }

    /// The policy with this id, if any.
    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.info_by_id.get(id).map(|&i| &self.infos[i])
    }
}

/// Reads the policy files of `dir`, named relative to it.
fn read_dir_sources(dir: &Path) -> Result<Vec<SourceFile>, LoadError> {
    let shown = dir.display().to_string();
    let unreadable = |file: &str, e: std::io::Error| LoadError {
        problems: vec![crate::error::LoadProblem {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read: {}", lowercase_first(&e.to_string())),
        }],
    };
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(&shown, e))?;
    let mut sources = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(&shown, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let candidate = SourceFile::new(name.clone(), String::new());
        if candidate.kind().is_none() || !entry.path().is_file() {
            continue;
        }
        let path = entry.path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| unreadable(&path.display().to_string(), e))?;
        sources.push(SourceFile::new(name, text));
    }
    Ok(sources)
}

/// The content hash over the policy files, sorted by name.
fn content_version(sources: &[&SourceFile]) -> String {
    let mut hasher = Sha256::new();
    for source in sources {
        hasher.update((source.name.len() as u64).to_be_bytes());
        hasher.update(source.name.as_bytes());
        hasher.update((source.text.len() as u64).to_be_bytes());
        hasher.update(source.text.as_bytes());
    }
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Where each policy and template came from.
struct Origin {
    /// Index into the policy files.
    file: usize,
    offset: usize,
}

/// The files being loaded, with the name each is shown under.
struct Files<'a> {
    shown: Vec<String>,
    sources: Vec<&'a SourceFile>,
    /// Byte offsets where each file's lines start, to place many policies
    /// without rescanning a file for each.
    line_starts: Vec<Vec<usize>>,
}

impl Files<'_> {
    fn shown(&self, i: usize) -> &str {
        &self.shown[i]
    }

    fn find(&self, kind: FileKind) -> Option<usize> {
        self.sources.iter().position(|s| s.kind() == Some(kind))
    }
}

fn build(mut sources: Vec<SourceFile>, dir: Option<&str>) -> Result<PolicySnapshot, LoadError> {
    sources.retain(|s| s.kind().is_some());
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let files = Files {
        shown: sources
            .iter()
            .map(|s| match dir {
                Some(dir) => format!("{dir}/{}", s.name),
                None => s.name.clone(),
            })
            .collect(),
        sources: sources.iter().collect(),
        line_starts: sources
            .iter()
            .map(|s| {
                std::iter::once(0)
                    .chain(s.text.match_indices('\n').map(|(i, _)| i + 1))
                    .collect()
            })
            .collect(),
    };
    let version = content_version(&files.sources);
    let mut problems = Problems::default();

    let schema = load_schema(&files, &mut problems);
    let (mut policies, origins) = load_policies(&files, &mut problems);
    let links = load_links(&files, &mut policies, &mut problems);
    let bindings = schema
        .as_ref()
        .map(|schema| load_bindings(&files, schema, &mut problems));
    if let Some(schema) = &schema {
        validate(&files, schema, &policies, &origins, &links, &mut problems);
    }
    problems.into_result()?;
    let (Some(schema), Some(bindings)) = (schema, bindings) else {
        // INVARIANT: a missing schema is a recorded problem, so this is
        // unreachable; fail closed all the same.
        return Err(LoadError {
            problems: vec![missing(dir, SCHEMA_FILE)],
        });
    };

    let infos = policy_infos(&files, &policies, &origins, &links);
    let info_by_id = infos
        .iter()
        .enumerate()
        .map(|(i, info)| (info.id.clone(), i))
        .collect();
    let mut model =
        EntityModel::build(&schema, &bindings, &policies).map_err(|message| LoadError {
            problems: vec![crate::error::LoadProblem {
                file: files
                    .find(FileKind::Bindings)
                    .map_or_else(|| BINDINGS_FILE.to_owned(), |i| files.shown(i).to_owned()),
                line: 0,
                column: 0,
                message,
            }],
        })?;
    let index = Index::build(&policies, &model);
    model.attach_keys(&index);
    Ok(PolicySnapshot {
        version,
        any_reads_now: infos.iter().any(|i| i.reads_now),
        policies,
        infos,
        info_by_id,
        model,
        index,
    })
}

fn missing(dir: Option<&str>, name: &str) -> crate::error::LoadProblem {
    crate::error::LoadProblem {
        file: match dir {
            Some(dir) => format!("{dir}/{name}"),
            None => name.to_owned(),
        },
        line: 0,
        column: 0,
        message: "file is missing".to_owned(),
    }
}

fn load_schema(files: &Files<'_>, problems: &mut Problems) -> Option<Schema> {
    let Some(i) = files.find(FileKind::Schema) else {
        problems.at_line(
            &files
                .shown
                .first()
                .and_then(|s| s.rsplit_once('/'))
                .map_or_else(
                    || SCHEMA_FILE.to_owned(),
                    |(d, _)| format!("{d}/{SCHEMA_FILE}"),
                ),
            0,
            0,
            "file is missing".to_owned(),
        );
        return None;
    };
    let text = &files.sources[i].text;
    match Schema::from_cedarschema_str(text) {
        Ok((schema, _warnings)) => Some(schema),
        Err(err) => {
            report_diagnostic(problems, files.shown(i), text, &err);
            None
        }
    }
}

/// Records a Cedar diagnostic and its related diagnostics, each at its first
/// labelled span.
fn report_diagnostic(problems: &mut Problems, file: &str, text: &str, diag: &dyn Diagnostic) {
    let related: Vec<&dyn Diagnostic> = diag.related().map(|r| r.collect()).unwrap_or_default();
    if !related.is_empty() {
        for inner in related {
            report_diagnostic(problems, file, text, inner);
        }
        return;
    }
    let offset = first_offset(diag).unwrap_or(0);
    problems.at(file, text, offset, diagnostic_message(diag));
}

fn first_offset(diag: &dyn Diagnostic) -> Option<usize> {
    diag.labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset())
}

/// The message of a diagnostic with its help, if any.
fn diagnostic_message(diag: &dyn Diagnostic) -> String {
    let mut message = lowercase_first(&diag.to_string());
    let mut source = diag.source();
    while let Some(inner) = source {
        let _ = write!(message, ": {inner}");
        source = inner.source();
    }
    if let Some(help) = diag.help() {
        let _ = write!(message, " ({help})");
    }
    message
}

fn load_policies(
    files: &Files<'_>,
    problems: &mut Problems,
) -> (PolicySet, HashMap<String, Origin>) {
    let mut all = PolicySet::new();
    let mut origins: HashMap<String, Origin> = HashMap::new();
    for (i, source) in files.sources.iter().enumerate() {
        if source.kind() != Some(FileKind::Policies) {
            continue;
        }
        let parsed = match PolicySet::from_str(&source.text) {
            Ok(parsed) => parsed,
            Err(errs) => {
                for err in errs.iter() {
                    report_diagnostic(problems, files.shown(i), &source.text, err);
                }
                continue;
            }
        };
        for template in parsed.templates() {
            let ast: &cedar_policy_core::ast::Template = template.as_ref();
            let offset = ast.loc().map_or(0, |loc| loc.start());
            let Some(id) = policy_id(
                files,
                i,
                offset,
                template.annotation(ID_ANNOTATION),
                problems,
            ) else {
                continue;
            };
            if check_unique(files, &origins, &id, i, offset, problems) {
                let _ = all.add_template(template.new_id(PolicyId::new(&id)));
                origins.insert(id, Origin { file: i, offset });
            }
        }
        for policy in parsed.policies() {
            let ast: &cedar_policy_core::ast::Policy = policy.as_ref();
            let offset = ast.loc().map_or(0, |loc| loc.start());
            let Some(id) = policy_id(files, i, offset, policy.annotation(ID_ANNOTATION), problems)
            else {
                continue;
            };
            if check_unique(files, &origins, &id, i, offset, problems) {
                let _ = all.add(policy.new_id(PolicyId::new(&id)));
                origins.insert(id, Origin { file: i, offset });
            }
        }
    }
    (all, origins)
}

/// The byte offset of the next occurrence of `needle` at or after
/// `cursor`, which moves past it. Entries of a JSON array are found in
/// order this way, in one pass over the file.
fn locate(text: &str, needle: &str, cursor: &mut usize) -> usize {
    match text.get(*cursor..).and_then(|rest| rest.find(needle)) {
        Some(found) => {
            let at = *cursor + found;
            *cursor = at + needle.len();
            at
        }
        None => 0,
    }
}

fn policy_id(
    files: &Files<'_>,
    file: usize,
    offset: usize,
    annotation: Option<&str>,
    problems: &mut Problems,
) -> Option<String> {
    let text = &files.sources[file].text;
    match annotation {
        Some(id) if !id.trim().is_empty() => Some(id.to_owned()),
        Some(_) => {
            problems.at(
                files.shown(file),
                text,
                offset,
                "empty `@id` annotation".into(),
            );
            None
        }
        None => {
            let message = "policy has no `@id(\"...\")` annotation; every policy needs one".into();
            problems.at(files.shown(file), text, offset, message);
            None
        }
    }
}

/// Records a duplicate id; returns whether `id` is new.
fn check_unique(
    files: &Files<'_>,
    origins: &HashMap<String, Origin>,
    id: &str,
    file: usize,
    offset: usize,
    problems: &mut Problems,
) -> bool {
    let Some(first) = origins.get(id) else {
        return true;
    };
    let (line, column) = line_column(&files.sources[first.file].text, first.offset);
    let message = format!(
        "duplicate policy id `{id}`, first used at {}:{line}:{column}",
        files.shown(first.file)
    );
    problems.at(
        files.shown(file),
        &files.sources[file].text,
        offset,
        message,
    );
    false
}

/// One entry of `links.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkEntry {
    template_id: String,
    link_id: String,
    args: HashMap<String, String>,
}

/// A template link that was added to the policy set.
struct Link {
    link_id: String,
    template_id: String,
    args: Vec<(String, String)>,
    offset: usize,
}

fn load_links(files: &Files<'_>, policies: &mut PolicySet, problems: &mut Problems) -> Vec<Link> {
    let Some(i) = files.find(FileKind::Links) else {
        return Vec::new();
    };
    let (file, text) = (files.shown(i), &files.sources[i].text);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let entries: Vec<LinkEntry> = match serde_json::from_str(text) {
        Ok(entries) => entries,
        Err(e) => {
            let message = format!("invalid links: {}", strip_serde_position(&e));
            problems.at_line(file, e.line(), e.column(), message);
            return Vec::new();
        }
    };
    let mut links = Vec::new();
    let mut cursor = 0;
    for entry in entries {
        let quoted = serde_json::to_string(&entry.link_id).unwrap_or_default();
        let offset = locate(text, &quoted, &mut cursor);
        match link_one(policies, &entry) {
            Ok(args) => links.push(Link {
                link_id: entry.link_id,
                template_id: entry.template_id,
                args,
                offset,
            }),
            Err(message) => problems.at(file, text, offset, message),
        }
    }
    links
}

fn link_one(policies: &mut PolicySet, entry: &LinkEntry) -> Result<Vec<(String, String)>, String> {
    let mut values = HashMap::new();
    let mut args: Vec<(String, String)> = entry.args.clone().into_iter().collect();
    args.sort();
    for (slot, value) in &args {
        let slot_id = match slot.as_str() {
            "?principal" => SlotId::principal(),
            "?resource" => SlotId::resource(),
            _ => return Err(format!("link `{}`: unknown slot `{slot}`", entry.link_id)),
        };
        let uid = EntityUid::from_str(value).map_err(|e| {
            let why = lowercase_first(&e.to_string());
            format!(
                "link `{}`: invalid entity `{value}` for `{slot}`: {why}",
                entry.link_id
            )
        })?;
        values.insert(slot_id, uid);
    }
    let template_id = PolicyId::new(&entry.template_id);
    if policies.template(&template_id).is_none() {
        return Err(format!(
            "link `{}`: no template with id `{}`",
            entry.link_id, entry.template_id
        ));
    }
    if policies.policy(&PolicyId::new(&entry.link_id)).is_some()
        || policies.template(&PolicyId::new(&entry.link_id)).is_some()
    {
        return Err(format!("duplicate policy id `{}`", entry.link_id));
    }
    policies
        .link(template_id, PolicyId::new(&entry.link_id), values)
        .map_err(|e| {
            format!(
                "link `{}`: {}",
                entry.link_id,
                lowercase_first(&e.to_string())
            )
        })?;
    Ok(args)
}

/// serde_json appends "at line L column C"; we print the position up front.
fn strip_serde_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    lowercase_first(&message)
}

fn load_bindings(files: &Files<'_>, schema: &Schema, problems: &mut Problems) -> Entities {
    let empty = || Entities::empty();
    let Some(i) = files.find(FileKind::Bindings) else {
        return empty();
    };
    let (file, text) = (files.shown(i), &files.sources[i].text);
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let message = format!("invalid bindings: {}", strip_serde_position(&e));
            problems.at_line(file, e.line(), e.column(), message);
            return empty();
        }
    };
    let Some(items) = value.as_array() else {
        problems.at_line(
            file,
            1,
            1,
            "bindings must be a JSON array of entities".into(),
        );
        return empty();
    };
    // Each entity is checked alone, so that every bad one is reported at its
    // own place.
    let before = problems.0.len();
    let mut cursor = 0;
    for item in items {
        let offset = entity_offset(text, &mut cursor);
        let single = serde_json::Value::Array(vec![item.clone()]);
        if let Err(e) = Entities::from_json_value(single, Some(schema)) {
            problems.at(
                file,
                text,
                offset,
                format!("invalid binding: {}", diagnostic_message(&e)),
            );
            continue;
        }
        if let Some(message) = principal_id_mismatch(item) {
            problems.at(file, text, offset, message);
        }
    }
    if problems.0.len() > before {
        return empty();
    }
    match Entities::from_json_value(value, Some(schema)) {
        Ok(entities) => entities,
        Err(e) => {
            problems.at_line(
                file,
                1,
                1,
                format!("invalid bindings: {}", diagnostic_message(&e)),
            );
            empty()
        }
    }
}

/// Where an entity of the bindings starts: the next `"uid"` key (parents
/// are written without one, so the n-th key is the n-th entity's).
fn entity_offset(text: &str, cursor: &mut usize) -> usize {
    locate(text, "\"uid\"", cursor)
}

/// A principal's id is `type:name`; its attributes must say the same, or a
/// policy reading `principal.name` would see a different principal than
/// the request named.
fn principal_id_mismatch(item: &serde_json::Value) -> Option<String> {
    let uid_type = item
        .pointer("/uid/type")
        .or_else(|| item.pointer("/uid/__entity/type"))?
        .as_str()?;
    if uid_type != "Kafka::Principal" {
        return None;
    }
    let id = item
        .pointer("/uid/id")
        .or_else(|| item.pointer("/uid/__entity/id"))?
        .as_str()?;
    let Some((principal_type, name)) = id.split_once(':') else {
        return Some(format!(
            "principal id `{id}` is not of the form `type:name`"
        ));
    };
    let attr = |key: &str| {
        item.pointer(&format!("/attrs/{key}"))
            .and_then(|v| v.as_str())
    };
    if attr("principal_type") != Some(principal_type) || attr("name") != Some(name) {
        return Some(format!(
            "principal `{id}` must have attributes `principal_type` = `{principal_type}` \
             and `name` = `{name}`"
        ));
    }
    None
}

fn validate(
    files: &Files<'_>,
    schema: &Schema,
    policies: &PolicySet,
    origins: &HashMap<String, Origin>,
    links: &[Link],
    problems: &mut Problems,
) {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    for error in result.validation_errors() {
        let id = error.policy_id().to_string();
        if let Some(origin) = origins.get(&id) {
            let text = &files.sources[origin.file].text;
            let offset = first_offset(error).unwrap_or(origin.offset);
            problems.at(
                files.shown(origin.file),
                text,
                offset,
                diagnostic_message(error),
            );
        } else if let Some(link) = links.iter().find(|l| l.link_id == id) {
            let i = files.find(FileKind::Links).unwrap_or(0);
            let message = format!("link `{id}`: {}", diagnostic_message(error));
            problems.at(files.shown(i), &files.sources[i].text, link.offset, message);
        } else {
            problems.at_line(SCHEMA_FILE, 0, 0, diagnostic_message(error));
        }
    }
}

fn policy_infos(
    files: &Files<'_>,
    policies: &PolicySet,
    origins: &HashMap<String, Origin>,
    links: &[Link],
) -> Vec<PolicyInfo> {
    let links_by_id: HashMap<&str, &Link> = links.iter().map(|l| (l.link_id.as_str(), l)).collect();
    let mut infos: Vec<PolicyInfo> = policies
        .policies()
        .map(|policy| {
            let id = policy.id().to_string();
            let effect = match policy.effect() {
                Effect::Permit => PolicyEffect::Permit,
                Effect::Forbid => PolicyEffect::Forbid,
            };
            let reads_now = context_fields(policy) & NOW != 0;
            match links_by_id.get(id.as_str()) {
                Some(link) => {
                    let template = policies.template(&PolicyId::new(&link.template_id));
                    let mut text = template.map(Template::to_cedar).unwrap_or_default();
                    for (slot, value) in &link.args {
                        let _ = write!(text, "\n// {slot} = {value}");
                    }
                    let i = files.find(FileKind::Links).unwrap_or(0);
                    PolicyInfo {
                        id,
                        effect,
                        template_id: Some(link.template_id.clone()),
                        text,
                        source: place(files, i, link.offset),
                        reads_now,
                    }
                }
                None => {
                    let source = origins
                        .get(&id)
                        .map(|o| place(files, o.file, o.offset))
                        .unwrap_or_default();
                    PolicyInfo {
                        id,
                        effect,
                        template_id: None,
                        text: policy.to_cedar().unwrap_or_default(),
                        source,
                        reads_now,
                    }
                }
            }
        })
        .collect();
    infos.sort_by(|a, b| a.id.cmp(&b.id));
    infos
}

fn place(files: &Files<'_>, file: usize, offset: usize) -> String {
    let starts = &files.line_starts[file];
    let line = starts.partition_point(|&start| start <= offset).max(1);
    let text = &files.sources[file].text;
    let (_, column) = line_column(&text[starts[line - 1]..], offset - starts[line - 1]);
    format!("{}:{line}:{column}", files.shown(file))
}

/// The context fields, as a bit set over [`CONTEXT_FIELDS`].
pub(crate) type ContextFields = u8;

/// The fields of the schema's `RequestContext`, in bit order.
pub(crate) const CONTEXT_FIELDS: [&str; 6] = [
    "client_address",
    "listener",
    "security_protocol",
    "client_id",
    "request_api",
    "now",
];

/// Every context field.
pub(crate) const ALL_CONTEXT_FIELDS: ContextFields = (1 << CONTEXT_FIELDS.len()) - 1;

/// The bit of `now`.
pub(crate) const NOW: ContextFields = 1 << 5;

/// The context fields a policy reads. Conservative: `context` used as a
/// whole (not as `context.field` or `context has field`) or an unknown
/// field reads all.
pub(crate) fn context_fields(policy: &Policy) -> ContextFields {
    use cedar_policy_core::ast::{Expr, ExprKind, Var};
    let is_context = |e: &Expr| matches!(e.expr_kind(), ExprKind::Var(Var::Context));
    let bit = |attr: &str| match CONTEXT_FIELDS.iter().position(|f| *f == attr) {
        Some(i) => 1 << i,
        None => ALL_CONTEXT_FIELDS,
    };
    let ast: &cedar_policy_core::ast::Policy = policy.as_ref();
    let Some(body) = ast.non_scope_constraints() else {
        return 0;
    };
    let (mut fields, mut uses, mut accesses) = (0, 0usize, 0usize);
    for e in body.subexpressions() {
        match e.expr_kind() {
            ExprKind::Var(Var::Context) => uses += 1,
            ExprKind::GetAttr { expr, attr } | ExprKind::HasAttr { expr, attr }
                if is_context(expr) =>
            {
                accesses += 1;
                fields |= bit(attr);
            }
            ExprKind::ExtHasAttr { expr, attrs } if is_context(expr) => {
                accesses += 1;
                fields |= bit(attrs.first());
            }
            _ => {}
        }
    }
    // Every `context` that is not the object of a field access is used
    // whole.
    if uses > accesses {
        ALL_CONTEXT_FIELDS
    } else {
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        Policy::from_str(text).unwrap()
    }

    #[test]
    fn reading_now_is_found_in_conditions() {
        let schema = "permit(principal, action, resource)";
        let reads_now = |p: &Policy| context_fields(p) & NOW != 0;
        assert!(!reads_now(&policy(&format!("{schema};"))));
        assert!(!reads_now(&policy(&format!(
            "{schema} when {{ context.listener == \"x\" }};"
        ))));
        assert!(reads_now(&policy(&format!(
            "{schema} when {{ context.now < datetime(\"2030-01-01\") }};"
        ))));
        assert!(reads_now(&policy(&format!(
            "{schema} when {{ context has now }};"
        ))));
        assert!(reads_now(&policy(&format!(
            "{schema} when {{ context == {{}} }};"
        ))));
    }

    #[test]
    fn entries_are_located_in_order() {
        let mut cursor = 0;
        let text = "a; a; b;";
        assert_eq!(locate(text, "a;", &mut cursor), 0);
        assert_eq!(locate(text, "a;", &mut cursor), 3);
        assert_eq!(locate(text, "b;", &mut cursor), 6);
        assert_eq!(locate(text, "a;", &mut cursor), 0);
    }

    #[test]
    fn version_depends_on_names_and_bytes() {
        let a = SourceFile::new("a.cedar", "x");
        let b = SourceFile::new("b.cedar", "x");
        assert_ne!(content_version(&[&a]), content_version(&[&b]));
        assert_eq!(content_version(&[&a]), content_version(&[&a.clone()]));
        assert_eq!(content_version(&[&a]).len(), 64);
    }
}
