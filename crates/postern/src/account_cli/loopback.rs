//! The loopback listener that takes the browser's return from the provider when the command line
//! connects an OAuth2 account (RFC 8252 §7.3: native apps receive the redirect on a loopback port).
//!
//! Non-goal: serving anything else. Any other path or method gets a 404.
//!
//! Key decision: the listener finishes the authorization itself and tells the browser the result.
//! A return whose `state` this data dir never issued ends nothing: it gets a 400 and the wait goes
//! on. That return could come from another local program or a stale tab, and only the link Postern
//! issued may finish the flow.

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use postern_accounts::{AccountService, ServiceError};
use postern_auth::flows::{Callback, FlowError};
use postern_store::Account;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use url::{Host, Url};

/// A listener bound to the host, port and path of a loopback redirect URI.
pub struct Loopback {
    listener: TcpListener,
    path: String,
}

/// What binding a redirect URI's address gave.
pub enum Bound {
    /// This process listens there now.
    Listening(Loopback),
    /// Something else listens there already (a running Postern server, most likely).
    Busy(SocketAddr),
    /// The URI is not a plain-HTTP loopback address; this machine cannot receive it.
    NotLoopback,
}

impl Loopback {
    /// Binds the address of `redirect` when it is `http://` on a loopback host.
    pub async fn bind(redirect: &Url) -> anyhow::Result<Bound> {
        let Some(address) = loopback_address(redirect) else {
            return Ok(Bound::NotLoopback);
        };
        match TcpListener::bind(address).await {
            Ok(listener) => Ok(Bound::Listening(Loopback {
                listener,
                path: redirect.path().to_owned(),
            })),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Ok(Bound::Busy(address)),
            Err(error) => Err(error).with_context(|| {
                format!(
                    "cannot listen on {address} for the browser's return to {redirect}; \
                     register a redirect URI with a port above 1024, e.g. http://127.0.0.1:8400/callback"
                )
            }),
        }
    }

    /// The address actually bound (its port differs from the URI's when that asked for port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The URL the browser comes back to, with the port actually bound.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(format!("http://{}{}", self.local_addr()?, self.path))
    }

    /// Serves until the browser brings back this data dir's authorization, finishes it through
    /// `service` and returns the account (connected) or why it could not be connected.
    pub async fn receive(self, service: AccountService) -> anyhow::Result<Account> {
        let (done, mut finished) = mpsc::channel(1);
        let receiver = Arc::new(Receiver {
            service,
            path: self.path,
            done,
        });
        let router = Router::new().fallback(handle).with_state(receiver);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(self.listener, router).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let server = tokio::spawn(server.into_future());
        let outcome = finished.recv().await;
        // Let the page with the outcome reach the browser before the listener goes away.
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        match outcome {
            Some(Ok(account)) => Ok(account),
            Some(Err(error)) => Err(error.into()),
            None => bail!("the loopback listener stopped before the browser came back"),
        }
    }
}

struct Receiver {
    service: AccountService,
    path: String,
    done: mpsc::Sender<Result<Account, ServiceError>>,
}

async fn handle(
    State(receiver): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
) -> (StatusCode, String) {
    if method != Method::GET || uri.path() != receiver.path {
        return (StatusCode::NOT_FOUND, "Not found.\n".to_owned());
    }
    let callback = callback_from_query(uri.query().unwrap_or_default());
    match receiver.service.complete_authorization(callback).await {
        Ok(account) => {
            let page = format!(
                "{} is connected to Postern. You can close this window.\n",
                account.email
            );
            let _ = receiver.done.try_send(Ok(account));
            (StatusCode::OK, page)
        }
        Err(error) if !concerns_this_flow(&error) => {
            tracing::warn!(%error, "ignored a request to the loopback listener");
            (StatusCode::BAD_REQUEST, format!("{error}\n"))
        }
        Err(error) => {
            let page = format!("The account could not be connected: {error}\n");
            let _ = receiver.done.try_send(Err(error));
            (StatusCode::BAD_REQUEST, page)
        }
    }
}

/// Whether a failed completion used up the state this flow issued. Errors found before the state
/// was taken do not, and must not end the wait.
fn concerns_this_flow(error: &ServiceError) -> bool {
    !matches!(
        error,
        ServiceError::Flow(
            FlowError::UnknownState
                | FlowError::ReplayedState
                | FlowError::MissingParameter("state")
        )
    )
}

fn callback_from_query(query: &str) -> Callback {
    let mut callback = Callback::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "state" => &mut callback.state,
            "code" => &mut callback.code,
            "error" => &mut callback.error,
            "error_description" => &mut callback.error_description,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    callback
}

/// The socket address of an `http://` URI on a loopback host (`localhost` is 127.0.0.1).
fn loopback_address(redirect: &Url) -> Option<SocketAddr> {
    if redirect.scheme() != "http" {
        return None;
    }
    let ip: IpAddr = match redirect.host()? {
        Host::Ipv4(ip) => ip.into(),
        Host::Ipv6(ip) => ip.into(),
        Host::Domain(name) if name.eq_ignore_ascii_case("localhost") => Ipv4Addr::LOCALHOST.into(),
        Host::Domain(_) => return None,
    };
    let port = redirect.port_or_known_default()?;
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_on_loopback_hosts_is_received_here() {
        let address = |uri: &str| loopback_address(&Url::parse(uri).unwrap());
        assert_eq!(
            address("http://127.0.0.1:8400/cb"),
            Some("127.0.0.1:8400".parse().unwrap())
        );
        assert_eq!(
            address("http://localhost:7080/oauth/callback"),
            Some("127.0.0.1:7080".parse().unwrap())
        );
        assert_eq!(address("http://[::1]:9/"), Some("[::1]:9".parse().unwrap()));
        assert_eq!(address("https://127.0.0.1:8400/cb"), None);
        assert_eq!(address("http://postern.example.com/oauth/callback"), None);
        assert_eq!(address("http://10.0.0.1:8400/cb"), None);
    }

    #[test]
    fn the_callback_query_is_decoded() {
        let callback = callback_from_query("code=a%2Fb&state=s&error_description=x+y&other=1");
        assert_eq!(callback.code.as_deref(), Some("a/b"));
        assert_eq!(callback.state.as_deref(), Some("s"));
        assert_eq!(callback.error_description.as_deref(), Some("x y"));
        assert_eq!(callback.error, None);
    }

    #[test]
    fn only_errors_before_the_state_was_taken_leave_the_wait_running() {
        let flow = |error| concerns_this_flow(&ServiceError::Flow(error));
        assert!(!flow(FlowError::UnknownState));
        assert!(!flow(FlowError::ReplayedState));
        assert!(!flow(FlowError::MissingParameter("state")));
        assert!(flow(FlowError::MissingParameter("code")));
        assert!(flow(FlowError::ExpiredState));
    }
}
