//! `GET /v1/audit`: the audit log, newest first — who started, completed or was denied an
//! authorization, every refresh and its outcome, re-authorizations, revocations, API tokens,
//! accounts and apps created or removed. Never a secret.
//!
//! Query: `account` (an account id), `action` (`refresh.failed`, ...), `before` (the `next_before`
//! of the previous page), `limit` (1 to 500, default 100). Scope `admin`; a token bound to accounts
//! sees only those accounts' entries (not even server-wide ones, such as token creation), and
//! asking for another account answers 404, as everywhere else.
//!
//! Non-goal: writing entries; the layers that act write them (flows, token manager, account
//! service, the token routes).
//!
//! Key decision: the handler only needs the [`Store`] (a `FromRef` substate of the application
//! state), so its tests run it over a bare store, without the services.

use crate::auth::{Authorized, Caller, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRef, State};
use chrono::{DateTime, Utc};
use postern_store::{AccountId, AuditAction, AuditEntry, AuditId, AuditOutcome, AuditQuery, Store};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

pub(super) fn router() -> OpenApiRouter<AppState> {
    routes()
}

/// The routes over any state that holds a [`Store`].
fn routes<S>() -> OpenApiRouter<S>
where
    Store: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(list))
}

impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Store {
        state.store.clone()
    }
}

/// The query string, as sent.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    /// Only this account's entries (404 for an account the token may not see).
    account: Option<String>,
    /// Only entries of this action, e.g. `refresh.failed`.
    #[param(schema_with = action_names)]
    action: Option<String>,
    /// The `next_before` of the previous page.
    #[param(minimum = 1)]
    before: Option<i64>,
    /// Entries per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

fn action_names() -> Schema {
    crate::openapi::one_of(AuditAction::ALL.iter().map(|action| action.as_str()))
}

fn outcome_names() -> Schema {
    crate::openapi::one_of(AuditOutcome::ALL.iter().map(|outcome| outcome.as_str()))
}

/// One entry as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
struct EntryView {
    id: i64,
    at: DateTime<Utc>,
    account_id: Option<String>,
    app_id: Option<String>,
    /// Who acted: an API token's name, `system`, or the browser of an OAuth consent.
    actor: String,
    #[schema(schema_with = action_names)]
    action: &'static str,
    #[schema(schema_with = outcome_names)]
    outcome: &'static str,
    /// What happened, in words; never a secret.
    detail: String,
}

impl From<AuditEntry> for EntryView {
    fn from(entry: AuditEntry) -> Self {
        Self {
            id: entry.id.0,
            at: entry.at,
            account_id: entry.account_id.map(String::from),
            app_id: entry.app_id.map(String::from),
            actor: entry.actor,
            action: entry.action.as_str(),
            outcome: entry.outcome.as_str(),
            detail: entry.detail,
        }
    }
}

/// A page of entries; `next_before` is the `before` of the next page, absent on the last one.
#[derive(Debug, Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<EntryView>,
    next_before: Option<i64>,
}

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "list_audit_entries",
    tag = "audit",
    security(("bearer" = ["admin"])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries.", body = AuditPage),
        (status = 400, description = "A wrong limit, `before` or action.", body = ErrorBody),
        (status = 404, description = "An account the token may not see, or no such account id.", body = ErrorBody),
    )
)]
async fn list(
    caller: Authorized<needs::Admin>,
    State(store): State<Store>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let query = audit_query(&caller, params)?;
    let limit = query.limit;
    let entries = store.audit().list(query).await?;
    let full_page = entries.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let next_before = full_page.then(|| entries.last().map(|e| e.id.0)).flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(EntryView::from).collect(),
        next_before,
    }))
}

/// The store query for `params`, checked, restricted to what `caller` may see.
fn audit_query(caller: &Caller, params: AuditParams) -> Result<AuditQuery, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let before = match params.before {
        Some(id) if id < 1 => return Err(ApiError::bad_request("before must be a positive id")),
        before => before.map(AuditId),
    };
    let action = params.action.as_deref().map(parse_action).transpose()?;
    let account_id = params
        .account
        .as_deref()
        .map(|id| visible_account(caller, id))
        .transpose()?;
    let visible_accounts = caller.token.account_ids.as_ref().map(|ids| {
        ids.iter()
            .filter_map(|id| id.parse::<AccountId>().ok())
            .collect()
    });
    Ok(AuditQuery {
        account_id,
        visible_accounts,
        action,
        before,
        limit,
    })
}

fn parse_action(text: &str) -> Result<AuditAction, ApiError> {
    text.parse().map_err(|_| {
        let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        ApiError::bad_request(format!(
            "unknown action {text:?}; one of: {}",
            known.join(", ")
        ))
    })
}

/// The account id, or 404 when it is malformed or not the caller's to see (ids do not leak).
fn visible_account(caller: &Caller, id: &str) -> Result<AccountId, ApiError> {
    let not_found = || ApiError::not_found(format!("account {id} not found"));
    if !caller.can_see(id) {
        return Err(not_found());
    }
    id.parse().map_err(|_| not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_token::Scope;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use postern_store::{ApiToken, ApiTokenId, AuditOutcome, NewAuditEntry};
    use tower::ServiceExt as _;

    fn caller(scopes: Vec<Scope>, account_ids: Option<Vec<String>>) -> Caller {
        Caller {
            token: ApiToken {
                id: ApiTokenId::generate(),
                name: "test-token".to_owned(),
                scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                account_ids,
                created_at: Utc::now(),
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            },
            scopes,
        }
    }

    /// The routes over `store`, every request made by `caller` (as the token middleware would).
    fn app(store: Store, caller: Caller) -> Router {
        Router::from(routes::<Store>())
            .layer(axum::middleware::map_request(
                move |mut request: Request<Body>| {
                    let caller = caller.clone();
                    async move {
                        request.extensions_mut().insert(caller);
                        request
                    }
                },
            ))
            .with_state(store)
    }

    async fn get_json(app: Router, uri: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn store_with_entries() -> (tempfile::TempDir, Store, AccountId, AccountId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("postern.db"))
            .await
            .unwrap();
        let (a, b) = (AccountId::generate(), AccountId::generate());
        let record = |entry: NewAuditEntry| {
            let store = store.clone();
            async move { store.audit().record(entry).await.unwrap() }
        };
        let ok = |action| NewAuditEntry::new("system", action, AuditOutcome::Ok);
        record(ok(AuditAction::AuthorizeStarted).with_account(&a)).await;
        record(ok(AuditAction::RefreshOk).with_account(&b)).await;
        record(ok(AuditAction::TokenCreated).with_detail("token ci")).await;
        record(
            NewAuditEntry::new("system", AuditAction::RefreshFailed, AuditOutcome::Failed)
                .with_account(&a)
                .with_detail("invalid_grant"),
        )
        .await;
        (dir, store, a, b)
    }

    fn actions(body: &serde_json::Value) -> Vec<&str> {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["action"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_admin_pages_through_everything_newest_first() {
        let (_dir, store, a, _) = store_with_entries().await;
        let admin = caller(vec![Scope::Admin], None);
        let (status, page) = get_json(app(store.clone(), admin.clone()), "/audit?limit=3").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            actions(&page),
            ["refresh.failed", "token.created", "refresh.ok"]
        );
        let first = &page["entries"][0];
        assert_eq!(first["account_id"], a.as_str());
        assert_eq!(first["outcome"], "failed");
        assert_eq!(first["actor"], "system");
        assert_eq!(first["detail"], "invalid_grant");
        let next = page["next_before"].as_i64().unwrap();

        let uri = format!("/audit?limit=3&before={next}");
        let (_, last) = get_json(app(store.clone(), admin.clone()), &uri).await;
        assert_eq!(actions(&last), ["authorize.started"]);
        assert!(last["next_before"].is_null());

        let uri = format!("/audit?account={a}&action=refresh.failed");
        let (_, filtered) = get_json(app(store, admin), &uri).await;
        assert_eq!(actions(&filtered), ["refresh.failed"]);
    }

    #[tokio::test]
    async fn a_bound_token_sees_only_its_accounts_and_404s_on_others() {
        let (_dir, store, a, b) = store_with_entries().await;
        let bound = caller(vec![Scope::Admin], Some(vec![b.to_string()]));
        let (status, page) = get_json(app(store.clone(), bound.clone()), "/audit").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(actions(&page), ["refresh.ok"]);
        let (status, body) = get_json(app(store, bound), &format!("/audit?account={a}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn bad_queries_and_missing_scopes_are_refused() {
        let (_dir, store, _, _) = store_with_entries().await;
        let admin = caller(vec![Scope::Admin], None);
        for uri in [
            "/audit?limit=0",
            "/audit?limit=501",
            "/audit?before=0",
            "/audit?action=refresh.maybe",
        ] {
            let (status, body) = get_json(app(store.clone(), admin.clone()), uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        }
        let (status, _) = get_json(app(store.clone(), admin), "/audit?account=nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let reader = caller(vec![Scope::AccountsRead], None);
        let (status, body) = get_json(app(store, reader), "/audit").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], "forbidden");
    }
}
