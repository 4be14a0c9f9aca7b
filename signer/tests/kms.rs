//! The KMS key source against moto's KMS (which signs for real and returns the public keys): set
//! `IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT` (a running `moto_server`, as hack/test.sh starts it) to run.
//! Without it each test says "skipped" and passes.
//!
//! Every test works in key sets of its own (moto is shared by every test and every run), so they run in
//! parallel and again against the same server.

mod common;

use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED, UnparsedPublicKey};
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irsa_issuer::keys::{Algorithm, kid_of_spki_der};
use irsa_signer::kms::{KmsError, KmsKey, KmsKeySet, KmsKeySpec, MAX_RAW_MESSAGE, SET_TAG};

const CLAIMS: &str = r#"{"iss":"https://issuer.example","sub":"system:serviceaccount:ns:app"}"#;

/// The KMS client pointed at moto, or `None` (and a "skipped" line) without `IRSA_MOTO_ENDPOINT`.
fn moto() -> Option<aws_sdk_kms::Client> {
    let Ok(endpoint) = std::env::var("IRSA_MOTO_ENDPOINT") else {
        println!(
            "skipped: set IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT (a running moto_server) to run"
        );
        return None;
    };
    Some(common::moto_kms(&endpoint))
}

/// Creates a key outside the module (untagged, or tagged with `set`), as an operator might.
async fn raw_key(
    client: &aws_sdk_kms::Client,
    spec: KeySpec,
    usage: KeyUsageType,
    set: Option<&str>,
    policy: Option<&str>,
) -> String {
    let mut create = client.create_key().key_spec(spec).key_usage(usage);
    if let Some(set) = set {
        create = create.tags(
            Tag::builder()
                .tag_key(SET_TAG)
                .tag_value(set)
                .build()
                .unwrap(),
        );
    }
    if let Some(policy) = policy {
        create = create.policy(policy);
    }
    let out = create.send().await.unwrap();
    out.key_metadata().unwrap().key_id().to_string()
}

/// Signs a token with `key` as the signer does: `header "." claims`, signature through KMS.
async fn token(key: &KmsKey) -> String {
    let claims = URL_SAFE_NO_PAD.encode(CLAIMS);
    let input = format!("{}.{claims}", key.header());
    let signature = key.sign(input.as_bytes()).await.unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Verifies `token` with the key's published SPKI only (as STS does with the JWKS), returning the claims.
fn verify(token: &str, spki_der: &[u8], alg: jsonwebtoken::Algorithm) -> serde_json::Value {
    let public = pem::encode(&pem::Pem::new("PUBLIC KEY", spki_der.to_vec()));
    let key = match alg {
        jsonwebtoken::Algorithm::RS256 => {
            jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes())
        }
        _ => jsonwebtoken::DecodingKey::from_ec_pem(public.as_bytes()),
    }
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("the KMS signature verifies with the published public key")
        .claims
}

#[tokio::test]
async fn kms_signatures_verify_with_the_published_keys() {
    let Some(client) = moto() else { return };
    let set = KmsKeySet::new(client, &common::unique_set("test-sign")).unwrap();
    for (spec, alg) in [
        (KmsKeySpec::Rsa2048, jsonwebtoken::Algorithm::RS256),
        (KmsKeySpec::EccNistP256, jsonwebtoken::Algorithm::ES256),
        (KmsKeySpec::EccNistP384, jsonwebtoken::Algorithm::ES384),
    ] {
        let key = set.create(spec).await.unwrap();
        assert_eq!(key.spec(), spec);
        assert_eq!(key.algorithm().as_str(), format!("{alg:?}"));
        // The kid is the issuer's, computed from what FetchKeys serves.
        assert_eq!(key.kid(), kid_of_spki_der(key.spki_der()));
        let issuer = irsa_issuer::keys::PublicKey::from_spki_der(key.spki_der()).unwrap();
        assert_eq!(key.kid(), issuer.kid());
        // Several signatures: ECDSA's r and s are short (need padding) in about 1 in 128 of them.
        for _ in 0..8 {
            let token = token(&key).await;
            let claims = verify(&token, key.spki_der(), alg);
            assert_eq!(claims["sub"], "system:serviceaccount:ns:app");
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            assert_eq!(header.alg, alg);
        }
    }
}

#[tokio::test]
async fn p521_signatures_are_fixed_width_and_verify() {
    let Some(client) = moto() else { return };
    let set = KmsKeySet::new(client, &common::unique_set("test-p521")).unwrap();
    let key = set.create(KmsKeySpec::EccNistP521).await.unwrap();
    assert_eq!(key.algorithm(), Algorithm::ES512);
    let point = match irsa_issuer::keys::PublicKey::from_spki_der(key.spki_der())
        .unwrap()
        .params()
    {
        irsa_issuer::keys::KeyParams::Ec { x, y, .. } => [&[0x04][..], x, y].concat(),
        other => panic!("not an EC key: {other:?}"),
    };
    for _ in 0..4 {
        let message = b"header.claims";
        let signature = key.sign(message).await.unwrap();
        assert_eq!(signature.len(), 132);
        UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, &point)
            .verify(message, &signature)
            .expect("the P-521 signature verifies");
    }
}

#[tokio::test]
async fn list_finds_the_sets_enabled_keys_only() {
    let Some(client) = moto() else { return };
    let name = common::unique_set("test-list");
    let set = KmsKeySet::new(client.clone(), &name).unwrap();
    let other = KmsKeySet::new(client.clone(), &common::unique_set("test-other")).unwrap();

    let before = SystemTime::now() - Duration::from_secs(5);
    let rsa = set.create(KmsKeySpec::Rsa2048).await.unwrap();
    let ec = set.create(KmsKeySpec::EccNistP256).await.unwrap();
    // Not in the set: another set's key, an untagged key, a disabled key, a retired key.
    other.create(KmsKeySpec::EccNistP256).await.unwrap();
    raw_key(
        &client,
        KeySpec::EccNistP256,
        KeyUsageType::SignVerify,
        None,
        None,
    )
    .await;
    let disabled = set.create(KmsKeySpec::EccNistP256).await.unwrap();
    client
        .disable_key()
        .key_id(disabled.key_id())
        .send()
        .await
        .unwrap();
    let retired = set.create(KmsKeySpec::Rsa2048).await.unwrap();
    set.retire(&retired).await.unwrap();

    let listed = set.list().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(KmsKey::key_id).collect();
    let mut want = vec![rsa.key_id(), ec.key_id()];
    want.sort_by_key(|id| listed.iter().position(|k| k.key_id() == *id));
    assert_eq!(ids, want, "{listed:?}");
    assert_eq!(ids.len(), 2, "{listed:?}");
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].published_at() <= w[1].published_at())
    );
    for key in &listed {
        let created = if key.key_id() == rsa.key_id() {
            &rsa
        } else {
            &ec
        };
        assert_eq!(key.kid(), created.kid());
        assert_eq!(key.spki_der(), created.spki_der());
        assert_eq!(key.algorithm(), created.algorithm());
        assert_eq!(key.published_at(), created.published_at());
        assert!(key.arn().ends_with(&format!(":key/{}", key.key_id())));
        // CreationDate is the publication time.
        assert!(key.published_at() > before && key.published_at() <= SystemTime::now());
        // A listed key signs: the listing carries everything signing needs.
        let alg = match key.algorithm() {
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            _ => jsonwebtoken::Algorithm::ES256,
        };
        verify(&token(key).await, key.spki_der(), alg);
    }
    // Enabled again, the key is back.
    client
        .enable_key()
        .key_id(disabled.key_id())
        .send()
        .await
        .unwrap();
    assert_eq!(set.list().await.unwrap().len(), 3);
}

#[tokio::test]
async fn retire_schedules_deletion_with_the_minimum_window() {
    let Some(client) = moto() else { return };
    let set = KmsKeySet::new(client.clone(), &common::unique_set("test-retire")).unwrap();
    let other = KmsKeySet::new(client.clone(), &common::unique_set("test-retire-other")).unwrap();
    let key = set.create(KmsKeySpec::EccNistP256).await.unwrap();

    // Another set's handle refuses: retiring is destructive.
    let err = other.retire(&key).await.unwrap_err();
    assert!(matches!(err, KmsError::NotInSet { .. }), "{err}");
    assert!(err.to_string().contains(key.key_id()), "{err}");
    assert_eq!(set.list().await.unwrap().len(), 1);

    let done = set.retire(&key).await.unwrap();
    assert_eq!(done.key_id, key.key_id());
    assert_eq!(done.kid, key.kid());
    let in_days = done
        .deletion_date
        .expect("a deletion date")
        .duration_since(SystemTime::now())
        .unwrap()
        .as_secs_f64()
        / 86_400.0;
    assert!((6.9..=7.0).contains(&in_days), "{in_days} days");
    let meta = client
        .describe_key()
        .key_id(key.key_id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingDeletion)
    );
    assert!(set.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn tagged_keys_that_cannot_sign_tokens_are_errors_naming_them() {
    let Some(client) = moto() else { return };
    for (spec, usage, why) in [
        (
            KeySpec::SymmetricDefault,
            KeyUsageType::EncryptDecrypt,
            "key usage is ENCRYPT_DECRYPT, not SIGN_VERIFY",
        ),
        (
            KeySpec::Rsa2048,
            KeyUsageType::EncryptDecrypt,
            "key usage is ENCRYPT_DECRYPT, not SIGN_VERIFY",
        ),
        (
            KeySpec::EccSecgP256K1,
            KeyUsageType::SignVerify,
            "secp256k1 is not a curve STS accepts",
        ),
    ] {
        let name = common::unique_set("test-unusable");
        let id = raw_key(&client, spec.clone(), usage, Some(&name), None).await;
        let set = KmsKeySet::new(client.clone(), &name).unwrap();
        let err = set.list().await.unwrap_err();
        assert!(matches!(err, KmsError::Unusable { .. }), "{err}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("KMS key {id}: ")), "{text}");
        assert!(text.contains(why), "{spec:?}: {text}");
    }
}

#[tokio::test]
async fn access_denied_names_the_permission_and_the_key() {
    let Some(client) = moto() else { return };
    let name = common::unique_set("test-denied");
    // moto enforces key policies on DescribeKey only: a Deny there stands for any missing permission.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": ["kms:DescribeKey"], "Resource": "*"}]
    })
    .to_string();
    let id = raw_key(
        &client,
        KeySpec::EccNistP256,
        KeyUsageType::SignVerify,
        Some(&name),
        Some(&policy),
    )
    .await;
    let err = KmsKeySet::new(client, &name)
        .unwrap()
        .list()
        .await
        .unwrap_err();
    let KmsError::AccessDenied {
        permission, code, ..
    } = &err
    else {
        panic!("expected AccessDenied: {err}")
    };
    assert_eq!(*permission, "kms:DescribeKey");
    assert_eq!(code, "AccessDeniedException");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "KMS key {id}: access denied (AccessDeniedException): the caller needs kms:DescribeKey"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn messages_longer_than_one_raw_sign_are_refused() {
    let Some(client) = moto() else { return };
    let set = KmsKeySet::new(client.clone(), &common::unique_set("test-fail")).unwrap();
    let key = set.create(KmsKeySpec::Rsa2048).await.unwrap();

    // Longer than one RAW kms:Sign takes: refused before the call.
    let err = key.sign(&[b'a'; MAX_RAW_MESSAGE + 1]).await.unwrap_err();
    assert!(matches!(err, KmsError::MessageTooLong { .. }), "{err}");
    assert!(err.to_string().contains(key.key_id()), "{err}");
    key.sign(&[b'a'; MAX_RAW_MESSAGE]).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_kms_names_the_call_and_no_error_code() {
    // Needs no moto: a closed loopback port.
    let dead = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build(),
    );
    let err = KmsKeySet::new(dead, "prod")
        .unwrap()
        .list()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("KMS key set prod: kms:ListKeys failed (no error code): "),
        "{text}"
    );
}

/// moto signs with any key it holds (disabled, pending deletion) and enforces no policy on kms:Sign, so the
/// failure here is the one refused before the call; the KMS code and permission in KmsError's text are
/// checked by kms.rs's unit tests.
#[tokio::test]
async fn a_failed_kms_sign_keeps_the_kid_and_kms_error_text() {
    use irsa_signer::source::Key;
    let Some(client) = moto() else { return };
    let set = KmsKeySet::new(client, &common::unique_set("test-failed-sign")).unwrap();
    let key = set.create(KmsKeySpec::EccNistP256).await.unwrap();
    let err = Key::sign(&key, &[b'a'; MAX_RAW_MESSAGE + 1])
        .await
        .unwrap_err();
    assert_eq!(err.kid, key.kid());
    assert_eq!(
        err.reason,
        format!(
            "KMS key {}: the signing input is 4097 bytes; kms:Sign takes at most 4096",
            key.key_id()
        )
    );
    assert_eq!(Key::location(&key), format!("KMS key {}", key.key_id()));
    // The trait signs as the key does: the signature verifies with the published key.
    let input = format!("{}.e30", key.header());
    let signature = Key::sign(&key, input.as_bytes()).await.unwrap();
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    verify(&token, key.spki_der(), jsonwebtoken::Algorithm::ES256);
}
