//! Signed checkpoints: Ed25519 signatures over the chain head.
//!
//! A checkpoint says "record `seq` exists and its hash is `hash`", signed
//! with the audit key. Checkpoints live in their own append-only file,
//! `checkpoints.jsonl`, one CloudEvents JSON object per line, so that cutting
//! records off the end of a segment cannot also remove the statement that
//! they existed. They are numbered; a missing number is a deleted checkpoint.
//!
//! The writer signs a checkpoint every `checkpoint_every` records, when it
//! closes a segment (so every segment boundary is anchored, and retention can
//! delete old segments while the rest stays verifiable), when it opens an
//! existing log, after it recovers from a torn write (naming the torn bytes),
//! and when it shuts down.
//!
//! Keys: PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes them, or
//! [`generate_key_pem`]. The private key is never logged, printed or put in
//! an error message; only its public half appears in checkpoints.

use std::fs;
use std::path::Path;

use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::AuditError;
use crate::record::{from_hex, split_suffix, to_hex};

/// The file, in the log directory, that holds the checkpoints.
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";

/// CloudEvents `type` of a checkpoint.
pub const CHECKPOINT_TYPE: &str = "dev.kafkapdp.audit.checkpoint.v1";

const SIG_KEY: &[u8] = b",\"auditsig\":\"";

/// What a checkpoint attests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1 for the first checkpoint of a log, then consecutive.
    pub number: u64,
    /// The last record covered.
    pub seq: u64,
    /// Hex SHA-256 of record `seq` (its `audithash`).
    pub hash: String,
    /// The segment file that holds record `seq`.
    pub segment: String,
    pub reason: Reason,
    /// Hex Ed25519 public key that signed this checkpoint.
    pub key: String,
    /// Bytes a crash left half-written, which the writer stepped over
    /// (only when `reason` is `recovery`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub torn: Vec<TornWrite>,
}

/// Why a checkpoint was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Interval,
    Rotation,
    Open,
    Recovery,
    Close,
}

/// A half-written line left by a crash: `len` bytes from `offset` of `file`
/// (a segment or the checkpoints file). The writer never rewrites them; it
/// continues after them and names them here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TornWrite {
    pub file: String,
    pub offset: u64,
    pub len: u64,
}

#[derive(Serialize)]
struct Envelope<'a> {
    specversion: &'static str,
    id: String,
    source: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    time: Timestamp,
    datacontenttype: &'static str,
    data: &'a Checkpoint,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    data: Checkpoint,
}

/// A checkpoint line as read, with what is needed to check its signature.
#[derive(Debug)]
pub(crate) struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    body: Vec<u8>,
    signature: Signature,
}

impl SignedCheckpoint {
    /// Whether `key` signed exactly these bytes.
    pub fn is_signed_by(&self, key: &VerifyingKey) -> bool {
        key.verify(&self.body, &self.signature).is_ok()
    }
}

/// Appends the signed line for `checkpoint` to `out`.
pub(crate) fn encode(checkpoint: &Checkpoint, source: &str, key: &SigningKey, out: &mut Vec<u8>) {
    let start = out.len();
    let envelope = Envelope {
        specversion: "1.0",
        id: format!("checkpoint-{}", checkpoint.number),
        source,
        kind: CHECKPOINT_TYPE,
        time: Timestamp::now(),
        datacontenttype: "application/json",
        data: checkpoint,
    };
    // INVARIANT: plain structs into a Vec; serialization cannot fail.
    serde_json::to_writer(&mut *out, &envelope).expect("serializing a checkpoint");
    out.pop();
    let signature = key.sign(&out[start..]);
    out.extend_from_slice(SIG_KEY);
    out.extend_from_slice(to_hex(&signature.to_bytes()).as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Reads one checkpoint line (without its `\n`).
pub(crate) fn parse(line: &[u8]) -> Result<SignedCheckpoint, String> {
    let (body, sig_hex) = split_suffix(line, SIG_KEY, 128)?;
    let mut sig = [0; 64];
    from_hex(sig_hex, &mut sig).ok_or("`auditsig` is not 128 hex digits")?;
    let envelope: EnvelopeIn =
        serde_json::from_slice(line).map_err(|e| format!("not a checkpoint: {e}"))?;
    Ok(SignedCheckpoint {
        checkpoint: envelope.data,
        body: body.to_vec(),
        signature: Signature::from_bytes(&sig),
    })
}

/// Hex form of a public key, as checkpoints carry it.
pub fn key_id(key: &VerifyingKey) -> String {
    to_hex(key.as_bytes())
}

/// Loads the signing key from a PKCS#8 PEM file that only its owner can read.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, AuditError> {
    let problem = |problem: String| AuditError::Key {
        path: path.to_owned(),
        problem,
    };
    check_private(path).map_err(problem)?;
    let pem = fs::read_to_string(path).map_err(|e| AuditError::io("read", path, e))?;
    // The decoder's error names the format problem, never the key material.
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| problem(format!("not an Ed25519 PKCS#8 PEM private key ({e})")))
}

/// Loads a public key: SPKI PEM (`openssl pkey -pubout`) or 64 hex digits.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, AuditError> {
    let text = fs::read_to_string(path).map_err(|e| AuditError::io("read", path, e))?;
    let text = text.trim();
    let mut raw = [0; 32];
    let key = if from_hex(text.as_bytes(), &mut raw).is_some() {
        VerifyingKey::from_bytes(&raw).map_err(|e| e.to_string())
    } else {
        VerifyingKey::from_public_key_pem(text).map_err(|e| e.to_string())
    };
    key.map_err(|e| AuditError::Key {
        path: path.to_owned(),
        problem: format!("not an Ed25519 public key (SPKI PEM or 64 hex digits): {e}"),
    })
}

/// A new key pair as (private PKCS#8 PEM, public SPKI PEM), seeded from the
/// operating system's random source.
pub fn generate_key_pem() -> Result<(String, String), AuditError> {
    let mut seed = [0; 32];
    fill_random(&mut seed).map_err(|e| AuditError::io("read", "/dev/urandom", e))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| AuditError::Config(format!("encoding a new key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| AuditError::Config(format!("encoding a new key: {e}")))?;
    Ok((private.to_string(), public))
}

fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Refuses a private key that group or others may read, as ssh does.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(_) => return Ok(()), // reading it reports the error
    };
    if mode & 0o077 != 0 {
        return Err(format!(
            "readable by group or others (mode {:o}); run `chmod 600` on it",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(key: &SigningKey) -> Checkpoint {
        Checkpoint {
            number: 3,
            seq: 42,
            hash: "ab".repeat(32),
            segment: "seg-0000000001.jsonl".into(),
            reason: Reason::Interval,
            key: key_id(&key.verifying_key()),
            torn: vec![],
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_only_under_its_key() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let mut out = Vec::new();
        encode(&checkpoint(&key), "pdp", &key, &mut out);

        let read = parse(&out[..out.len() - 1]).unwrap();
        assert_eq!(read.checkpoint, checkpoint(&key));
        assert!(read.is_signed_by(&key.verifying_key()));
        assert!(!read.is_signed_by(&other.verifying_key()));
    }

    #[test]
    fn an_edited_checkpoint_fails_its_signature() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut out = Vec::new();
        encode(&checkpoint(&key), "pdp", &key, &mut out);
        let at = out.windows(4).position(|w| w == b":42,").unwrap();
        out[at + 2] = b'3';

        let read = parse(&out[..out.len() - 1]).unwrap();
        assert_eq!(read.checkpoint.seq, 43);
        assert!(!read.is_signed_by(&key.verifying_key()));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_and_never_quoted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let (private, public) = generate_key_pem().unwrap();
        fs::write(&path, &private).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        let err = load_signing_key(&path).unwrap_err().to_string();
        assert!(
            err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(!err.contains("PRIVATE KEY"), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let key = load_signing_key(&path).unwrap();
        let public_path = dir.path().join("audit.pub");
        fs::write(&public_path, public).unwrap();
        assert_eq!(
            load_verifying_key(&public_path).unwrap(),
            key.verifying_key()
        );
        fs::write(&public_path, key_id(&key.verifying_key())).unwrap();
        assert_eq!(
            load_verifying_key(&public_path).unwrap(),
            key.verifying_key()
        );
    }

    #[test]
    fn a_file_that_is_no_key_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.pub");
        fs::write(&path, "hello").unwrap();
        let err = load_verifying_key(&path).unwrap_err().to_string();
        assert!(err.contains("not an Ed25519 public key"), "{err}");
    }

    #[test]
    fn generated_keys_round_trip_through_pem() {
        let (private, public) = generate_key_pem().unwrap();
        let key = SigningKey::from_pkcs8_pem(&private).unwrap();
        let public = VerifyingKey::from_public_key_pem(&public).unwrap();
        assert_eq!(key.verifying_key(), public);
    }
}
