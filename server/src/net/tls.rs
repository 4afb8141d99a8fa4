//! TLS on the JSON port, with rustls.
//!
//! The certificate and key come from PEM files (`--tls-cert`, `--tls-key`), or, for
//! development, are made at startup (`--tls-self-signed`): a certificate for `localhost`,
//! the loopback addresses and the listening address, written to `--tls-cert` (default
//! `~/.config/chat/server-cert.pem`) so clients can be given it as their CA file. The key
//! of a self-signed certificate never leaves memory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the TLS identity comes from.
#[derive(Debug, Clone)]
pub enum Identity {
    /// PEM files: the certificate chain and its private key.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A certificate made at startup, written to `cert_out`.
    SelfSigned {
        /// Where to write the certificate.
        cert_out: PathBuf,
        /// The address the TLS port listens on (added to the names it is valid for).
        listen_ip: IpAddr,
    },
}

impl Identity {
    /// The identity the flags ask for: `--tls-self-signed` (writing to `--tls-cert`, by
    /// default `~/.config/chat/server-cert.pem`), or `--tls-cert` with `--tls-key`.
    pub fn from_flags(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        self_signed: bool,
        listen_ip: IpAddr,
    ) -> anyhow::Result<Identity> {
        match (cert, key, self_signed) {
            (_, Some(_), true) => {
                bail!("--tls-key is for a certificate of your own, not with --tls-self-signed")
            }
            (cert, None, true) => Ok(Identity::SelfSigned {
                cert_out: cert
                    .or_else(|| netkit::token::config_dir().map(|d| d.join("server-cert.pem")))
                    .context("--tls-self-signed needs --tls-cert (no $HOME for the default)")?,
                listen_ip,
            }),
            (Some(cert), Some(key), false) => Ok(Identity::Files { cert, key }),
            _ => bail!("--tls-listen needs --tls-cert and --tls-key, or --tls-self-signed"),
        }
    }
}

/// The acceptor, and the certificate file clients may trust.
pub fn acceptor(identity: &Identity) -> anyhow::Result<(TlsAcceptor, PathBuf)> {
    let (certs, key, cert_file) = match identity {
        Identity::Files { cert, key } => {
            let certs = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parsing {}", cert.display()))?;
            if certs.is_empty() {
                bail!("{} holds no certificate", cert.display());
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading the private key {}", key.display()))?;
            (certs, key, cert.clone())
        }
        Identity::SelfSigned {
            cert_out,
            listen_ip,
        } => {
            let (cert, key) = self_signed(*listen_ip)?;
            write_cert(cert_out, &cert)?;
            let der = CertificateDer::from_pem_slice(cert.as_bytes())
                .context("reading back the generated certificate")?;
            (vec![der], key, cert_out.clone())
        }
    };
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the certificate does not match its key")?;
    Ok((TlsAcceptor::from(Arc::new(config)), cert_file))
}

/// A self-signed certificate (PEM) for localhost, the loopback addresses and `ip`, and
/// its key.
fn self_signed(ip: IpAddr) -> anyhow::Result<(String, PrivateKeyDer<'static>)> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    let made = rcgen::generate_simple_self_signed(names).context("making a certificate")?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the generated key: {e}"))?;
    Ok((made.cert.pem(), key))
}

fn write_cert(path: &Path, pem: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_choose_the_identity() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let p = |s: &str| Some(PathBuf::from(s));
        assert!(matches!(
            Identity::from_flags(p("c.pem"), p("k.pem"), false, ip),
            Ok(Identity::Files { .. })
        ));
        match Identity::from_flags(p("out.pem"), None, true, ip) {
            Ok(Identity::SelfSigned { cert_out, .. }) => {
                assert_eq!(cert_out, PathBuf::from("out.pem"))
            }
            other => panic!("{other:?}"),
        }
        for (cert, key, self_signed) in [
            (p("c"), None, false),
            (None, p("k"), false),
            (None, None, false),
            (None, p("k"), true),
        ] {
            assert!(Identity::from_flags(cert, key, self_signed, ip).is_err());
        }
    }

    #[test]
    fn a_self_signed_identity_is_written_and_usable() {
        let path = std::env::temp_dir().join(format!("chat-tls-{}/cert.pem", std::process::id()));
        let (_acceptor, file) = acceptor(&Identity::SelfSigned {
            cert_out: path.clone(),
            listen_ip: "10.1.2.3".parse().unwrap(),
        })
        .unwrap();
        assert_eq!(file, path);
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn missing_or_mismatched_files_are_clear_errors() {
        let err = acceptor(&Identity::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        })
        .err()
        .unwrap();
        assert!(
            format!("{err:#}").contains("/nonexistent/cert.pem"),
            "{err:#}"
        );
        // A certificate with another certificate's key.
        let dir = std::env::temp_dir().join(format!("chat-tls-mismatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".to_string()]).unwrap();
        std::fs::write(dir.join("cert.pem"), a.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), b.signing_key.serialize_pem()).unwrap();
        let err = acceptor(&Identity::Files {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        })
        .err()
        .unwrap();
        assert!(format!("{err:#}").contains("does not match"), "{err:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
