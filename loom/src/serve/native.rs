//! Loom's own API: runs in the background with resumable event streams, approvals, sessions,
//! health.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse as _, Response};
use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::body;
use super::error::ApiError;
use super::openai::SESSION_HEADER;
use super::openai::request::{ChatContent, Str, to_content};
use super::runs::{RunEntry, Status, events};
use super::target::{Job, JobInput, Overrides};
use crate::governance::{Approval, ApprovalRequest};
use crate::id::{RunId, SessionId, UserId};

/// The header an event stream is resumed with: only events with a later id are sent.
const LAST_EVENT_ID: &str = "last-event-id";

type Answer = Result<Response, ApiError>;

fn respond(answer: Answer) -> Response {
    answer.unwrap_or_else(|e| e.into_response())
}

/// A run id of the path; anything else is a run that does not exist.
fn run_id(s: &str) -> Result<RunId, ApiError> {
    s.parse().map_err(|_| ApiError::not_found(format!("no run `{s}`")))
}

fn session_id(s: &str, param: &'static str) -> Result<SessionId, ApiError> {
    SessionId::new(s).map_err(|e| ApiError::invalid_param(param, format!("not a session id: {e}")))
}

/// The session a request names: its body's, else the `x-loom-session` header's.
fn session_of(body: Option<&str>, headers: &HeaderMap) -> Result<Option<SessionId>, ApiError> {
    if let Some(s) = body {
        return session_id(s, "session").map(Some);
    }
    match headers.get(SESSION_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| SessionId::new(s).ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("the `{SESSION_HEADER}` header is not a session id"))),
    }
}

fn accepted(entry: &RunEntry) -> Response {
    let mut response = body::json_bytes(StatusCode::ACCEPTED, entry.view());
    if let Ok(location) = HeaderValue::from_str(&format!("/runs/{}", entry.id)) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// `POST /runs`.
#[derive(Deserialize)]
struct StartRun<'a> {
    #[serde(borrow, default, alias = "target", alias = "agent")]
    model: Option<Str<'a>>,
    #[serde(borrow, default)]
    input: Option<ChatContent<'a>>,
    #[serde(borrow, default)]
    session: Option<Str<'a>>,
    #[serde(borrow, default)]
    user: Option<Str<'a>>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /runs`: starts a run in the background; answers 202 with the run at once.
pub(crate) async fn start_run(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    respond(start_run_inner(&shared, request).await)
}

async fn start_run_inner(shared: &Arc<Shared>, request: Request) -> Answer {
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    let (parts, body) = request.into_parts();
    let identity = shared.auth.identify(&parts.headers).await?;
    let bytes = body::read(&parts.headers, body, shared.max_body).await?;
    let req: StartRun<'_> = body::parse(&bytes)?;
    let user = identity.resolve(req.user.as_deref())?;
    let Some(model) = req.model.as_deref() else {
        return Err(ApiError::invalid_param("model", "`model` is required: one of the names in `GET /v1/models`"));
    };
    let (name, target) = shared.target(model).ok_or_else(|| ApiError::unknown_model(model, &shared.names))?;
    let input = to_content(req.input.as_ref(), &|| "input".to_owned())?;
    if input.is_empty() {
        return Err(ApiError::invalid_param("input", "`input` is required: the user message to run on"));
    }
    let session = session_of(req.session.as_deref(), &parts.headers)?;
    let id = RunId::generate();
    let entry = Arc::new(RunEntry::new(
        id,
        user.clone(),
        Arc::clone(name),
        session.clone(),
        Status::Running,
        shared.runs.buffer,
    ));
    shared.runs.insert(Arc::clone(&entry))?;
    let job = Job {
        input: JobInput::Message { text: input, history: Vec::new() },
        user,
        session,
        metadata: req.metadata.map(|m| m.into_iter().collect()).unwrap_or_default(),
        overrides: Overrides::default(),
        run_id: id,
    };
    shared.runs.launch(Arc::clone(&entry), Arc::clone(target), job);
    Ok(accepted(&entry))
}

/// `GET /runs`: the caller's runs the server keeps, oldest first.
pub(crate) async fn list_runs(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let headers = request.into_parts().0.headers;
    respond(
        async {
            let user = shared.auth.user(&headers).await?;
            let mut out = br#"{"object":"list","data":["#.to_vec();
            for (i, entry) in shared.runs.of_user(&user).iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&entry.view());
            }
            out.extend_from_slice(b"]}");
            Ok(body::json_bytes(StatusCode::OK, out))
        }
        .await,
    )
}

/// `GET /runs/{id}`: where the run stands, its answer or its error.
pub(crate) async fn get_run(State(shared): State<Arc<Shared>>, Path(id): Path<String>, request: Request) -> Response {
    let headers = request.into_parts().0.headers;
    respond(
        async {
            let user = shared.auth.user(&headers).await?;
            let id = run_id(&id)?;
            let entry = shared.runs.get(&user, id).ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
            Ok(body::json_bytes(StatusCode::OK, entry.view()))
        }
        .await,
    )
}

/// `GET /runs/{id}/events`: the run's events as SSE, each with its `id:`; with
/// `Last-Event-ID`, only the later ones.
pub(crate) async fn run_events(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.into_parts().0.headers;
    respond(
        async {
            let user = shared.auth.user(&headers).await?;
            let id = run_id(&id)?;
            let entry = shared.runs.get(&user, id).ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
            let after = match headers.get(LAST_EVENT_ID) {
                None => 0,
                Some(v) => v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(|| {
                    ApiError::bad_request("`Last-Event-ID` is not an event id (a number this server sent as `id:`)")
                })?,
            };
            Ok(body::event_stream(Body::from_stream(events(entry, after))))
        }
        .await,
    )
}

/// A reviewer's decision, as sent: `{"decision": "allow" | "allow_always" | "deny" |
/// "deny_always" | "edit", "reason": .., "arguments": ..}`.
#[derive(Deserialize)]
struct Decision {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    /// The corrected arguments of `edit`: JSON text, or a JSON object.
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

impl Decision {
    fn approval(self, param: &str) -> Result<Approval, ApiError> {
        let reason = || self.reason.clone().unwrap_or_else(|| "denied by the reviewer".to_owned());
        Ok(match self.decision.as_str() {
            "allow" => Approval::Allow,
            "allow_always" => Approval::AllowAlways,
            "deny" => Approval::deny(reason()),
            "deny_always" => Approval::DenyAlways { reason: reason() },
            "edit" => match self.arguments {
                Some(serde_json::Value::String(text)) => Approval::edit(text),
                Some(value @ serde_json::Value::Object(_)) => Approval::edit(value.to_string()),
                _ => {
                    return Err(ApiError::invalid_param(
                        format!("{param}arguments"),
                        "an `edit` needs the corrected `arguments` (a JSON object, or its text)",
                    ));
                }
            },
            other => {
                return Err(ApiError::invalid_param(
                    format!("{param}decision"),
                    format!("unknown decision `{other}`; expected allow, allow_always, deny, deny_always or edit"),
                ));
            }
        })
    }
}

/// `POST /runs/{id}/resume`.
#[derive(Deserialize)]
struct ResumeRun<'a> {
    #[serde(borrow, default, alias = "target", alias = "agent")]
    model: Option<Str<'a>>,
    #[serde(borrow, default)]
    session: Option<Str<'a>>,
    /// Decisions by call id.
    #[serde(default)]
    decisions: Option<HashMap<String, Decision>>,
}

/// `POST /runs/{id}/resume`: resumes a paused or interrupted journaled run in the background,
/// with decisions for the calls it waits on.
pub(crate) async fn resume_run(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    respond(resume_run_inner(&shared, &id, request).await)
}

async fn resume_run_inner(shared: &Arc<Shared>, id: &str, request: Request) -> Answer {
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    let (parts, body) = request.into_parts();
    let user = shared.auth.user(&parts.headers).await?;
    let id = run_id(id)?;
    let bytes = body::read(&parts.headers, body, shared.max_body).await?;
    let req: ResumeRun<'_> = if bytes.iter().all(u8::is_ascii_whitespace) {
        ResumeRun { model: None, session: None, decisions: None }
    } else {
        body::parse(&bytes)?
    };
    let mut decisions = Vec::new();
    for (call, decision) in req.decisions.unwrap_or_default() {
        let approval = decision.approval(&format!("decisions.{call}."))?;
        decisions.push((call, approval));
    }
    let known = shared.runs.get(&user, id);
    let model = match (&known, req.model.as_deref()) {
        (_, Some(model)) => model.to_owned(),
        (Some(entry), None) => entry.target.to_string(),
        (None, None) => {
            return Err(ApiError::not_found(format!(
                "no run {id} on this server; to resume a run started elsewhere, name its `model` and `session`"
            )));
        }
    };
    let session = match (&known, session_of(req.session.as_deref(), &parts.headers)?) {
        (_, Some(session)) => Some(session),
        (Some(entry), None) => entry.session.clone(),
        (None, None) => None,
    };
    resume(shared, user, id, &model, session, decisions, known)
}

/// Resumes run `id` of `user` on the target named `model` in the background.
fn resume(
    shared: &Arc<Shared>,
    user: UserId,
    id: RunId,
    model: &str,
    session: Option<SessionId>,
    decisions: Vec<(String, Approval)>,
    known: Option<Arc<RunEntry>>,
) -> Answer {
    let (name, target) = shared.target(model).ok_or_else(|| ApiError::unknown_model(model, &shared.names))?;
    if !target.journaled() {
        return Err(ApiError::conflict(
            "not_resumable",
            format!("`{name}` keeps no journal, so its runs cannot be resumed; give it a store"),
        ));
    }
    let Some(session) = session else {
        return Err(ApiError::invalid_param("session", "a run is resumed in the session it ran in: name `session`"));
    };
    let entry = match known {
        Some(entry) => {
            entry.begin()?;
            entry
        }
        None => {
            let entry = Arc::new(RunEntry::new(
                id,
                user.clone(),
                Arc::clone(name),
                Some(session.clone()),
                Status::Running,
                shared.runs.buffer,
            ));
            shared.runs.insert(Arc::clone(&entry))?;
            entry
        }
    };
    let job = Job {
        input: JobInput::Resume { run: id, decisions },
        user,
        session: Some(session),
        metadata: Vec::new(),
        overrides: Overrides::default(),
        run_id: id,
    };
    shared.runs.launch(Arc::clone(&entry), Arc::clone(target), job);
    Ok(accepted(&entry))
}

/// One call waiting for a decision, as listed.
#[derive(Serialize)]
struct ApprovalView<'a> {
    object: &'static str,
    model: &'a str,
    run_id: RunId,
    call_id: &'a str,
    tool: &'a str,
    /// The arguments the model wrote (JSON text).
    arguments: &'a str,
    reason: &'a str,
    session: Option<&'a SessionId>,
}

/// The calls of `user`'s runs that wait for a decision, each once, with the name of the
/// target that runs it: the one that started it here, else the first that lists it.
async fn pending(shared: &Shared, user: &UserId) -> Result<Vec<(Arc<str>, ApprovalRequest)>, ApiError> {
    let mut out: Vec<(Arc<str>, ApprovalRequest)> = Vec::new();
    let mut seen = HashSet::new();
    for (name, target) in &shared.list {
        for request in target.pending(user).await.map_err(|e| ApiError::from_run(&e))? {
            if !seen.insert((request.run_id, request.call_id.clone())) {
                continue;
            }
            let name = match shared.runs.get(user, request.run_id) {
                Some(entry) => Arc::clone(&entry.target),
                None => Arc::clone(name),
            };
            out.push((name, request));
        }
    }
    Ok(out)
}

/// `GET /approvals`: the caller's calls waiting for a decision.
pub(crate) async fn list_approvals(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let headers = request.into_parts().0.headers;
    respond(
        async {
            let user = shared.auth.user(&headers).await?;
            let pending = pending(&shared, &user).await?;
            let data: Vec<ApprovalView<'_>> = pending
                .iter()
                .map(|(model, r)| ApprovalView {
                    object: "approval",
                    model,
                    run_id: r.run_id,
                    call_id: &r.call_id,
                    tool: &r.tool,
                    arguments: &r.arguments,
                    reason: &r.reason,
                    session: r.session.as_ref(),
                })
                .collect();
            Ok(body::json(StatusCode::OK, &List { object: "list", data }))
        }
        .await,
    )
}

/// `POST /approvals/{run}/{call}`: decides one waiting call, and resumes its run in the
/// background with the decision.
pub(crate) async fn decide(
    State(shared): State<Arc<Shared>>,
    Path((run, call)): Path<(String, String)>,
    request: Request,
) -> Response {
    respond(decide_inner(&shared, &run, &call, request).await)
}

async fn decide_inner(shared: &Arc<Shared>, run: &str, call: &str, request: Request) -> Answer {
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    let (parts, body) = request.into_parts();
    let user = shared.auth.user(&parts.headers).await?;
    let id = run_id(run)?;
    let bytes = body::read(&parts.headers, body, shared.max_body).await?;
    let decision: Decision = body::parse(&bytes)?;
    let approval = decision.approval("")?;
    let found = pending(shared, &user).await?.into_iter().find(|(_, r)| r.run_id == id && r.call_id == call);
    let Some((model, request)) = found else {
        return Err(ApiError::not_found(format!("no call `{call}` of run {id} waits for a decision")));
    };
    let known = shared.runs.get(&user, id);
    resume(shared, user, id, &model, request.session, vec![(call.to_owned(), approval)], known)
}

#[derive(Serialize)]
struct List<T> {
    object: &'static str,
    data: Vec<T>,
}

#[derive(Serialize)]
struct SessionRef<'a> {
    id: &'a SessionId,
    object: &'static str,
}

/// `GET /sessions`: the caller's sessions, in every store of the served agents.
pub(crate) async fn list_sessions(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let headers = request.into_parts().0.headers;
    respond(
        async {
            let user = shared.auth.user(&headers).await?;
            let mut all = Vec::new();
            for store in &shared.stores {
                all.extend(store.sessions(&user).await.map_err(|e| ApiError::from_run(&e.into()))?);
            }
            all.sort();
            all.dedup();
            let data = all.iter().map(|id| SessionRef { id, object: "session" }).collect();
            Ok(body::json(StatusCode::OK, &List { object: "list", data }))
        }
        .await,
    )
}

#[derive(Serialize)]
struct SessionView<'a> {
    id: &'a SessionId,
    object: &'static str,
    messages: &'a [crate::model::Message],
}

/// `GET /sessions/{id}`: the caller's session, its messages oldest first.
pub(crate) async fn get_session(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.into_parts().0.headers;
    respond(
        async {
            let user = shared.auth.user(&headers).await?;
            let id = SessionId::new(&id).map_err(|_| ApiError::not_found(format!("no session `{id}`")))?;
            for store in &shared.stores {
                let messages = store.load(&user, &id, None).await.map_err(|e| ApiError::from_run(&e.into()))?;
                if !messages.is_empty() {
                    return Ok(body::json(
                        StatusCode::OK,
                        &SessionView { id: &id, object: "session", messages: &messages },
                    ));
                }
            }
            Err(ApiError::not_found(format!("no session `{id}`")))
        }
        .await,
    )
}

#[derive(Serialize)]
struct Deleted<'a> {
    id: &'a SessionId,
    object: &'static str,
    deleted: bool,
}

/// `DELETE /sessions/{id}`: erases the caller's session (history, runs, journal) everywhere.
pub(crate) async fn delete_session(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.into_parts().0.headers;
    respond(
        async {
            let user = shared.auth.user(&headers).await?;
            let id = SessionId::new(&id).map_err(|_| ApiError::not_found(format!("no session `{id}`")))?;
            let forgotten = shared.runs.forget_session(&user, &id).map_err(|_| {
                ApiError::conflict(
                    "run_in_progress",
                    format!("session `{id}` has a run going: delete it once it has ended"),
                )
            })?;
            let mut any = forgotten > 0;
            for store in &shared.stores {
                any |= store.clear(&user, &id).await.map_err(|e| ApiError::from_run(&e.into()))?;
            }
            if !any {
                return Err(ApiError::not_found(format!("no session `{id}`")));
            }
            Ok(body::json(StatusCode::OK, &Deleted { id: &id, object: "session.deleted", deleted: true }))
        }
        .await,
    )
}

/// `GET /health`: 200 while serving, 503 while shutting down. Not authenticated.
pub(crate) async fn health(State(shared): State<Arc<Shared>>) -> Response {
    #[derive(Serialize)]
    struct Health {
        status: &'static str,
        models: usize,
        runs_in_progress: usize,
    }
    let (status, word) =
        if shared.is_draining() { (StatusCode::SERVICE_UNAVAILABLE, "draining") } else { (StatusCode::OK, "ok") };
    body::json(status, &Health { status: word, models: shared.names.len(), runs_in_progress: shared.runs.running() })
}

/// Any other path.
pub(crate) async fn not_found(request: Request) -> Response {
    ApiError::not_found(format!("no route {} {}", request.method(), request.uri().path())).into_response()
}
