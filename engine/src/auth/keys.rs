//! Verification keys: building `jsonwebtoken` [`DecodingKey`]s from config entries
//! (HMAC secrets, PEM public keys) and from JWKS documents, with checks that turn every
//! unusable key into an actionable message instead of a token that can never verify.
//!
//! Messages produced here never contain key material (secrets, moduli, coordinates).

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::{Map, Value};

/// Every algorithm name the engine accepts, for messages.
pub(crate) const SUPPORTED_ALGORITHMS: &str =
    "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";

/// Most keys one JWKS document may hold.
pub(crate) const MAX_JWKS_KEYS: usize = 100;

/// base64url, padding optional (JWKS publishers are not all strict about it).
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One key the engine verifies signatures with.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    /// The one algorithm this key verifies.
    pub(crate) alg: Algorithm,
    /// Key id; when set, only tokens with this `kid` (or, for a lone key, without one) use it.
    pub(crate) kid: Option<String>,
    /// Issuer binding; when set, only tokens whose `iss` equals it use this key.
    pub(crate) issuer: Option<String>,
    /// The decoding key (already validated).
    pub(crate) key: DecodingKey,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("VerifyKey")
            .field("alg", &alg_name(self.alg))
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The JOSE name of an algorithm.
pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        // `Algorithm` is non-exhaustive; a future variant is simply not named here.
        _ => "unknown",
    }
}

/// Parse an algorithm name from config. `none` and unknown names are refused with a
/// message that says what to write instead.
pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("algorithm `none` is never accepted: tokens must be signed".into());
    }
    if let Ok(alg) = name.parse::<Algorithm>() {
        return Ok(alg);
    }
    let hint = SUPPORTED_ALGORITHMS
        .split(", ")
        .find(|known| known.eq_ignore_ascii_case(name))
        .map(|known| format!(" (names are case-sensitive: did you mean `{known}`?)"))
        .unwrap_or_default();
    Err(format!(
        "unknown algorithm `{}`{hint}; use one of {SUPPORTED_ALGORITHMS}",
        sanitize(name)
    ))
}

/// Shorten and de-control a string that came from outside (token, config) for messages.
pub(crate) fn sanitize(s: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// Check that a key can build a verifier for `alg` (catches malformed EC/Ed points).
/// A verifier is built and fed an empty signature: a bad key fails while building.
fn verifier_accepts(key: &DecodingKey, alg: Algorithm) -> bool {
    jsonwebtoken::crypto::verify("", b"", key, alg).is_ok()
}

/// The label of the first PEM block (`PUBLIC KEY`, `RSA PRIVATE KEY`, ...).
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = pem.get(start..)?;
    let end = rest.find("-----")?;
    rest.get(..end)
}

/// What kind of public key a PEM holds, for "wrong algorithm" hints.
fn pem_kind_hint(pem: &[u8]) -> &'static str {
    if DecodingKey::from_rsa_pem(pem).is_ok() {
        " (it holds an RSA key: use RS256, RS384, RS512, PS256, PS384 or PS512)"
    } else if DecodingKey::from_ec_pem(pem).is_ok() {
        " (it holds an EC key: use ES256 or ES384)"
    } else if DecodingKey::from_ed_pem(pem).is_ok() {
        " (it holds an Ed25519 key: use EdDSA)"
    } else {
        ""
    }
}

/// Build the decoding key of a `publicKeyPem` for `alg` (any non-HMAC algorithm).
pub(crate) fn key_from_pem(alg: Algorithm, pem: &str) -> Result<DecodingKey, String> {
    // Keys pasted into JSON/env often arrive with literal `\n` instead of newlines.
    let normalized;
    let pem = if !pem.contains('\n') && pem.contains("\\n") {
        normalized = pem.replace("\\n", "\n");
        normalized.as_str()
    } else {
        pem
    };
    let Some(label) = pem_label(pem) else {
        return Err("not a PEM public key (expected a `-----BEGIN PUBLIC KEY-----` block)".into());
    };
    if label.contains("PRIVATE") {
        return Err("this is a private key; configure the public key instead \
                    (`openssl pkey -in key.pem -pubout`)"
            .into());
    }
    let bytes = pem.as_bytes();
    match alg.family() {
        AlgorithmFamily::Rsa => {
            let key = DecodingKey::from_rsa_pem(bytes)
                .map_err(|_| format!("not a valid RSA PEM public key{}", pem_kind_hint(bytes)))?;
            let der = key
                .try_get_as_bytes()
                .map_err(|_| "not a valid RSA PEM public key".to_string())?;
            let (n, e) = rsa_components_from_pkcs1(der)
                .ok_or_else(|| "not a valid RSA PEM public key".to_string())?;
            check_rsa_components(n, e)?;
            Ok(key)
        }
        AlgorithmFamily::Ec => {
            let key = DecodingKey::from_ec_pem(bytes)
                .map_err(|_| format!("not a valid EC PEM public key{}", pem_kind_hint(bytes)))?;
            if !verifier_accepts(&key, alg) {
                let point_len = key.try_get_as_bytes().map_or(0, <[u8]>::len);
                return Err(match (alg, point_len) {
                    (Algorithm::ES256, 97) => "this is a P-384 key; use algorithm ES384".into(),
                    (Algorithm::ES384, 65 | 33) => {
                        "this is a P-256 key; use algorithm ES256".into()
                    }
                    (Algorithm::ES256, _) => "not a valid P-256 public key".into(),
                    _ => "not a valid P-384 public key".into(),
                });
            }
            Ok(key)
        }
        AlgorithmFamily::Ed => {
            let key = DecodingKey::from_ed_pem(bytes).map_err(|_| {
                format!("not a valid Ed25519 PEM public key{}", pem_kind_hint(bytes))
            })?;
            // The verifier slices 32 bytes: check the length before building it.
            if key.try_get_as_bytes().map_or(0, <[u8]>::len) != 32 || !verifier_accepts(&key, alg) {
                return Err("not a valid Ed25519 public key (Ed448 is not supported)".into());
            }
            Ok(key)
        }
        AlgorithmFamily::Hmac => Err(format!(
            "an {} key needs `secret`, not `publicKeyPem`",
            alg_name(alg)
        )),
    }
}

/// One DER TLV: (tag, contents, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let mut len = 0usize;
        for &b in len_bytes {
            len = len.checked_mul(256)?.checked_add(usize::from(b))?;
        }
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// `(n, e)` of a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_components_from_pkcs1(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, seq, rest) = der_tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (tag_n, n, rest) = der_tlv(seq)?;
    let (tag_e, e, rest) = der_tlv(rest)?;
    if tag_n != 0x02 || tag_e != 0x02 || !rest.is_empty() {
        return None;
    }
    Some((n, e))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Check an RSA public key: 2048..=4096 bits (the verifier refuses more), odd modulus,
/// odd exponent in 3..=2^33-1 (what the RSA implementation accepts).
fn check_rsa_components(n: &[u8], e: &[u8]) -> Result<(), String> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    let Some(&top) = n.first() else {
        return Err("not a valid RSA public key (empty modulus)".into());
    };
    let bits = (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize);
    if bits < 2048 {
        return Err(format!(
            "RSA keys must have at least 2048 bits (this one has {bits})"
        ));
    }
    if bits > 4096 {
        return Err(format!(
            "RSA keys larger than 4096 bits are not supported (this one has {bits})"
        ));
    }
    if n.last().is_some_and(|b| b % 2 == 0) {
        return Err("not a valid RSA public key (even modulus)".into());
    }
    if e.len() > 8 {
        return Err("unsupported RSA public exponent (too large)".into());
    }
    let exponent = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if exponent < 3 || exponent % 2 == 0 || exponent > (1u64 << 33) - 1 {
        return Err("unsupported RSA public exponent (use 65537)".into());
    }
    Ok(())
}

/// Decode a base64url JWK member.
fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = str_member(obj, name)?.ok_or_else(|| format!("`{name}` is required"))?;
    B64URL_LENIENT
        .decode(text)
        .map_err(|_| format!("`{name}` is not valid base64url"))
}

/// An optional string member (`null` counts as absent).
fn str_member<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

/// Build a key from one JWK. `Ok(None)` means the key is fine but not for us (an
/// encryption key, or an algorithm/curve the engine does not implement) and is skipped.
pub(crate) fn key_from_jwk(jwk: &Value, issuer: &str) -> Result<Option<VerifyKey>, String> {
    let obj = jwk
        .as_object()
        .ok_or_else(|| "a JWK must be a JSON object".to_string())?;
    let kty = str_member(obj, "kty")?.ok_or_else(|| "`kty` is required".to_string())?;
    if kty == "oct" {
        return Err("symmetric (`oct`) keys are not accepted from a JWKS; \
                    configure HMAC secrets under `auth.jwt.keys`"
            .into());
    }
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        if obj.contains_key(private) {
            return Err(format!(
                "contains private key material (`{private}`); a JWKS must hold public keys only"
            ));
        }
    }
    if str_member(obj, "use")?.is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    match obj.get("key_ops") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ops)) => {
            if !ops.iter().any(|op| op.as_str() == Some("verify")) {
                return Ok(None);
            }
        }
        Some(_) => return Err("`key_ops` must be an array of strings".into()),
    }
    let kid = match str_member(obj, "kid")? {
        Some("") => return Err("`kid` must not be empty (omit it instead)".into()),
        other => other.map(str::to_string),
    };
    let alg_field = str_member(obj, "alg")?;
    if alg_field.is_some_and(|a| a.eq_ignore_ascii_case("none")) {
        return Err("algorithm `none` is never accepted: tokens must be signed".into());
    }
    // An `alg` the engine does not implement (RSA-OAEP, ES512, ...) makes the key unusable
    // here, not the document invalid.
    let declared = match alg_field {
        None => None,
        Some("Ed25519") => Some(Algorithm::EdDSA),
        Some(a) => match a.parse::<Algorithm>() {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None),
        },
    };
    let (alg, key) = match kty {
        "RSA" => {
            let alg = declared.unwrap_or(Algorithm::RS256);
            if alg.family() != AlgorithmFamily::Rsa {
                return Err(format!("`alg` {} does not fit an RSA key", alg_name(alg)));
            }
            let n = b64_member(obj, "n")?;
            let e = b64_member(obj, "e")?;
            check_rsa_components(&n, &e)?;
            let key = DecodingKey::from_rsa_raw_components(
                strip_leading_zeros(&n),
                strip_leading_zeros(&e),
            );
            (alg, key)
        }
        "EC" => {
            let crv = str_member(obj, "crv")?.ok_or_else(|| "`crv` is required".to_string())?;
            let (curve_alg, size) = match crv {
                "P-256" => (Algorithm::ES256, 32),
                "P-384" => (Algorithm::ES384, 48),
                _ => return Ok(None),
            };
            let alg = declared.unwrap_or(curve_alg);
            if alg != curve_alg {
                return Err(format!(
                    "`alg` {} does not match curve {crv} (use {})",
                    alg_name(alg),
                    alg_name(curve_alg)
                ));
            }
            let x = b64_member(obj, "x")?;
            let y = b64_member(obj, "y")?;
            if x.len() != size || y.len() != size {
                return Err(format!("`x` and `y` must be {size} bytes each for {crv}"));
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let key = DecodingKey::from_ec_der(&point);
            if !verifier_accepts(&key, alg) {
                return Err(format!(
                    "not a valid {crv} public key (the point is not on the curve)"
                ));
            }
            (alg, key)
        }
        "OKP" => {
            let crv = str_member(obj, "crv")?.ok_or_else(|| "`crv` is required".to_string())?;
            if crv != "Ed25519" {
                return Ok(None);
            }
            let alg = declared.unwrap_or(Algorithm::EdDSA);
            if alg != Algorithm::EdDSA {
                return Err(format!(
                    "`alg` {} does not fit an Ed25519 key (use EdDSA)",
                    alg_name(alg)
                ));
            }
            let x = b64_member(obj, "x")?;
            if x.len() != 32 {
                return Err("`x` must be 32 bytes for Ed25519".into());
            }
            let key = DecodingKey::from_ed_der(&x);
            if !verifier_accepts(&key, alg) {
                return Err("not a valid Ed25519 public key".into());
            }
            (alg, key)
        }
        _ => return Ok(None),
    };
    Ok(Some(VerifyKey {
        alg,
        kid,
        issuer: Some(issuer.to_string()),
        key,
    }))
}

/// A problem in a JWKS document: the path below the document (`keys[1]`, or empty for
/// the document itself) and what is wrong.
pub(crate) type JwksProblem = (String, String);

/// Parse a JWKS document (`{"keys": [...]}`) for `issuer`. Returns the usable keys with
/// their index in `keys`, or every problem found.
pub(crate) fn keys_from_jwks(
    doc: &Value,
    issuer: &str,
) -> Result<Vec<(usize, VerifyKey)>, Vec<JwksProblem>> {
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Err(vec![(
            String::new(),
            "not a JWKS document: expected an object with a `keys` array".into(),
        )]);
    };
    if list.len() > MAX_JWKS_KEYS {
        return Err(vec![(
            "keys".into(),
            format!(
                "too many keys ({}); at most {MAX_JWKS_KEYS} are accepted",
                list.len()
            ),
        )]);
    }
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (i, jwk) in list.iter().enumerate() {
        match key_from_jwk(jwk, issuer) {
            Ok(Some(key)) => keys.push((i, key)),
            Ok(None) => {}
            Err(problem) => problems.push((format!("keys[{i}]"), problem)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if keys.is_empty() {
        return Err(vec![(
            "keys".into(),
            format!(
                "no usable signing key (supported: {SUPPORTED_ALGORITHMS} except HS*; \
                 keys with `use` other than `sig` are skipped)"
            ),
        )]);
    }
    Ok(keys)
}

/// Keys without `kid` that share their algorithm with another key of the same issuer.
/// A JWK without `kid` is only usable as the issuer's one key for its algorithm;
/// returns the positions (in `keys`) of those that break the rule.
pub(crate) fn ambiguous_kidless(keys: &[&VerifyKey]) -> Vec<usize> {
    keys.iter()
        .enumerate()
        .filter(|(i, k)| {
            k.kid.is_none()
                && keys
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != *i && o.alg == k.alg && o.issuer == k.issuer)
        })
        .map(|(i, _)| i)
        .collect()
}

/// The message for a key flagged by [`ambiguous_kidless`].
pub(crate) fn ambiguous_kidless_problem(key: &VerifyKey) -> String {
    format!(
        "this {} key has no `kid` but issuer `{}` has other {} keys; give every key a `kid`",
        alg_name(key.alg),
        sanitize(key.issuer.as_deref().unwrap_or_default()),
        alg_name(key.alg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_are_bounded() {
        assert!(der_tlv(&[0x30]).is_none());
        assert!(der_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(der_tlv(&[0x30, 0x82, 0xff, 0xff]).is_none());
        assert_eq!(
            der_tlv(&[0x02, 0x01, 0x05]),
            Some((0x02, &[5u8][..], &[][..]))
        );
    }

    #[test]
    fn sanitize_truncates_and_strips_controls() {
        assert_eq!(sanitize("a\nb"), "a?b");
        let long = "x".repeat(100);
        assert_eq!(sanitize(&long).chars().count(), 65);
    }

    #[test]
    fn algorithm_names_are_checked() {
        assert_eq!(parse_algorithm("RS256"), Ok(Algorithm::RS256));
        assert!(parse_algorithm("hs256")
            .unwrap_err()
            .contains("did you mean `HS256`"));
        assert!(parse_algorithm("None")
            .unwrap_err()
            .contains("never accepted"));
        assert!(parse_algorithm("HS999")
            .unwrap_err()
            .contains("use one of HS256"));
    }
}
