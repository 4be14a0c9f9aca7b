//! Publication for static hosting: the two documents as files in a directory laid out like the site, or as
//! objects in S3 with the right `Content-Type` and `Cache-Control` (and no ACL: since April 2023 new buckets
//! refuse them; grant read with a bucket policy or CloudFront).

use std::path::{Path, PathBuf};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::documents::Documents;
use crate::paths::Paths;
use crate::routes::{DISCOVERY_CONTENT_TYPE, JWKS_CONTENT_TYPE};

/// Why publication failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A URL path cannot be a file or object name.
    #[error("the URL path {path} cannot be published as a file: {why}")]
    BadPath {
        /// The URL path.
        path: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The `--s3-uri` is not `s3://bucket[/prefix]`.
    #[error("{uri}: expected s3://bucket or s3://bucket/prefix")]
    BadS3Uri {
        /// The URI given.
        uri: String,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An S3 upload failed.
    #[error("uploading s3://{bucket}/{key}: {message}")]
    Upload {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// The SDK's error, with its context.
        message: String,
    },
}

/// One document to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    /// The URL path it is served at, e.g. `/cluster/.well-known/openid-configuration`.
    pub url_path: String,
    /// The same path percent-decoded and without the leading `/`: the file name under the site root, or
    /// the object key under the bucket prefix.
    pub relative: String,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: Bytes,
}

/// The discovery document and the JWKS of `docs`, at `paths`.
pub fn files(paths: &Paths, docs: &Documents) -> Result<Vec<PublishedFile>, PublishError> {
    let file = |url_path: &str, content_type, body: &Bytes| {
        Ok(PublishedFile {
            url_path: url_path.to_string(),
            relative: relative_path(url_path)?,
            content_type,
            body: body.clone(),
        })
    };
    Ok(vec![
        file(
            &paths.discovery_path,
            DISCOVERY_CONTENT_TYPE,
            &docs.discovery,
        )?,
        file(&paths.jwks_path, JWKS_CONTENT_TYPE, &docs.jwks)?,
    ])
}

/// Percent-decodes a URL path into a relative file name, refusing anything that could escape the root.
fn relative_path(url_path: &str) -> Result<String, PublishError> {
    let bad = |why| PublishError::BadPath {
        path: url_path.to_string(),
        why,
    };
    let mut decoded = Vec::with_capacity(url_path.len());
    let raw = url_path.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("bad percent-encoding"))?;
            decoded.push(byte);
            i += 3;
        } else {
            decoded.push(raw[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| bad("not UTF-8 once decoded"))?;
    let relative = decoded.strip_prefix('/').unwrap_or(&decoded);
    if relative.is_empty() || relative.ends_with('/') {
        return Err(bad("it names a directory, not a file"));
    }
    for segment in relative.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(bad("empty, . or .. segment"));
        }
        if segment.contains(['\\', '\0']) {
            return Err(bad("backslash or NUL in a segment"));
        }
    }
    Ok(relative.to_string())
}

/// Where `file` goes under `dir`.
pub fn path_in(dir: &Path, file: &PublishedFile) -> PathBuf {
    file.relative
        .split('/')
        .fold(dir.to_path_buf(), |p, segment| p.join(segment))
}

/// Writes `files` under `dir` (the site root), creating directories. Each file is written beside its
/// destination and renamed over it, so a web server serving `dir` never sees half a document.
pub fn write_dir(dir: &Path, files: &[PublishedFile]) -> Result<Vec<PathBuf>, PublishError> {
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let path = path_in(dir, file);
        let err = |source| PublishError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, &file.body).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        written.push(path);
    }
    Ok(written)
}

/// An `s3://bucket/prefix` destination. The prefix is the site root: the issuer path is appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl S3Uri {
    /// Parses `s3://bucket` or `s3://bucket/prefix`.
    pub fn parse(uri: &str) -> Result<S3Uri, PublishError> {
        let bad = || PublishError::BadS3Uri {
            uri: uri.to_string(),
        };
        let rest = uri.strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(|c: char| c.is_whitespace()) {
            return Err(bad());
        }
        Ok(S3Uri {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The object key of `file`.
    pub fn key(&self, file: &PublishedFile) -> String {
        if self.prefix.is_empty() {
            file.relative.clone()
        } else {
            format!("{}/{}", self.prefix, file.relative)
        }
    }
}

/// An S3 client from the standard credential chain. When an endpoint is overridden (`AWS_ENDPOINT_URL_S3` or
/// `AWS_ENDPOINT_URL`, which the SDK honours), path-style addressing is forced so MinIO and other emulators
/// work without wildcard DNS.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let path_style = endpoint_overridden(|name| std::env::var_os(name));
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Whether the environment (read through `var`) overrides the S3 endpoint, so path-style addressing is needed.
pub fn endpoint_overridden(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.is_empty()))
}

/// Uploads `files` under `target` with their `Content-Type` and `Cache-Control: public, max-age=<max_age>`,
/// without any ACL. Returns the `s3://` URIs written.
pub async fn upload(
    client: &aws_sdk_s3::Client,
    target: &S3Uri,
    files: &[PublishedFile],
    max_age: u32,
) -> Result<Vec<String>, PublishError> {
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let key = target.key(file);
        client
            .put_object()
            .bucket(&target.bucket)
            .key(&key)
            .content_type(file.content_type)
            .cache_control(format!("public, max-age={max_age}"))
            .body(ByteStream::from(file.body.clone()))
            .send()
            .await
            .map_err(|e| PublishError::Upload {
                bucket: target.bucket.clone(),
                key: key.clone(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        written.push(format!("s3://{}/{key}", target.bucket));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_decoded_and_confined() {
        assert_eq!(
            relative_path("/a/.well-known/openid-configuration").unwrap(),
            "a/.well-known/openid-configuration"
        );
        assert_eq!(
            relative_path("/my%20cluster/keys").unwrap(),
            "my cluster/keys"
        );
        for bad in [
            "/",
            "/a/",
            "/a/%2e%2e/b",
            "/a/%2Fb/../c",
            "/a%5Cb",
            "/a%zz",
            "/a%00",
        ] {
            assert!(relative_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_style_only_with_an_endpoint_override() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| set.iter().find(|(n, _)| *n == name).map(|(_, v)| v.into())
        };
        assert!(!endpoint_overridden(env(&[])));
        assert!(!endpoint_overridden(env(&[("AWS_ENDPOINT_URL", "")])));
        assert!(endpoint_overridden(env(&[(
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:9000"
        )])));
        assert!(endpoint_overridden(env(&[(
            "AWS_ENDPOINT_URL_S3",
            "http://minio:9000"
        )])));
    }

    #[test]
    fn s3_uris() {
        assert_eq!(
            S3Uri::parse("s3://b").unwrap(),
            S3Uri {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            S3Uri::parse("s3://b/p/q/").unwrap(),
            S3Uri {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        for bad in ["b/p", "s3://", "s3:///p", "https://b/p"] {
            assert!(S3Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
