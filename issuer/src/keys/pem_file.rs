//! Key files: reading them, splitting them into PEM sections, and turning each file's sections into keys
//! and warnings (or one error naming the file).

use std::path::{Path, PathBuf};

use super::der::{SectionOutcome, decode_section};
use super::{KeyError, LoadedKeys, Rejection, merge, push_unique, unsupported};
use crate::Warning;

const BEGIN: &[u8] = b"-----BEGIN ";

/// Splits a PEM file into sections. Text outside sections is ignored (openssl writes comments there); a
/// broken section (no END line, bad base64, mismatched labels) is an error for the whole file.
fn sections(content: &[u8]) -> Result<Vec<pem::Pem>, String> {
    let sections = pem::parse_many(content).map_err(|e| e.to_string())?;
    // `parse_many` stops without a word at a BEGIN line that has no END (a truncated copy): count the BEGIN
    // lines so that such a file is refused rather than read as shorter than it is.
    let begins = content.windows(BEGIN.len()).filter(|w| *w == BEGIN).count();
    if begins > sections.len() {
        return Err("a BEGIN line has no matching END line (is the file truncated?)".to_string());
    }
    Ok(sections)
}

fn outcome(section: &pem::Pem) -> SectionOutcome {
    // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`) mean an encrypted legacy key.
    if section.headers().iter().next().is_some() {
        return SectionOutcome::Rejected(unsupported(format!(
            "{} is encrypted: give the public key instead",
            section.tag()
        )));
    }
    decode_section(section.tag(), section.contents())
}

/// Parses the keys of one PEM file's content. `source` names the file in messages.
///
/// Errors when the content holds no usable key or a broken PEM section; otherwise returns the keys
/// (deduplicated) and a warning for every section left out.
pub fn parse_pem(source: &Path, content: &[u8]) -> Result<LoadedKeys, KeyError> {
    let sections = sections(content).map_err(|reason| KeyError::MalformedPem {
        path: source.to_path_buf(),
        reason,
    })?;
    if sections.is_empty() {
        return Err(KeyError::NoPem {
            path: source.to_path_buf(),
        });
    }
    let mut loaded = LoadedKeys::default();
    let mut rejections = Vec::new();
    for section in &sections {
        match outcome(section) {
            SectionOutcome::Key(k) => push_unique(&mut loaded.keys, k),
            SectionOutcome::Rejected(r) => rejections.push(r),
            SectionOutcome::Ignored => {}
        }
    }
    if loaded.keys.is_empty() {
        if let Some(Rejection::RsaTooSmall(bits)) = rejections.first()
            && rejections
                .iter()
                .all(|r| matches!(r, Rejection::RsaTooSmall(_)))
        {
            return Err(KeyError::RsaTooSmall {
                path: source.to_path_buf(),
                bits: *bits,
            });
        }
        let reasons = if rejections.is_empty() {
            "no key section".to_string()
        } else {
            rejections
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(KeyError::NoUsableKey {
            path: source.to_path_buf(),
            reasons,
        });
    }
    let name = source.display().to_string();
    loaded.warnings = rejections
        .into_iter()
        .map(|r| Warning::new(&name, r.to_string()))
        .collect();
    Ok(loaded)
}

/// Reads one file. Kept apart from parsing so the reloader can hash the bytes it already read.
pub fn read_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads every key of every file: any file that is unreadable or has no usable key is an error.
pub fn load_files(paths: &[PathBuf]) -> Result<LoadedKeys, KeyError> {
    if paths.is_empty() {
        return Err(KeyError::NoFiles);
    }
    let mut parts = Vec::with_capacity(paths.len());
    for path in paths {
        parts.push(parse_pem(path, &read_file(path)?)?);
    }
    Ok(merge(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_splitter_handles_comments_and_several_sections() {
        let text = "comment\n-----BEGIN A-----\nAAEC\n-----END A-----\nx\n-----BEGIN B-----\nAw==\n-----END B-----\n";
        let s = sections(text.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].tag(), s[0].contents()), ("A", &[0u8, 1, 2][..]));
        assert_eq!((s[1].tag(), s[1].contents()), ("B", &[3u8][..]));
    }

    #[test]
    fn unterminated_section_is_reported() {
        let s = sections(b"-----BEGIN PUBLIC KEY-----\nAAAA\n");
        assert!(matches!(&s, Err(m) if m.contains("END")), "{s:?}");
        // Also after a good section: the file is not taken for the shorter one.
        let s = sections(b"-----BEGIN A-----\nAAEC\n-----END A-----\n-----BEGIN B-----\nAw==\n");
        assert!(matches!(&s, Err(m) if m.contains("END")), "{s:?}");
    }

    #[test]
    fn legacy_encrypted_keys_are_rejected_by_their_headers() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        let s = sections(text.as_bytes()).unwrap();
        let SectionOutcome::Rejected(r) = outcome(&s[0]) else {
            panic!("an encrypted key must be rejected")
        };
        assert_eq!(
            r.to_string(),
            "RSA PRIVATE KEY is encrypted: give the public key instead"
        );
    }
}
