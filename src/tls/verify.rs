//! Checking the server's certificate: the chain (webpki, through rustls's
//! helpers), the name, `ssl.allow_self_signed`, `ssl.peer_fingerprint`, and
//! messages that say exactly what is wrong with a certificate that fails.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use std::collections::HashSet;
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A certificate failure with a message of our own. It travels inside
/// `CertificateError::Other` and becomes `TU_E_CERTIFICATE` with this text.
#[derive(Debug)]
pub struct Detailed(pub String);

impl std::fmt::Display for Detailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Detailed {}

pub fn detailed(message: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Detailed(message)))))
}

/// What the verifier trusts when `ssl.verify_peer` is on.
#[derive(Debug)]
pub struct Trust {
    pub roots: Arc<RootCertStore>,
    /// The DER of every certificate in `ssl.cafile` / `ssl.capath`: a
    /// self-signed leaf listed there is trusted as it is (as OpenSSL does),
    /// even when it is marked as a CA.
    pub explicit: HashSet<Vec<u8>>,
    /// "ssl.cafile" / "the system store", for messages.
    pub source: String,
}

/// The one verifier behind every config.
#[derive(Debug)]
pub struct Verifier {
    pub provider: Arc<CryptoProvider>,
    /// `None` when `ssl.verify_peer` is off.
    pub trust: Option<Trust>,
    pub check_name: bool,
    pub allow_self_signed: bool,
    pub fingerprints: Vec<[u8; 32]>,
}

impl Verifier {
    /// Was the chain verified to a trusted root (or explicitly trusted) and
    /// the name checked? False when verification was relaxed, or when only
    /// `ssl.allow_self_signed` let this leaf through.
    pub fn fully_verified(&self, certs: &[CertificateDer<'_>]) -> bool {
        let Some(trust) = &self.trust else { return false };
        if !self.check_name {
            return false;
        }
        let Some(leaf) = certs.first() else { return false };
        if !self.allow_self_signed || !is_self_signed(leaf) || trust.explicit.contains(leaf.as_ref()) {
            return true;
        }
        // The self-signed exception may or may not have been needed.
        let Ok(parsed) = ParsedCertificate::try_from(leaf) else { return false };
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &trust.roots,
            &certs[1..],
            UnixTime::now(),
            self.provider.signature_verification_algorithms.all,
        )
        .is_ok()
    }

    fn check_fingerprint(&self, leaf: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self.fingerprints.is_empty() {
            return Ok(());
        }
        let actual = sha256(leaf.as_ref());
        if self.fingerprints.contains(&actual) {
            return Ok(());
        }
        let expected: Vec<String> = self.fingerprints.iter().take(3).map(|d| hex(d)).collect();
        let more = if self.fingerprints.len() > 3 { format!(" (and {} more)", self.fingerprints.len() - 3) } else { String::new() };
        Err(detailed(format!(
            "certificate fingerprint mismatch: ssl.peer_fingerprint expects SHA-256 {}{more}, but the server's \
             certificate has SHA-256 {}",
            expected.join(" or "),
            hex(&actual)
        )))
    }

    /// `ssl.allow_self_signed` (or a self-signed leaf listed in
    /// `ssl.cafile`): the leaf must be signed by its own key, be valid now,
    /// and allow server authentication if it limits its purposes.
    fn check_self_signed(&self, leaf: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        if !self_signature_valid(&self.provider, leaf) {
            return Err(detailed(
                "the server's self-signed certificate does not carry a valid signature by its own key".into(),
            ));
        }
        let Ok((_, cert)) = X509Certificate::from_der(leaf.as_ref()) else {
            return Err(rustls::Error::InvalidCertificate(CertificateError::BadEncoding));
        };
        let now_secs = now.as_secs() as i64;
        let v = cert.validity();
        let (nb, na) = (v.not_before.timestamp(), v.not_after.timestamp());
        let at = |s: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s.max(0) as u64));
        if now_secs > na {
            return Err(CertificateError::ExpiredContext { time: now, not_after: at(na) }.into());
        }
        if now_secs < nb {
            return Err(CertificateError::NotValidYetContext { time: now, not_before: at(nb) }.into());
        }
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            if !eku.value.server_auth && !eku.value.any {
                return Err(detailed(format!(
                    "the server's self-signed certificate is not valid for TLS server authentication: its extended \
                     key usage allows only {}",
                    eku_text(eku.value)
                )));
            }
        }
        Ok(())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // A key too weak to be verified fails later with "bad signature":
        // say why now, whatever the verification settings.
        if let Some(bits) = rsa_bits(leaf).filter(|&b| b < 2048) {
            return Err(detailed(format!(
                "the server's certificate has a {bits}-bit RSA key, which is too weak and refused (at least 2048 bits \
                 are required)"
            )));
        }
        if let Some(trust) = &self.trust {
            let parsed = ParsedCertificate::try_from(leaf)?;
            let chain = rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &trust.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            );
            if let Err(e) = chain {
                let trusted_as_is = is_self_signed(leaf)
                    && intermediates.is_empty()
                    && (self.allow_self_signed || trust.explicit.contains(leaf.as_ref()));
                if trusted_as_is {
                    self.check_self_signed(leaf, now)?;
                } else {
                    return Err(explain_chain_error(e, leaf, intermediates, server_name, trust, self.allow_self_signed));
                }
            }
            if self.check_name {
                rustls::client::verify_server_name(&parsed, server_name)?;
            }
        } else if self.check_name {
            // ssl.verify_peer=false with ssl.verify_peer_name=true set explicitly.
            rustls::client::verify_server_name(&ParsedCertificate::try_from(leaf)?, server_name)?;
        }
        self.check_fingerprint(leaf)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Turns a chain failure into a message that says what is wrong with this
/// chain: self-signed, incomplete, an untrusted root, SHA-1, a weak key, a
/// CA used as a leaf.
fn explain_chain_error(
    e: rustls::Error,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    trust: &Trust,
    allow_self_signed: bool,
) -> rustls::Error {
    let rustls::Error::InvalidCertificate(ce) = &e else { return e };
    let name = super::name_text(server_name);
    let ca_as_leaf = matches!(ce, CertificateError::Other(OtherError(inner))
        if matches!(inner.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity)));
    match ce {
        _ if (ca_as_leaf || *ce == CertificateError::UnknownIssuer) && is_self_signed(leaf) && intermediates.is_empty() => {
            let hint = if allow_self_signed {
                ""
            } else {
                "; to trust it, put it in ssl.cafile, pin it with ssl.peer_fingerprint, or set ssl.allow_self_signed"
            };
            detailed(format!(
                "unknown issuer: the server's certificate for '{name}' is self-signed ({}) and not trusted by {}{hint}",
                Info::of(leaf).subject,
                trust.source
            ))
        }
        CertificateError::UnknownIssuer => {
            let leaf_info = Info::of(leaf);
            if is_self_signed(leaf) {
                let hint = if allow_self_signed {
                    " (ssl.allow_self_signed accepts a self-signed certificate only when the server sends it alone)"
                } else {
                    "; to trust it, put it in ssl.cafile, pin it with ssl.peer_fingerprint, or set ssl.allow_self_signed"
                };
                return detailed(format!(
                    "unknown issuer: the server's certificate for '{name}' is self-signed ({}) and not trusted by {}{hint}",
                    leaf_info.subject, trust.source
                ));
            }
            // Follow the issuers through what the server sent.
            let mut current = leaf_info;
            let mut sent: Vec<Info> = intermediates.iter().map(|c| Info::of(c)).collect();
            for _ in 0..intermediates.len() {
                let Some(pos) = sent.iter().position(|c| c.subject_raw == current.issuer_raw) else { break };
                let next = sent.remove(pos);
                if next.self_signed {
                    return detailed(format!(
                        "unknown issuer: the server's certificate chain for '{name}' ends at the root '{}', which is \
                         not trusted by {}",
                        next.subject, trust.source
                    ));
                }
                current = next;
            }
            detailed(format!(
                "unknown issuer: the server's certificate for '{name}' was issued by '{}', which is not trusted by {} \
                 and was not sent by the server: either the server's chain is incomplete (a missing intermediate \
                 certificate) or the issuer is not trusted",
                current.issuer, trust.source
            ))
        }
        CertificateError::BadSignature => {
            for (i, cert) in std::iter::once(leaf).chain(intermediates.iter()).enumerate() {
                if let Some(bits) = rsa_bits(cert).filter(|&b| b < 2048) {
                    return detailed(format!(
                        "the {} certificate '{}' has a {bits}-bit RSA key, which is too weak and refused (at least \
                         2048 bits are required)",
                        if i == 0 { "server's" } else { "intermediate" },
                        Info::of(cert).subject
                    ));
                }
            }
            e
        }
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            for cert in std::iter::once(leaf).chain(intermediates.iter()) {
                let info = Info::of(cert);
                if let Some(alg) = weak_signature_name(&info.sig_oid) {
                    return detailed(format!(
                        "the certificate '{}' in the server's chain is signed with {alg}, which is insecure and refused",
                        info.subject
                    ));
                }
            }
            e
        }
        CertificateError::Other(OtherError(inner)) => match inner.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => detailed(format!(
                "the server presented a CA certificate ('{}', basicConstraints CA:TRUE) as its own certificate for \
                 '{name}'; a server certificate must not be a CA",
                Info::of(leaf).subject
            )),
            Some(webpki::Error::EndEntityUsedAsCa) => detailed(
                "the server's chain uses a non-CA certificate (basicConstraints CA:FALSE) as an issuer".into(),
            ),
            Some(webpki::Error::PathLenConstraintViolated) => {
                detailed("the server's chain is longer than a CA's path length constraint allows".into())
            }
            Some(webpki::Error::MaximumPathDepthExceeded | webpki::Error::MaximumPathBuildCallsExceeded) => {
                detailed("the server's certificate chain is too long or too complex to verify".into())
            }
            Some(webpki::Error::NameConstraintViolation) => {
                detailed("the server's certificate violates a name constraint of its issuing CA".into())
            }
            Some(other) => detailed(format!("the server's certificate was rejected: {other:?}")),
            None => e,
        },
        _ => e,
    }
}

/// The few facts about a certificate that messages need.
struct Info {
    subject: String,
    issuer: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    self_signed: bool,
    sig_oid: String,
}

impl Info {
    fn of(cert: &CertificateDer<'_>) -> Info {
        match X509Certificate::from_der(cert.as_ref()) {
            Ok((_, c)) => Info {
                subject: dn_text(&c.subject().to_string()),
                issuer: dn_text(&c.issuer().to_string()),
                subject_raw: c.subject().as_raw().to_vec(),
                issuer_raw: c.issuer().as_raw().to_vec(),
                self_signed: c.subject().as_raw() == c.issuer().as_raw(),
                sig_oid: c.signature_algorithm.algorithm.to_id_string(),
            },
            Err(_) => Info {
                subject: "(unparsable certificate)".into(),
                issuer: "(unknown)".into(),
                subject_raw: Vec::new(),
                issuer_raw: vec![0],
                self_signed: false,
                sig_oid: String::new(),
            },
        }
    }
}

fn dn_text(s: &str) -> String {
    if s.is_empty() {
        "(empty name)".into()
    } else {
        crate::options::printable(s)
    }
}

fn weak_signature_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.1.1.5" => "SHA-1 (sha1WithRSAEncryption)",
        "1.2.840.10045.4.1" => "SHA-1 (ecdsa-with-SHA1)",
        "1.2.840.10040.4.3" => "SHA-1 (dsa-with-sha1)",
        "1.3.14.3.2.29" => "SHA-1 (sha1WithRSASignature)",
        "1.2.840.113549.1.1.4" => "MD5 (md5WithRSAEncryption)",
        "1.2.840.113549.1.1.2" => "MD2 (md2WithRSAEncryption)",
        _ => return None,
    })
}

pub fn eku_text(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> String {
    let mut v = Vec::new();
    if eku.client_auth {
        v.push("client authentication (clientAuth)".to_string());
    }
    if eku.code_signing {
        v.push("code signing".into());
    }
    if eku.email_protection {
        v.push("e-mail protection".into());
    }
    if eku.time_stamping {
        v.push("time stamping".into());
    }
    if eku.ocsp_signing {
        v.push("OCSP signing".into());
    }
    for o in &eku.other {
        v.push(o.to_id_string());
    }
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// The size of an RSA key in bits, `None` for other keys.
pub fn rsa_bits(cert: &CertificateDer<'_>) -> Option<usize> {
    let (_, c) = X509Certificate::from_der(cert.as_ref()).ok()?;
    match c.public_key().parsed().ok()? {
        x509_parser::public_key::PublicKey::RSA(rsa) => Some(rsa.key_size()),
        _ => None,
    }
}

pub fn is_self_signed(cert: &CertificateDer<'_>) -> bool {
    match Der::certificate(cert.as_ref()) {
        Some(c) => c.issuer == c.subject,
        None => false,
    }
}

/// Is `cert` signed by its own key, with an algorithm we accept?
fn self_signature_valid(provider: &CryptoProvider, cert: &CertificateDer<'_>) -> bool {
    let Some(c) = Der::certificate(cert.as_ref()) else { return false };
    provider.signature_verification_algorithms.all.iter().any(|alg| {
        alg.signature_alg_id().as_ref() == c.sig_alg
            && alg.public_key_alg_id().as_ref() == c.spki_alg
            && alg.verify_signature(c.spki_key, c.tbs, c.signature).is_ok()
    })
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The raw pieces of a certificate that a signature check needs, found by
/// walking the DER (x509-parser does not keep them raw).
struct Der<'a> {
    tbs: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    spki_alg: &'a [u8],
    spki_key: &'a [u8],
}

/// One DER element: (tag, contents, the whole element, what follows).
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn der_next(b: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |a, &x| a << 8 | x as usize), &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = b.len() - rest.len();
    Some((tag, &rest[..len], &b[..header + len], &rest[len..]))
}

impl<'a> Der<'a> {
    fn certificate(b: &'a [u8]) -> Option<Der<'a>> {
        let (0x30, cert, _, _) = der_next(b)? else { return None };
        let (0x30, tbs_body, tbs, rest) = der_next(cert)? else { return None };
        let (0x30, sig_alg, _, rest) = der_next(rest)? else { return None };
        let (0x03, sig_bits, _, _) = der_next(rest)? else { return None };
        let mut t = tbs_body;
        if t.first() == Some(&0xa0) {
            t = der_next(t)?.3; // version
        }
        t = der_next(t)?.3; // serial
        t = der_next(t)?.3; // signature algorithm
        let (_, _, issuer, rest) = der_next(t)?;
        let rest = der_next(rest)?.3; // validity
        let (_, _, subject, rest) = der_next(rest)?;
        let (0x30, spki, _, _) = der_next(rest)? else { return None };
        let (0x30, spki_alg, _, rest) = der_next(spki)? else { return None };
        let (0x03, key_bits, _, _) = der_next(rest)? else { return None };
        Some(Der {
            tbs,
            sig_alg,
            signature: sig_bits.get(1..)?,
            issuer,
            subject,
            spki_alg,
            spki_key: key_bits.get(1..)?,
        })
    }
}
