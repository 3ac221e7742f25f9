//! The mail servers of `postern account add`: `--imap HOST:PORT`, `--smtp HOST:PORT`, their
//! security and CA files.
//!
//! Non-goal: checking the servers; the account service checks the fields and logs in.
//!
//! Key decision: when not given, the security follows the port: STARTTLS for IMAP on 143 and for
//! SMTP on any port but 465, TLS otherwise. It is never `none`: plaintext must be asked for by name.

use super::SecurityArg;
use anyhow::Context;
use clap::Args;
use postern_accounts::EndpointInput;
use postern_store::Security;
use std::path::PathBuf;
use std::str::FromStr;

/// The mail servers, when not the provider preset's.
#[derive(Args)]
pub struct ServerArgs {
    /// The IMAP server [default: the app's provider preset].
    #[arg(long, value_name = "HOST:PORT")]
    imap: Option<HostPort>,
    /// How IMAP is secured [default: starttls on port 143, tls otherwise].
    #[arg(long, value_enum, requires = "imap")]
    imap_security: Option<SecurityArg>,
    /// A PEM file of CA certificates to trust for IMAP instead of the system's.
    #[arg(long, value_name = "FILE", requires = "imap")]
    imap_ca_file: Option<PathBuf>,
    /// The SMTP server [default: the app's provider preset].
    #[arg(long, value_name = "HOST:PORT")]
    smtp: Option<HostPort>,
    /// How SMTP is secured [default: tls on port 465, starttls otherwise].
    #[arg(long, value_enum, requires = "smtp")]
    smtp_security: Option<SecurityArg>,
    /// A PEM file of CA certificates to trust for SMTP instead of the system's.
    #[arg(long, value_name = "FILE", requires = "smtp")]
    smtp_ca_file: Option<PathBuf>,
}

/// `HOST:PORT`, with `[…]` around an IPv6 address.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostPort {
    host: String,
    port: u16,
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("expected HOST:PORT, got {text:?}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port
            .parse()
            .map_err(|_| format!("{port:?} is not a port number"))?;
        if host.is_empty() {
            return Err(format!("expected HOST:PORT, got {text:?}"));
        }
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl ServerArgs {
    pub fn imap(&self) -> anyhow::Result<Option<EndpointInput>> {
        let default = |port| {
            if port == 143 {
                Security::StartTls
            } else {
                Security::Tls
            }
        };
        endpoint(&self.imap, self.imap_security, &self.imap_ca_file, default)
    }

    pub fn smtp(&self) -> anyhow::Result<Option<EndpointInput>> {
        let default = |port| {
            if port == 465 {
                Security::Tls
            } else {
                Security::StartTls
            }
        };
        endpoint(&self.smtp, self.smtp_security, &self.smtp_ca_file, default)
    }
}

/// The endpoint the flags give, its CA file made absolute: the server may run from another
/// directory than this command.
fn endpoint(
    address: &Option<HostPort>,
    security: Option<SecurityArg>,
    ca_file: &Option<PathBuf>,
    default_security: impl Fn(u16) -> Security,
) -> anyhow::Result<Option<EndpointInput>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let ca_file = match ca_file {
        Some(path) => Some(
            std::path::absolute(path)
                .with_context(|| format!("cannot resolve {}", path.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    Ok(Some(EndpointInput {
        host: address.host.clone(),
        port: address.port,
        security: security.map_or_else(|| default_security(address.port), Security::from),
        ca_file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_parsed_with_ipv6_brackets() {
        let parsed: HostPort = "imap.example.com:993".parse().unwrap();
        assert_eq!(
            (parsed.host.as_str(), parsed.port),
            ("imap.example.com", 993)
        );
        let parsed: HostPort = "[::1]:143".parse().unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("::1", 143));
        for bad in ["imap.example.com", ":993", "host:http", "host:70000"] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
    }
}
