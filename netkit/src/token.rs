//! The shared secret of the broker link.
//!
//! A server proves it may join the chat by sending the broker's token in its `Hello`. The
//! token comes from `--token` / `CHAT_TOKEN`, or from a file (`--token-file` /
//! `CHAT_TOKEN_FILE`, by default `$XDG_CONFIG_HOME/chat/link-token`, else
//! `~/.config/chat/link-token`). Like Erlang's cookie file, the broker creates that file
//! with a random token (mode 0600) the first time it starts without one, so processes of
//! the same user on one machine share it with no setup, and nobody else can read it.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Where a process gets the link token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Given on the command line or in the environment.
    Literal(String),
    /// Read from this file (created by the broker if missing).
    File(PathBuf),
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token given is empty.
    #[error("the link token is empty")]
    Empty,
    /// No file was given and there is no home directory to find the default one in.
    #[error("no link token: give --token or --token-file (no $HOME for the default file)")]
    NoDefaultPath,
    /// The file could not be read or created.
    #[error("link token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

impl TokenSource {
    /// The source chosen by the flags: the literal token if given, else the file given,
    /// else the default file.
    pub fn from_flags(token: Option<String>, file: Option<PathBuf>) -> Result<Self, TokenError> {
        match (token, file) {
            (Some(t), _) => Ok(TokenSource::Literal(t)),
            (None, Some(f)) => Ok(TokenSource::File(f)),
            (None, None) => default_path().map(TokenSource::File),
        }
    }

    /// Reads the token (a server, at each connection attempt: a rotated file is picked up).
    pub fn read(&self) -> Result<String, TokenError> {
        match self {
            TokenSource::Literal(t) => non_empty(t.trim()),
            TokenSource::File(path) => read_file(path),
        }
    }

    /// Reads the token, creating the file with a new random token if it does not exist (the
    /// broker, at startup).
    pub fn read_or_create(&self) -> Result<String, TokenError> {
        match self {
            TokenSource::File(path) if !path.exists() => create_file(path),
            _ => self.read(),
        }
    }

    /// Where the token comes from, for logs (never the token itself).
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Literal(_) => "--token / CHAT_TOKEN".to_string(),
            TokenSource::File(p) => p.display().to_string(),
        }
    }
}

/// `$XDG_CONFIG_HOME/chat/link-token`, else `$HOME/.config/chat/link-token`.
pub fn default_path() -> Result<PathBuf, TokenError> {
    Ok(config_dir()
        .ok_or(TokenError::NoDefaultPath)?
        .join("link-token"))
}

/// The chat's configuration folder: `$XDG_CONFIG_HOME/chat`, else `$HOME/.config/chat`.
pub fn config_dir() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let config = var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|h| h.join(".config")))?;
    Some(config.join("chat"))
}

/// Compares two tokens in time independent of where they differ.
pub fn matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let diff = a
        .iter()
        .zip(b)
        .fold(a.len() ^ b.len(), |acc, (x, y)| acc | usize::from(x ^ y));
    diff == 0
}

fn non_empty(t: &str) -> Result<String, TokenError> {
    if t.is_empty() {
        Err(TokenError::Empty)
    } else {
        Ok(t.to_string())
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_file(path: &Path) -> Result<String, TokenError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    non_empty(text.trim())
}

/// Writes a new random token to a temporary file and links it into place, so a reader
/// never sees a half-written file and two brokers starting at once agree on one token.
fn create_file(path: &Path) -> Result<String, TokenError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let token = random_token().map_err(io_err(Path::new("/dev/urandom")))?;
    let tmp = dir.join(format!(".link-token.{}", std::process::id()));
    {
        let mut f = open_private(&tmp).map_err(io_err(&tmp))?;
        f.write_all(format!("{token}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err(&tmp))?;
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(token),
        // Someone else created it meanwhile: theirs is the token.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_file(path),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn open_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// 32 random bytes from the kernel, as hex.
fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("netkit-token-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir.join("sub").join("link-token")
    }

    #[test]
    fn the_broker_creates_a_private_random_token_once() {
        let path = scratch("create");
        let src = TokenSource::File(path.clone());
        assert!(
            matches!(src.read(), Err(TokenError::Io { .. })),
            "no file yet"
        );
        let t1 = src.read_or_create().unwrap();
        assert_eq!(t1.len(), 64);
        assert!(t1.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the owner may read the token");
        assert_eq!(
            src.read_or_create().unwrap(),
            t1,
            "an existing file is kept"
        );
        assert_eq!(src.read().unwrap(), t1, "a server reads the same token");
        let other = TokenSource::File(scratch("other"))
            .read_or_create()
            .unwrap();
        assert_ne!(other, t1, "tokens are random");
    }

    #[test]
    fn literal_tokens_win_and_empty_ones_are_refused() {
        let src = TokenSource::from_flags(Some(" s3cret \n".into()), Some("/nonexistent".into()));
        assert_eq!(src.unwrap().read().unwrap(), "s3cret");
        assert!(matches!(
            TokenSource::Literal("  ".into()).read(),
            Err(TokenError::Empty)
        ));
        let path = scratch("empty");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "\n").unwrap();
        assert!(matches!(
            TokenSource::File(path).read(),
            Err(TokenError::Empty)
        ));
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(matches("abc", "abc"));
        assert!(!matches("abc", "abd"));
        assert!(!matches("abc", "ab"));
        assert!(!matches("abc", "abcd"));
        assert!(!matches("abc", ""));
    }
}
