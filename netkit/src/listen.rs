//! The value of a listener flag that can be turned off (`--text-listen`, `--tls-listen`,
//! `--metrics-listen`): an address or `off`. Shared by the broker's and the server's flags.

use std::net::SocketAddr;

/// An address to listen on, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Listen on this address.
    On(SocketAddr),
    /// No such listener.
    Off,
}

impl Listen {
    /// The address, if on.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::On(a) => Some(a),
            Listen::Off => None,
        }
    }
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        s.parse()
            .map(Listen::On)
            .map_err(|e| format!("expected IP:PORT or 'off': {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::Listen;

    #[test]
    fn an_address_or_off() {
        assert_eq!("OFF".parse(), Ok(Listen::Off));
        let on: Listen = "127.0.0.1:9".parse().expect("an address");
        assert_eq!(on.addr().map(|a| a.port()), Some(9));
        assert!("nowhere".parse::<Listen>().is_err());
    }
}
