//! The DNS and TCP steps, shared by IMAP and SMTP.
//!
//! Non-goal: TLS (see `imap` and `smtp`, which know how their protocol starts it). Key decision: the
//! addresses are tried in the resolver's order, like the system's own clients, and every failed one is
//! kept as evidence, so "IPv6 unreachable, IPv4 fine" shows up as such.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::{HostPort, Steps};
use crate::catalogue::{self, Condition, Observation};
use crate::probe::tls::bare_host;
use crate::report::{Status, Step, StepName};

/// Resolves the host and opens a TCP connection, recording both steps; `None` when either failed.
pub(super) async fn reach(
    steps: &mut Steps,
    server: &HostPort,
    dns: StepName,
    tcp: StepName,
    bound: Duration,
) -> Option<TcpStream> {
    let addresses = resolve(steps, server, dns, bound).await?;
    connect(steps, &addresses, tcp, bound).await
}

async fn resolve(
    steps: &mut Steps,
    server: &HostPort,
    name: StepName,
    bound: Duration,
) -> Option<Vec<SocketAddr>> {
    let started = Instant::now();
    let host = bare_host(&server.host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        let step = Step::new(
            name,
            Status::Pass,
            started.elapsed(),
            format!("{ip} is an address: no lookup needed"),
        );
        steps.push(step);
        return Some(vec![SocketAddr::new(ip, server.port)]);
    }
    let lookup = tokio::time::timeout(bound, tokio::net::lookup_host((host, server.port))).await;
    let failure = match lookup {
        Ok(Ok(addresses)) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if !addresses.is_empty() {
                let listed: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
                steps.push(Step::new(
                    name,
                    Status::Pass,
                    started.elapsed(),
                    format!("{host} resolves to {}", listed.join(", ")),
                ));
                return Some(addresses);
            }
            "no address".to_owned()
        }
        Ok(Err(error)) => error.to_string(),
        Err(_elapsed) => format!("the lookup took longer than {bound:?}"),
    };
    let step = Step::new(
        name,
        Status::Fail,
        started.elapsed(),
        format!("{host} does not resolve"),
    )
    .with_evidence(failure)
    .explained_by(catalogue::explain(&Observation::Condition(
        Condition::HostNotFound,
    )));
    steps.push(step);
    None
}

async fn connect(
    steps: &mut Steps,
    addresses: &[SocketAddr],
    name: StepName,
    bound: Duration,
) -> Option<TcpStream> {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut condition = None;
    for address in addresses {
        match tokio::time::timeout(bound, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                // Small request/response exchanges: do not let Nagle delay them.
                let _ = stream.set_nodelay(true);
                let step = Step::new(
                    name,
                    Status::Pass,
                    started.elapsed(),
                    format!("connected to {address}"),
                )
                .with_evidence_lines(failures);
                steps.push(step);
                return Some(stream);
            }
            Ok(Err(error)) => {
                condition = catalogue::io_condition(error.kind()).or(condition);
                failures.push(format!("{address}: {error}"));
            }
            Err(_elapsed) => {
                condition = Some(Condition::ConnectTimeout);
                failures.push(format!("{address}: no answer within {bound:?}"));
            }
        }
    }
    let summary = match condition {
        Some(Condition::ConnectionRefused) => "connection refused: nothing listens on this port",
        Some(Condition::ConnectTimeout) => "the connection timed out",
        Some(Condition::NetworkUnreachable) => "the network is unreachable",
        _ => "cannot connect",
    };
    let entry =
        condition.and_then(|condition| catalogue::explain(&Observation::Condition(condition)));
    let step = Step::new(name, Status::Fail, started.elapsed(), summary)
        .with_evidence_lines(failures)
        .explained_by(entry);
    steps.push(step);
    None
}
