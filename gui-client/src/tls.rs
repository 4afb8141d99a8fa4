//! TLS for the client's blocking sockets, with rustls.
//!
//! The receive and send threads each own a clone of the TCP socket; the TLS session
//! between them is shared behind a mutex, held only for in-memory work and for writing
//! records (never while waiting to read), so a waiting reader does not block sending.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::CertificateDer;

use crate::state::TlsSettings;

/// The trusted roots: the CA file if one is given, else the system's.
fn roots(settings: &TlsSettings) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match &settings.ca_file {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("cannot read the CA file {file}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("the CA file {file}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA file {file}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("the CA file {file} holds no certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no trusted certificates found on this system; give a CA file".to_string(),
                );
            }
        }
    }
    Ok(roots)
}

fn config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(settings)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS session over a connected socket, after a completed handshake.
#[derive(Clone)]
pub struct TlsSession {
    conn: Arc<Mutex<ClientConnection>>,
}

impl TlsSession {
    /// Runs the handshake on `tcp` (bounded by `timeout`); the error says why the server
    /// was not trusted, in words for the connect screen.
    pub fn handshake(
        tcp: &mut TcpStream,
        settings: &TlsSettings,
        timeout: Duration,
    ) -> Result<TlsSession, String> {
        let name = ServerName::try_from(settings.server_name.clone()).map_err(|e| {
            format!(
                "'{}' cannot be checked against a certificate: {e}",
                settings.server_name
            )
        })?;
        let mut conn = ClientConnection::new(config(settings)?, name).map_err(|e| e.to_string())?;
        let _ = tcp.set_read_timeout(Some(timeout));
        let _ = tcp.set_write_timeout(Some(timeout));
        while conn.is_handshaking() {
            conn.complete_io(tcp)
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
        }
        let _ = tcp.set_read_timeout(None);
        let _ = tcp.set_write_timeout(None);
        Ok(TlsSession {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ClientConnection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reading side over `tcp` (a clone of the socket).
    pub fn reader(&self, tcp: TcpStream) -> TlsReader {
        TlsReader {
            session: self.clone(),
            tcp,
            raw: vec![0u8; 16 * 1024],
        }
    }

    /// The writing side over `tcp` (a clone of the socket).
    pub fn writer(&self, tcp: TcpStream) -> TlsWriter {
        TlsWriter {
            session: self.clone(),
            tcp,
        }
    }
}

fn to_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Decrypted reads; ends (0) when the server closes the session.
pub struct TlsReader {
    session: TlsSession,
    tcp: TcpStream,
    raw: Vec<u8>,
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = self.session.lock();
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            // Wait for more records without holding the session.
            let n = self.tcp.read(&mut self.raw)?;
            if n == 0 {
                return Ok(0);
            }
            let mut conn = self.session.lock();
            conn.read_tls(&mut &self.raw[..n])?;
            conn.process_new_packets().map_err(to_io)?;
            // Alerts or key updates the session wants to answer.
            while conn.wants_write() {
                conn.write_tls(&mut self.tcp)?;
            }
        }
    }
}

/// Encrypted writes.
pub struct TlsWriter {
    session: TlsSession,
    tcp: TcpStream,
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut conn = self.session.lock();
        let n = conn.writer().write(buf)?;
        while conn.wants_write() {
            conn.write_tls(&mut self.tcp)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsWriter {
    /// Sends the TLS close notification, then ends the TCP write side.
    pub fn close(&mut self) {
        let mut conn = self.session.lock();
        conn.send_close_notify();
        while conn.wants_write() {
            if conn.write_tls(&mut self.tcp).is_err() {
                break;
            }
        }
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
    }
}
