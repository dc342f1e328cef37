//! TLS through rustls: configs (cached per option set, so sessions resume),
//! roots (loaded once, lazily), certificate verification ([`verify`]), the
//! `ssl.` options that need TLS knowledge to check, error messages, and the
//! record-exact receive path.
//!
//! Received bytes go into a buffer of our own and rustls is handed whole
//! records only. That lets us (a) look at the first bytes before rustls does
//! and recognise a plaintext peer, and (b) stop right after the peer's
//! close_notify, leaving whatever follows it untouched.

pub mod verify;

use crate::error::{Error, Result, TU_E_CERTIFICATE, TU_E_INVALID_ARGUMENT, TU_E_PLAINTEXT_PEER, TU_E_PROTOCOL, TU_E_TLS};
use crate::net::{self, NoSigPipe, Want};
use crate::options::{printable, TlsOptions, TlsVersion};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, ClientConnection, KeyLog, RootCertStore, SignatureScheme, SupportedCipherSuite};
use socket2::Socket;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use verify::{Trust, Verifier};

/// Which TLS versions a connection may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Versions {
    /// TLS 1.2 or 1.3.
    Any,
    Tls12,
    Tls13,
}

impl Versions {
    fn allows(self, v: TlsVersion) -> bool {
        match self {
            Versions::Any => true,
            Versions::Tls12 => v == TlsVersion::Tls12,
            Versions::Tls13 => v == TlsVersion::Tls13,
        }
    }
    fn what(self) -> &'static str {
        match self {
            Versions::Any => "TLS 1.2 or 1.3",
            Versions::Tls12 => "TLS 1.2 (tlsv1.2:// or TU_CRYPTO_TLSV1_2)",
            Versions::Tls13 => "TLS 1.3 (tlsv1.3:// or TU_CRYPTO_TLSV1_3)",
        }
    }
}

fn version_text(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "TLS 1.2",
        TlsVersion::Tls13 => "TLS 1.3",
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())).clone()
}

/// The operating system's roots, loaded on first use (so that a program may
/// set `SSL_CERT_FILE` after loading the library) and then kept.
fn system_roots() -> Result<Arc<RootCertStore>> {
    static ROOTS: Mutex<Option<Arc<RootCertStore>>> = Mutex::new(None);
    let mut cached = ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(roots) = cached.as_ref() {
        return Ok(roots.clone());
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let why: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        return Err(Error::new(
            TU_E_CERTIFICATE,
            format!(
                "no trusted root certificates found in the system store{}; set ssl.cafile, or SSL_CERT_FILE / SSL_CERT_DIR",
                if why.is_empty() { String::new() } else { format!(" ({})", why.join("; ")) }
            ),
        ));
    }
    let roots = Arc::new(store);
    *cached = Some(roots.clone());
    Ok(roots)
}

// ---------------------------------------------------------------------------
// Files named by options (checked when set, read again when a config is built)

/// Reads every PEM certificate in `path`; at least one must be there.
pub fn load_pem_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| Error::new(TU_E_INVALID_ARGUMENT, format!("option {key}: '{}': {why}", path.display()));
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = iter.collect::<std::result::Result<_, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into()));
    }
    Ok(certs)
}

/// Every certificate in the files of `dir` (PEM files or OpenSSL hash
/// links; files without certificates are skipped). At least one is needed.
pub fn load_capath(key: &str, dir: &Path) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::invalid(format!("option {key}: cannot read directory '{}': {e}", dir.display())))?;
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let mut seen = HashSet::new();
    let mut certs = Vec::new();
    for path in names.iter().take(10_000) {
        if !std::fs::metadata(path).map(|m| m.is_file()).unwrap_or(false) {
            continue;
        }
        let Ok(iter) = CertificateDer::pem_file_iter(path) else { continue };
        for cert in iter.flatten() {
            if seen.insert(cert.as_ref().to_vec()) {
                certs.push(cert);
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "option {key}: no PEM certificate found in the files of '{}'",
            dir.display()
        )));
    }
    Ok(certs)
}

/// `ssl.local_pk` must hold a private key (plain or encrypted PKCS#8 PEM).
pub fn check_key_file(key: &str, path: &Path) -> Result<()> {
    let text = std::fs::read(path).map_err(|e| Error::invalid(format!("option {key}: '{}': {e}", path.display())))?;
    if find_private_key(&text).is_none() {
        return Err(Error::invalid(format!(
            "option {key}: '{}' holds no PEM private key (-----BEGIN PRIVATE KEY-----, ENCRYPTED PRIVATE KEY, \
             RSA PRIVATE KEY or EC PRIVATE KEY)",
            path.display()
        )));
    }
    Ok(())
}

enum KeyPem {
    Plain,
    EncryptedPkcs8,
    /// Legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED`).
    LegacyEncrypted,
}

fn find_private_key(pem: &[u8]) -> Option<KeyPem> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Some(KeyPem::EncryptedPkcs8);
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Some(KeyPem::LegacyEncrypted);
    }
    for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
        if text.contains(&format!("-----BEGIN {label}-----")) {
            return Some(KeyPem::Plain);
        }
    }
    None
}

/// The client key: from `ssl.local_pk`, else from the `ssl.local_cert` file.
fn load_private_key(opts: &TlsOptions, cert_path: &Path) -> Result<PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let (key, path) = match &opts.local_pk {
        Some(p) => ("ssl.local_pk", p.as_path()),
        None => ("ssl.local_cert", cert_path),
    };
    let text = std::fs::read(path).map_err(|e| Error::invalid(format!("option {key}: '{}': {e}", path.display())))?;
    match find_private_key(&text) {
        None if opts.local_pk.is_none() => Err(Error::invalid(format!(
            "option ssl.local_cert: '{}' holds no private key; put the key in the same file or set ssl.local_pk",
            path.display()
        ))),
        None => Err(Error::invalid(format!("option {key}: '{}' holds no PEM private key", path.display()))),
        Some(KeyPem::LegacyEncrypted) => Err(Error::invalid(format!(
            "option {key}: '{}' is encrypted the legacy OpenSSL way (Proc-Type: 4,ENCRYPTED), which is not \
             supported; convert it to encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`",
            path.display()
        ))),
        Some(KeyPem::Plain) => PrivateKeyDer::from_pem_slice(&text)
            .map_err(|e| Error::invalid(format!("option {key}: '{}': {e}", path.display()))),
        Some(KeyPem::EncryptedPkcs8) => {
            let Some(pass) = &opts.passphrase else {
                return Err(Error::invalid(format!(
                    "option {key}: the private key in '{}' is encrypted; set ssl.passphrase",
                    path.display()
                )));
            };
            decrypt_pkcs8(&text, &pass.0).map_err(|why| {
                Error::invalid(format!("option ssl.passphrase: cannot decrypt the key in '{}': {why}", path.display()))
            })
        }
    }
}

/// Decrypts the `ENCRYPTED PRIVATE KEY` block (PKCS#8, PBES2 with PBKDF2 or
/// scrypt and AES-CBC: what `openssl pkcs8 -topk8` writes).
fn decrypt_pkcs8(pem: &[u8], passphrase: &str) -> std::result::Result<PrivateKeyDer<'static>, String> {
    let text = String::from_utf8_lossy(pem);
    let begin = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    let end = "-----END ENCRYPTED PRIVATE KEY-----";
    let start = text.find(begin).ok_or("no ENCRYPTED PRIVATE KEY block")?;
    let stop = text[start..].find(end).ok_or("the ENCRYPTED PRIVATE KEY block is not terminated")? + start + end.len();
    let (label, der) = pkcs8::der::pem::decode_vec(text[start..stop].as_bytes()).map_err(|e| format!("bad PEM: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(format!("unexpected PEM label {label}"));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| format!("bad PKCS#8 structure: {e}"))?;
    let doc = info.decrypt(passphrase.as_bytes()).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm { oid }) => {
            format!("the encryption algorithm {oid} is not supported (use PBES2 with AES-CBC, e.g. openssl pkcs8 -topk8 -v2 aes-256-cbc)")
        }
        _ => "wrong passphrase, or an unsupported encryption".to_string(),
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec())))
}

/// Opens (creating with mode 0600) a key-log file for appending.
pub fn open_keylog(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)
}

/// NSS key-log lines (`CLIENT_RANDOM …`, `CLIENT_TRAFFIC_SECRET_0 …`)
/// appended to a file, one write per line.
#[derive(Debug)]
struct FileKeyLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl KeyLog for FileKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.is_none() {
            *file = open_keylog(&self.path).ok();
        }
        if let Some(f) = file.as_mut() {
            let line = format!("{label} {} {}\n", verify::hex(client_random), verify::hex(secret));
            let _ = f.write_all(line.as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------
// Cipher suites (ssl.ciphers)

/// The IANA name of a suite ("TLS_AES_128_GCM_SHA256").
fn iana_name(s: SupportedCipherSuite) -> &'static str {
    let name = s.suite().as_str().unwrap_or("TLS_UNKNOWN");
    match name.strip_prefix("TLS13_") {
        Some(rest) => iana_tls13(rest),
        None => name,
    }
}

/// OpenSSL's names for the TLS 1.2 suites we have (TLS 1.3 names are the same).
const OPENSSL_NAMES: &[(&str, &str)] = &[
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// The names `ssl.ciphers` accepts, in the provider's order of preference.
pub fn supported_ciphers() -> Vec<&'static str> {
    provider().cipher_suites.iter().map(|s| iana_name(*s)).collect()
}

/// `ssl.ciphers`: IANA names (OpenSSL's names of the same suites are
/// accepted too), separated by `:` or `,`. `DEFAULT` alone means all.
pub fn parse_ciphers(key: &str, value: &str) -> Result<Option<Vec<&'static str>>> {
    let supported = supported_ciphers();
    let items: Vec<&str> = value.split([':', ',', ' ']).map(str::trim).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err(Error::invalid(format!("option {key}: empty cipher list; supported: {}", supported.join(" "))));
    }
    if items.len() == 1 && items[0].eq_ignore_ascii_case("DEFAULT") {
        return Ok(None);
    }
    let mut out: Vec<&'static str> = Vec::new();
    for item in items {
        let alias = OPENSSL_NAMES.iter().find(|(o, _)| o.eq_ignore_ascii_case(item)).map(|(_, i)| *i);
        let found = supported.iter().find(|s| s.eq_ignore_ascii_case(item) || Some(**s) == alias);
        match found {
            Some(s) => {
                if !out.contains(s) {
                    out.push(s)
                }
            }
            None => {
                let keyword = item.starts_with(['!', '+', '-', '@']) || item.chars().all(|c| c.is_ascii_uppercase());
                let what = if keyword {
                    format!("'{}' is OpenSSL cipher-string syntax, which is not supported", printable(item))
                } else {
                    format!("unknown or unsupported cipher suite '{}'", printable(item))
                };
                return Err(Error::invalid(format!("option {key}: {what}; supported (IANA names): {}", supported.join(" "))));
            }
        }
    }
    Ok(Some(out))
}

// ---------------------------------------------------------------------------
// Configs

/// A client config and what was decided in building it. Configs are cached
/// per option set, so roots are not rebuilt per connection and sessions
/// resume.
pub struct Profile {
    config: Arc<ClientConfig>,
    opts: TlsOptions,
    verifier: Arc<Verifier>,
    /// The versions this config allows, for messages.
    versions: Vec<TlsVersion>,
}

impl Profile {
    pub fn options(&self) -> &TlsOptions {
        &self.opts
    }
}

/// What a cached config was built from, beyond the options: the files'
/// modification times and `SSLKEYLOGFILE`, so that a changed file or
/// environment gives a new config.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    opts: TlsOptions,
    versions: Versions,
    stamps: Vec<Option<(SystemTime, u64)>>,
    keylog_env: Option<std::ffi::OsString>,
}

fn stamp(path: Option<&PathBuf>) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path?).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// At most this many distinct configs are kept.
const CACHE_LIMIT: usize = 64;

/// The shared client config for these settings.
pub fn client_config(opts: &TlsOptions, versions: Versions) -> Result<Arc<Profile>> {
    static CONFIGS: OnceLock<Mutex<HashMap<CacheKey, Arc<Profile>>>> = OnceLock::new();
    let cache = CONFIGS.get_or_init(Default::default);
    let key = CacheKey {
        opts: opts.clone(),
        versions,
        stamps: [&opts.cafile, &opts.capath, &opts.local_cert, &opts.local_pk].iter().map(|p| stamp(p.as_ref())).collect(),
        keylog_env: std::env::var_os("SSLKEYLOGFILE").filter(|v| !v.is_empty()),
    };
    if let Some(p) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    let profile = Arc::new(build_profile(opts, versions, key.keylog_env.as_deref())?);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CACHE_LIMIT {
        if let Some(k) = map.keys().next().cloned() {
            map.remove(&k);
        }
    }
    map.insert(key, profile.clone());
    Ok(profile)
}

/// The versions to offer: the method's or transport's, within
/// `ssl.min_version`..`ssl.max_version`, and only those that have a suite
/// left in `ssl.ciphers`.
fn choose_versions(opts: &TlsOptions, versions: Versions, suites: &[SupportedCipherSuite]) -> Result<Vec<TlsVersion>> {
    let min = opts.min_version.unwrap_or(TlsVersion::Tls12);
    let max = opts.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(Error::invalid(format!(
            "ssl.min_version ({}) is above ssl.max_version ({})",
            version_text(min),
            version_text(max)
        )));
    }
    let allowed: Vec<TlsVersion> =
        [TlsVersion::Tls13, TlsVersion::Tls12].into_iter().filter(|v| versions.allows(*v) && *v >= min && *v <= max).collect();
    if allowed.is_empty() {
        return Err(Error::invalid(format!(
            "this connection asks for {} but ssl.min_version/ssl.max_version allow only {}..{}",
            versions.what(),
            version_text(min),
            version_text(max)
        )));
    }
    let with_suites: Vec<TlsVersion> = allowed
        .iter()
        .copied()
        .filter(|v| {
            let pv = match v {
                TlsVersion::Tls12 => rustls::ProtocolVersion::TLSv1_2,
                TlsVersion::Tls13 => rustls::ProtocolVersion::TLSv1_3,
            };
            suites.iter().any(|s| s.version().version == pv)
        })
        .collect();
    if with_suites.is_empty() {
        let list: Vec<&str> = allowed.iter().map(|v| version_text(*v)).collect();
        return Err(Error::invalid(format!(
            "option ssl.ciphers: none of the listed suites can be used with {}, the only version(s) allowed here",
            list.join(" or ")
        )));
    }
    Ok(with_suites)
}

fn build_profile(opts: &TlsOptions, versions: Versions, keylog_env: Option<&std::ffi::OsStr>) -> Result<Profile> {
    let base = provider();
    let mut provider = (*base).clone();
    if let Some(names) = &opts.ciphers {
        provider.cipher_suites = names
            .iter()
            .filter_map(|n| base.cipher_suites.iter().find(|s| iana_name(**s) == *n).copied())
            .collect();
    }
    let chosen = choose_versions(opts, versions, &provider.cipher_suites)?;
    let list: Vec<&'static rustls::SupportedProtocolVersion> = chosen
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&list)
        .map_err(|e| Error::new(TU_E_TLS, format!("TLS configuration: {e}")))?;
    let verifier = Arc::new(Verifier {
        provider: provider.clone(),
        trust: if opts.verify_peer { Some(trust_for(opts)?) } else { None },
        check_name: opts.verify_peer_name && (opts.verify_peer || opts.verify_peer_name_set),
        allow_self_signed: opts.allow_self_signed,
        fingerprints: opts.peer_fingerprints.clone(),
    });
    let client_auth = match &opts.local_cert {
        None => {
            if opts.local_pk.is_some() {
                return Err(Error::invalid("option ssl.local_pk is set but ssl.local_cert is not: set both"));
            }
            None
        }
        Some(cert_path) => {
            let chain = load_pem_certs("ssl.local_cert", cert_path)?;
            let key = load_private_key(opts, cert_path)?;
            let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => Error::invalid(
                    "options ssl.local_cert and ssl.local_pk do not match: the key is not the certificate's",
                ),
                other => Error::invalid(format!("option ssl.local_pk: the key cannot be used: {other}")),
            })?;
            Some(Arc::new(certified))
        }
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(Arc::new(ClientAuth(client_auth)));
    config.enable_sni = opts.sni_enabled;
    config.alpn_protocols = opts.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
    let keylog = opts.keylog.clone().or_else(|| keylog_env.map(PathBuf::from));
    if let Some(path) = keylog {
        config.key_log = Arc::new(FileKeyLog { path, file: Mutex::new(None) });
    }
    Ok(Profile { config: Arc::new(config), opts: opts.clone(), verifier, versions: chosen })
}

fn trust_for(opts: &TlsOptions) -> Result<Trust> {
    if opts.cafile.is_none() && opts.capath.is_none() {
        return Ok(Trust { roots: system_roots()?, explicit: HashSet::new(), source: "the system store".into() });
    }
    let mut certs = Vec::new();
    let mut source = Vec::new();
    if let Some(path) = &opts.cafile {
        certs.extend(load_pem_certs("ssl.cafile", path)?);
        source.push(format!("ssl.cafile '{}'", path.display()));
    }
    if let Some(dir) = &opts.capath {
        certs.extend(load_capath("ssl.capath", dir)?);
        source.push(format!("ssl.capath '{}'", dir.display()));
    }
    let mut store = RootCertStore::empty();
    let mut explicit = HashSet::new();
    for cert in certs {
        explicit.insert(cert.as_ref().to_vec());
        // A certificate webpki cannot use as an anchor may still be trusted
        // as a self-signed leaf (see `explicit`).
        let _ = store.add(cert);
    }
    Ok(Trust { roots: Arc::new(store), explicit, source: source.join(" and ") })
}

thread_local! {
    /// Set when the server asks this thread's connection for a client
    /// certificate (rustls calls the resolver from `process_new_packets`).
    static CERT_REQUESTED: Cell<bool> = const { Cell::new(false) };
}

/// Hands rustls the client certificate, if any, and notes that the server
/// asked for one (a later handshake_failure alert then means "no or bad
/// client certificate", not "no common cipher").
#[derive(Debug)]
struct ClientAuth(Option<Arc<CertifiedKey>>);

impl ResolvesClientCert for ClientAuth {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        CERT_REQUESTED.with(|c| c.set(true));
        let key = self.0.as_ref()?;
        key.key.choose_scheme(sigschemes).map(|_| key.clone())
    }
    fn has_certs(&self) -> bool {
        self.0.is_some()
    }
}

/// The server name to verify and send as SNI (IP literals send no SNI).
pub fn server_name(name: &str) -> Result<ServerName<'static>> {
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    // A zone is meaningless in a certificate: verify the address alone.
    let bare = bare.split('%').next().unwrap_or(bare);
    ServerName::try_from(bare.to_string())
        .map_err(|_| Error::invalid(format!("'{name}' cannot be used as a TLS server name")))
}

// ---------------------------------------------------------------------------
// Error messages

fn human_time(t: &UnixTime) -> String {
    let secs = t.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn name_text(n: &ServerName<'_>) -> String {
    match n {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => format!("{n:?}"),
    }
}

/// webpki shows presented names as `DnsName("a.example")` or
/// `IpAddress(1.2.3.4)`: keep the name.
fn presented_name(p: &str) -> String {
    let inner = p.split_once('(').and_then(|(_, rest)| rest.strip_suffix(')')).unwrap_or(p);
    inner.trim_matches('"').to_string()
}

/// A message for a certificate failure that says which one.
fn certificate_message(e: &CertificateError, expected: &str) -> String {
    match e {
        CertificateError::Expired => "the server's certificate has expired".into(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server's certificate has expired (valid until {}, now {})",
            human_time(not_after),
            human_time(time)
        ),
        CertificateError::NotValidYet => "the server's certificate is not yet valid".into(),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the server's certificate is not yet valid (valid from {}, now {})",
            human_time(not_before),
            human_time(time)
        ),
        CertificateError::NotValidForName => {
            format!("certificate name mismatch: the server's certificate is not valid for '{expected}'")
        }
        CertificateError::NotValidForNameContext { expected, presented } => format!(
            "certificate name mismatch: expected '{}', but the server's certificate is valid for {}; \
             set ssl.peer_name if the server is known under another name",
            name_text(expected),
            if presented.is_empty() { "no names".to_string() } else { presented.iter().map(|p| presented_name(p)).collect::<Vec<_>>().join(", ") }
        ),
        CertificateError::UnknownIssuer => format!(
            "the server's certificate for '{expected}' was issued by an unknown issuer (not trusted by {}); \
             a self-signed certificate or a missing intermediate certificate also looks like this",
            "the configured roots: ssl.cafile or the system store"
        ),
        CertificateError::InvalidPurposeContext { presented, .. } => {
            let list: Vec<&str> = presented
                .iter()
                .map(|p| match p {
                    rustls::ExtendedKeyPurpose::ClientAuth => "client authentication (clientAuth)",
                    rustls::ExtendedKeyPurpose::ServerAuth => "server authentication (serverAuth)",
                    _ => "other purposes",
                })
                .collect();
            format!(
                "the server's certificate is not valid for TLS server authentication: its extended key usage allows only {}",
                if list.is_empty() { "nothing".to_string() } else { list.join(", ") }
            )
        }
        CertificateError::Other(rustls::OtherError(inner)) => match inner.downcast_ref::<verify::Detailed>() {
            Some(d) => d.0.clone(),
            None => format!("the server's certificate was rejected: {inner}"),
        },
        CertificateError::BadSignature => "the server's certificate has a bad signature".into(),
        CertificateError::BadEncoding => "the server's certificate could not be parsed (bad encoding)".into(),
        CertificateError::InvalidPurpose => {
            "the server's certificate is not valid for TLS server authentication (extended key usage)".into()
        }
        CertificateError::UnhandledCriticalExtension => {
            "the server's certificate has an unsupported critical extension".into()
        }
        CertificateError::Revoked => "the server's certificate has been revoked".into(),
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "the server's certificate uses an unsupported or insecure signature algorithm (e.g. SHA-1, RSA < 2048 bits)"
                .into()
        }
        other => format!("the server's certificate was rejected: {other:?}"),
    }
}

/// What a message about a failed handshake can take into account.
#[derive(Default)]
pub struct Context<'a> {
    /// The name verified and sent.
    pub name: &'a str,
    /// The versions offered (empty: unknown).
    pub versions: &'a [TlsVersion],
    /// `ssl.ciphers` limited the offer.
    pub ciphers_set: bool,
    /// The server asked for a client certificate.
    pub cert_requested: bool,
    /// We have one to send.
    pub has_client_cert: bool,
}

/// Maps a rustls error to a code and a message a person can act on.
pub fn map_error(e: &rustls::Error, expected_name: &str) -> Error {
    explain(e, &Context { name: expected_name, ..Context::default() })
}

/// [`map_error`] with what the session knows.
pub fn explain(e: &rustls::Error, cx: &Context<'_>) -> Error {
    use rustls::{AlertDescription as A, Error as E};
    let expected_name = cx.name;
    let client_cert_alert = matches!(
        e,
        E::AlertReceived(
            A::HandshakeFailure
                | A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnknownCA
                | A::AccessDenied
                | A::DecryptError
        )
    );
    match e {
        E::InvalidCertificate(ce) => Error::new(TU_E_CERTIFICATE, certificate_message(ce, expected_name)),
        E::AlertReceived(A::CertificateRequired) => Error::new(
            TU_E_TLS,
            "the server requires a client certificate and none was sent (alert CertificateRequired): set \
             ssl.local_cert (and ssl.local_pk)",
        ),
        E::AlertReceived(a) if cx.cert_requested && client_cert_alert => Error::new(
            TU_E_TLS,
            if cx.has_client_cert {
                format!(
                    "the server rejected our client certificate (alert {a:?}): check that ssl.local_cert is issued \
                     by a CA the server trusts and allows client authentication"
                )
            } else {
                format!(
                    "the server requires a client certificate and none was sent (alert {a:?}): set ssl.local_cert \
                     (and ssl.local_pk)"
                )
            },
        ),
        E::AlertReceived(A::ProtocolVersion) if cx.versions == [TlsVersion::Tls13] => Error::new(
            TU_E_TLS,
            "the server refused the TLS handshake (alert ProtocolVersion): TLS 1.3 is the only version allowed \
             here (tlsv1.3://, TU_CRYPTO_TLSV1_3 or ssl.min_version) and the server does not support it; if it \
             offers only insecure protocols or ciphers, it cannot be used",
        ),
        E::AlertReceived(A::HandshakeFailure) if cx.ciphers_set => Error::new(
            TU_E_TLS,
            "the server refused the TLS handshake (alert HandshakeFailure): it accepts none of the suites in \
             ssl.ciphers, or it offers only insecure protocols or ciphers (SSL 3, TLS 1.0/1.1, CBC or DHE-only \
             suites), which this library refuses",
        ),
        E::AlertReceived(A::NoApplicationProtocol) => Error::new(
            TU_E_TLS,
            "the server supports none of the protocols in ssl.alpn_protocols (alert NoApplicationProtocol)",
        ),
        E::AlertReceived(A::UnrecognisedName) => Error::new(
            TU_E_TLS,
            format!("the server does not know the name '{expected_name}' sent by SNI (alert UnrecognisedName); set ssl.peer_name"),
        ),
        E::InvalidMessage(rustls::InvalidMessage::HandshakePayloadTooLarge | rustls::InvalidMessage::MessageTooLarge) => {
            Error::new(
                TU_E_TLS,
                "the server sent a TLS handshake message over 64 KiB (for example an oversized certificate chain), \
                 which is refused",
            )
        }
        E::AlertReceived(a @ (A::ProtocolVersion | A::HandshakeFailure | A::InsufficientSecurity)) => Error::new(
            TU_E_TLS,
            format!(
                "the server refused the TLS handshake (alert {a:?}): it likely offers only insecure protocols or \
                 ciphers (SSL 3, TLS 1.0/1.1, CBC or DHE-only suites), which this library refuses; TLS 1.2 or 1.3 \
                 with an ECDHE AEAD suite is required"
            ),
        ),
        E::AlertReceived(a) => Error::new(TU_E_TLS, format!("the server sent a fatal TLS alert: {a:?}")),
        E::PeerIncompatible(p) => Error::new(
            TU_E_TLS,
            format!(
                "the server is incompatible ({p:?}): it likely offers only insecure protocols or ciphers, which \
                 this library refuses; TLS 1.2 or 1.3 is required"
            ),
        ),
        E::PeerMisbehaved(p) => Error::new(TU_E_TLS, format!("the server broke the TLS protocol: {p:?}")),
        E::InvalidMessage(m) => Error::new(TU_E_TLS, format!("the server sent an invalid TLS message: {m:?}")),
        other => Error::new(TU_E_TLS, format!("TLS failure: {other}")),
    }
}

/// The printable start of `bytes` (one line, at most 80 characters).
fn quote(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(bytes);
    let mut s: String = line
        .iter()
        .take(80)
        .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
        .collect();
    while s.ends_with('.') && line.last() == Some(&b'\r') {
        s.pop();
    }
    if line.len() > 80 {
        s.push('…');
    }
    s
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(16)];
    !head.is_empty() && head.iter().all(|&b| b == b'\r' || b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The error for bytes that are not TLS where TLS was expected.
fn plaintext_error(bytes: &[u8], starttls: bool) -> Error {
    let q = quote(bytes);
    if !looks_like_text(bytes) {
        return Error::new(TU_E_TLS, format!("the server did not answer with TLS (first bytes: \"{q}\")"));
    }
    if starttls {
        // Bytes that were already waiting when the upgrade began are caught
        // before the handshake (TU_E_PROTOCOL, see `injected_error`); these
        // came in answer to our ClientHello.
        return Error::new(
            TU_E_PLAINTEXT_PEER,
            format!(
                "the server answered the TLS handshake in plaintext: \"{q}\". Call tu_enable_crypto only after \
                 the server has accepted the protocol's STARTTLS command (SMTP: \"220\" in answer to STARTTLS); \
                 the connection is not usable now"
            ),
        );
    }
    Error::new(
        TU_E_PLAINTEXT_PEER,
        format!(
            "the server answered in plaintext, not TLS: \"{q}\". This port expects a plaintext protocol first: \
             connect with tcp:// and call tu_enable_crypto after the protocol's STARTTLS command (SMTP port 587 \
             or 25), or use the implicit-TLS port instead (465 for SMTP, 993 IMAP, 995 POP3, 443 HTTPS)"
        ),
    )
}

/// The error for plaintext already waiting when a STARTTLS upgrade begins.
pub fn injected_error(bytes: &[u8], count: u64) -> Error {
    Error::new(
        TU_E_PROTOCOL,
        format!(
            "{count} plaintext byte(s) were already waiting when the TLS upgrade began (\"{}\"): a server must \
             send nothing after its STARTTLS go-ahead, so these may have been injected; refusing to upgrade, the \
             connection is not usable",
            quote(bytes)
        ),
    )
}

// ---------------------------------------------------------------------------
// The session

const HEADER: usize = 5;
/// The largest record a peer may send: 2^14 plus the TLS 1.2 expansion.
const MAX_RECORD: usize = HEADER + 16_384 + 2_048;

/// The length of the record at the start of `b`: `Ok(Some(n))` when whole,
/// `Ok(None)` when more bytes are needed, `Err(())` when `b` is no record.
fn record_len(b: &[u8]) -> std::result::Result<Option<usize>, ()> {
    if b.is_empty() {
        return Ok(None);
    }
    if !(20..=23).contains(&b[0]) || (b.len() > 1 && b[1] != 3) {
        return Err(());
    }
    if b.len() < HEADER {
        return Ok(None);
    }
    let len = HEADER + u16::from_be_bytes([b[3], b[4]]) as usize;
    if len > MAX_RECORD {
        return Err(());
    }
    Ok(if b.len() >= len { Some(len) } else { None })
}

/// Raw bytes from the socket that rustls has not seen yet.
struct RecvBuf {
    /// Received bytes; those before `start` were handed on already.
    data: Vec<u8>,
    start: usize,
}

impl RecvBuf {
    /// Empty, with no memory: idle connections hold none (see `release`).
    fn new() -> Self {
        RecvBuf { data: Vec::new(), start: 0 }
    }
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..]
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }
    /// One `recv` into the free space (never zeroed): Ok(0) at EOF.
    fn fill(&mut self, sock: &Socket) -> io::Result<usize> {
        if self.data.capacity() - self.data.len() < MAX_RECORD {
            if self.start > 0 {
                self.data.drain(..self.start);
                self.start = 0;
            }
            self.data.reserve(2 * MAX_RECORD - self.data.len());
        }
        net::recv_spare(sock, &mut self.data)
    }
    /// Gives the memory back when nothing is buffered (an idle connection).
    fn release(&mut self) {
        if self.data.is_empty() && self.data.capacity() > 0 {
            self.data = Vec::new();
        }
    }
}

/// What a non-blocking step needs before it can go on.
pub type Blocked = Want;

/// One TLS session on a socket: the rustls state plus our receive buffer.
pub struct Session {
    conn: ClientConnection,
    buf: RecvBuf,
    eof: bool,
    starttls: bool,
    name: String,
    seen_first: bool,
    closed: bool,
    sent_close: bool,
    failed: Option<Error>,
    profile: Arc<Profile>,
    server: ServerName<'static>,
    /// The server asked for a client certificate.
    cert_requested: bool,
}

impl Session {
    pub fn new(profile: Arc<Profile>, name: &str, starttls: bool) -> Result<Self> {
        let server = server_name(name)?;
        let conn = ClientConnection::new(profile.config.clone(), server.clone()).map_err(|e| map_error(&e, name))?;
        Ok(Session {
            conn,
            buf: RecvBuf::new(),
            eof: false,
            starttls,
            name: name.to_string(),
            seen_first: false,
            closed: false,
            sent_close: false,
            failed: None,
            profile,
            server,
            cert_requested: false,
        })
    }

    /// A rustls error as a code and a message, with what this session knows.
    fn explain(&self, e: &rustls::Error) -> Error {
        explain(
            e,
            &Context {
                name: &self.name,
                versions: &self.profile.versions,
                ciphers_set: self.profile.opts.ciphers.is_some(),
                cert_requested: self.cert_requested,
                has_client_cert: self.profile.opts.local_cert.is_some(),
            },
        )
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e.clone());
        e
    }

    /// Sends what rustls has queued. `Ok(false)`: the socket is full.
    pub fn flush(&mut self, sock: &Socket) -> Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut NoSigPipe(sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(self.fail(net::os_error("TLS send", e))),
            }
        }
        Ok(true)
    }

    /// Hands rustls the whole records in our buffer, stopping after the
    /// peer's close_notify (what follows it is not TLS) and while decrypted
    /// data waits to be read.
    fn feed(&mut self, sock: &Socket) -> Result<bool> {
        let mut progressed = false;
        loop {
            if self.conn.wants_write() {
                // Alerts or key-update answers: send what fits, never block here.
                self.flush(sock)?;
            }
            if self.peer_closed() || !self.conn.wants_read() {
                return Ok(progressed);
            }
            let avail = self.buf.bytes();
            let len = match record_len(avail) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(progressed),
                Err(()) => {
                    if !self.seen_first {
                        let e = plaintext_error(avail, self.starttls);
                        return Err(self.fail(e));
                    }
                    let e = Error::new(TU_E_TLS, format!("the peer sent bytes that are not TLS (\"{}\")", quote(avail)));
                    return Err(self.fail(e));
                }
            };
            self.seen_first = true;
            let mut record = &self.buf.bytes()[..len];
            while !record.is_empty() {
                match self.conn.read_tls(&mut record) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        let e = Error::new(TU_E_TLS, format!("TLS receive: {e}"));
                        return Err(self.fail(e));
                    }
                }
            }
            let used = len - record.len();
            self.buf.consume(used);
            progressed = true;
            CERT_REQUESTED.with(|c| c.set(false));
            let processed = self.conn.process_new_packets();
            self.cert_requested |= CERT_REQUESTED.with(|c| c.replace(false));
            match processed {
                Ok(state) => self.closed = state.peer_has_closed(),
                Err(e) => {
                    let _ = self.flush(sock); // the alert, best effort
                    let e = self.explain(&e);
                    return Err(self.fail(e));
                }
            }
        }
    }

    /// The peer's close_notify has been processed.
    pub fn peer_closed(&self) -> bool {
        self.closed
    }

    /// Receives once and processes what came. `Ok(false)`: nothing to read now.
    fn receive(&mut self, sock: &Socket) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        match self.buf.fill(sock) {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(_) => {
                self.feed(sock)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(self.fail(net::os_error("TLS receive", e))),
        }
    }

    /// Drives the handshake without blocking: `Ok(None)` when it is done,
    /// `Ok(Some(want))` when the socket must become ready first.
    pub fn handshake_step(&mut self, sock: &Socket) -> Result<Option<Blocked>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            if !self.flush(sock)? {
                return Ok(Some(Want::Write));
            }
            if !self.conn.is_handshaking() {
                self.buf.release();
                return Ok(None);
            }
            self.feed(sock)?;
            if !self.conn.is_handshaking() {
                continue;
            }
            if self.eof {
                let e = if !self.seen_first && !self.buf.bytes().is_empty() {
                    plaintext_error(self.buf.bytes(), self.starttls)
                } else {
                    Error::new(TU_E_TLS, "the server closed the connection during the TLS handshake")
                };
                return Err(self.fail(e));
            }
            if !self.receive(sock)? {
                return Ok(Some(Want::Read));
            }
        }
    }

    /// Reads decrypted bytes without blocking: `Ok(Some(n))` (0 = close_notify
    /// received), `Ok(None)` when nothing can be read yet.
    pub fn read_step(&mut self, sock: &Socket, out: &mut [u8]) -> Result<Option<usize>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            match self.conn.reader().read(out) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Error::new(
                        crate::error::TU_E_TRUNCATED,
                        "the peer closed the TLS connection without close_notify: the data may be truncated",
                    ))
                }
                Err(e) => return Err(self.fail(Error::new(TU_E_TLS, format!("TLS read: {e}")))),
            }
            if self.feed(sock)? {
                continue;
            }
            if self.eof {
                if !self.buf.bytes().is_empty() && !self.peer_closed() {
                    return Err(Error::new(
                        crate::error::TU_E_TRUNCATED,
                        "the peer closed the connection in the middle of a TLS record: the data is truncated",
                    ));
                }
                // Tell rustls about the end of the stream; the reader then
                // reports close_notify (0) or its absence (truncation).
                let _ = self.conn.read_tls(&mut io::empty());
                let _ = self.conn.process_new_packets();
                match self.conn.reader().read(out) {
                    Ok(n) => return Ok(Some(n)),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(Error::new(
                            crate::error::TU_E_TRUNCATED,
                            "the peer closed the TLS connection without close_notify: the data may be truncated",
                        ))
                    }
                    Err(e) => return Err(self.fail(Error::new(TU_E_TLS, format!("TLS read: {e}")))),
                }
            }
            if !self.receive(sock)? {
                // About to wait: an idle connection keeps no receive buffer.
                self.buf.release();
                return Ok(None);
            }
        }
    }

    /// Encrypts as much of `data` as rustls takes and sends what it can.
    /// Returns the bytes taken; `Ok((n, Some(Want::Write)))` when the
    /// socket is full.
    pub fn write_step(&mut self, sock: &Socket, data: &[u8]) -> Result<(usize, Option<Blocked>)> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.flush(sock)? {
            return Ok((0, Some(Want::Write)));
        }
        let n = self.conn.writer().write(data).map_err(|e| Error::new(TU_E_TLS, format!("TLS write: {e}")))?;
        if !self.flush(sock)? {
            return Ok((n, Some(Want::Write)));
        }
        Ok((n, None))
    }

    /// Queues close_notify (once) and sends what the socket takes now.
    /// `Ok(false)`: some of it is still queued.
    pub fn close_notify(&mut self, sock: &Socket) -> Result<bool> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.sent_close {
            self.conn.send_close_notify();
            self.sent_close = true;
        }
        self.flush(sock)
    }

    /// One non-blocking step of turning TLS off (`TU_CRYPTO_NONE`): send our
    /// close_notify, then read until the peer's. Decrypted data that comes
    /// before it, and the raw bytes after it (plaintext again), are appended
    /// to `plain`, in order, so nothing is lost. `Ok(None)` when done.
    pub fn off_step(&mut self, sock: &Socket, plain: &mut Vec<u8>) -> Result<Option<Blocked>> {
        if !self.close_notify(sock)? {
            return Ok(Some(Want::Write));
        }
        let mut chunk = [0u8; 4096];
        loop {
            loop {
                match self.conn.reader().read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => plain.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
            if self.closed {
                plain.extend_from_slice(self.buf.bytes());
                let n = self.buf.bytes().len();
                self.buf.consume(n);
                return Ok(None);
            }
            if self.feed(sock)? {
                continue;
            }
            if self.eof {
                let e = Error::new(
                    crate::error::TU_E_TRUNCATED,
                    "the peer closed the connection without close_notify while TLS was being turned off",
                );
                return Err(self.fail(e));
            }
            if !self.receive(sock)? {
                return Ok(Some(Want::Read));
            }
        }
    }

    pub fn has_pending_output(&self) -> bool {
        self.conn.wants_write()
    }

    /// Decrypted bytes rustls holds for the reader (poll cannot see them).
    /// Processes nothing new: only records already handed to rustls count.
    pub fn buffered_plaintext(&mut self) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        self.conn.process_new_packets().map(|s| s.plaintext_bytes_to_read()).unwrap_or(0)
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// "TLSv1.3" or "TLSv1.2".
    pub fn version_name(&self) -> Option<&'static str> {
        match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
            rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
            _ => None,
        }
    }

    /// The IANA name of the negotiated cipher suite.
    pub fn cipher_suite_name(&self) -> Option<&'static str> {
        Some(iana_name(self.conn.negotiated_cipher_suite()?))
    }

    /// The key-exchange group ("X25519MLKEM768", "X25519", "secp256r1").
    /// `None` for a resumed TLS 1.2 session, which has no key exchange.
    pub fn group_name(&self) -> Option<&'static str> {
        self.conn.negotiated_key_exchange_group()?.name().as_str()
    }

    /// The protocol agreed by ALPN, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Did this handshake resume an earlier session?
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// Were the chain and the name verified (not relaxed by
    /// `ssl.verify_peer`, `ssl.verify_peer_name`, nor let through only by
    /// `ssl.allow_self_signed`)?
    pub fn peer_verified(&self) -> bool {
        match self.conn.peer_certificates() {
            Some(certs) => self.profile.verifier.fully_verified(certs),
            None => false,
        }
    }

    /// The name sent by SNI: none for IP addresses or with `ssl.SNI_enabled` off.
    pub fn sni(&self) -> Option<&str> {
        match &self.server {
            ServerName::DnsName(d) if self.profile.opts.sni_enabled => Some(d.as_ref()),
            _ => None,
        }
    }

    /// The server's certificates as sent (leaf first), if
    /// `ssl.capture_peer_cert` was set; `None` otherwise.
    pub fn captured_chain(&self) -> Option<&[CertificateDer<'static>]> {
        if !self.profile.opts.capture_peer_cert {
            return None;
        }
        Some(self.conn.peer_certificates().unwrap_or(&[]))
    }
}

/// rustls names TLS 1.3 suites `TLS13_X`; IANA names them `TLS_X`.
fn iana_tls13(rest: &str) -> &'static str {
    match rest {
        "AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "AES_128_CCM_SHA256" => "TLS_AES_128_CCM_SHA256",
        "AES_128_CCM_8_SHA256" => "TLS_AES_128_CCM_8_SHA256",
        _ => "TLS_UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(record_len(b""), Ok(None));
        assert_eq!(record_len(&[22, 3]), Ok(None));
        assert_eq!(record_len(&[22, 3, 1, 0, 2, 9, 9]), Ok(Some(7)));
        assert_eq!(record_len(b"220 smtp ready"), Err(()));
        assert_eq!(record_len(&[23, 3, 3, 0xff, 0xff]), Err(()));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"220 mail.example ESMTP\r\nmore"), "220 mail.example ESMTP");
        assert!(looks_like_text(b"+OK POP3"));
        assert!(!looks_like_text(&[0x15, 0x03, 0x01]));
    }

    #[test]
    fn cipher_names() {
        let all = supported_ciphers();
        assert!(all.contains(&"TLS_AES_128_GCM_SHA256") && all.contains(&"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
        assert_eq!(parse_ciphers("k", "DEFAULT").unwrap(), None);
        assert_eq!(
            parse_ciphers("k", "ecdhe-rsa-aes128-gcm-sha256 : TLS_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256").unwrap(),
            Some(vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"])
        );
        assert!(parse_ciphers("k", "RC4-SHA").unwrap_err().message.contains("unknown or unsupported"));
        assert!(parse_ciphers("k", "!aNULL").unwrap_err().message.contains("OpenSSL cipher-string"));
    }

    #[test]
    fn version_choice() {
        let mut o = TlsOptions::default();
        let all = provider().cipher_suites.clone();
        assert_eq!(choose_versions(&o, Versions::Any, &all).unwrap(), vec![TlsVersion::Tls13, TlsVersion::Tls12]);
        o.max_version = Some(TlsVersion::Tls12);
        assert_eq!(choose_versions(&o, Versions::Any, &all).unwrap(), vec![TlsVersion::Tls12]);
        assert!(choose_versions(&o, Versions::Tls13, &all).unwrap_err().message.contains("ssl.min_version/ssl.max_version"));
        o.min_version = Some(TlsVersion::Tls13);
        assert!(choose_versions(&o, Versions::Any, &all).unwrap_err().message.contains("above"));
    }

    #[test]
    fn times() {
        assert_eq!(human_time(&UnixTime::since_unix_epoch(std::time::Duration::from_secs(0))), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            human_time(&UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000))),
            "2023-11-14 22:13:20 UTC"
        );
    }
}
