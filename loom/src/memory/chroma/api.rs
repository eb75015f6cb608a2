//! Chroma's HTTP API (v2), as the memory uses it: one client, its calls, the records they carry,
//! and the typed errors of each failure.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{StoreError, StoreErrorKind};

pub(crate) const BACKEND: &str = "chroma";

/// The most records one `get` returns (a user's records are read page by page).
const PAGE: usize = 1_000;

/// The most bytes one response may have: a page of records, or a collection's description.
const MAX_BODY_BYTES: usize = 256 << 20;

/// The most bytes of an error body read (the rest is not needed to say what failed).
const MAX_ERROR_BYTES: usize = 64 << 10;

pub(crate) fn error(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError::new(kind, BACKEND, message)
}

/// A record that cannot be read back: corrupt, named by its id.
pub(crate) fn corrupt(what: &str, id: &str, problem: impl std::fmt::Display) -> StoreError {
    error(StoreErrorKind::Corrupt, format!("{what} `{}` is unreadable: {problem}", id.escape_debug()))
}

/// A URL as it may appear in a message: no user name, password or query (any may hold a key).
pub(crate) fn redact(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().trim_end_matches('/').to_owned()
}

/// Whether `name` can go in a URL path and a collection name as it is (Chroma's own rule for
/// names: letters, digits, `.`, `_` and `-`, starting with a letter or digit).
pub(crate) fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A record as read: its id, document and metadata.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) document: Option<String>,
    pub(crate) metadata: Map<String, Value>,
}

/// A record to write: all four of Chroma's columns (it requires an embedding per record).
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub(crate) id: String,
    pub(crate) embedding: Vec<f32>,
    pub(crate) document: String,
    pub(crate) metadata: Map<String, Value>,
}

/// One collection: its name (for messages) and id (for record calls).
#[derive(Debug, Clone)]
pub(crate) struct Collection {
    pub(crate) name: String,
    id: String,
}

/// What `POST .../collections` and `GET .../collections/{name}` answer (other fields ignored).
#[derive(Deserialize)]
struct CollectionInfo {
    id: String,
    name: String,
    #[serde(default)]
    dimension: Option<i64>,
    #[serde(default)]
    configuration_json: Option<Value>,
}

/// What `POST .../get` answers; `documents` and `metadatas` are `null` when not included,
/// and a record without metadata has `null` for it.
#[derive(Deserialize)]
struct GetResponse {
    ids: Vec<String>,
    #[serde(default)]
    documents: Option<Vec<Option<String>>>,
    #[serde(default)]
    metadatas: Option<Vec<Option<Map<String, Value>>>>,
}

/// What `POST .../get` answers with `include: ["embeddings"]`.
#[cfg_attr(not(feature = "rag"), allow(dead_code))]
#[derive(Deserialize)]
struct EmbeddingsResponse {
    ids: Vec<String>,
    #[serde(default)]
    embeddings: Option<Vec<Option<Vec<f32>>>>,
}

/// What `POST .../query` answers: one list per query embedding; distances may be `null`.
#[derive(Deserialize)]
struct QueryResponse {
    ids: Vec<Vec<String>>,
    #[serde(default)]
    distances: Option<Vec<Vec<Option<f64>>>>,
}

/// A client of one Chroma database.
pub(crate) struct Api {
    client: reqwest::Client,
    /// `{url}/api/v2`.
    base: String,
    /// `base`, redacted, for messages.
    shown: String,
    /// `/tenants/{tenant}/databases/{database}`.
    database: String,
    tenant: String,
    database_name: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("url", &self.shown)
            .field("tenant", &self.tenant)
            .field("database", &self.database_name)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// A client of `database` of `tenant` at `url`; checks the URL, not the server.
    pub(crate) fn new(
        url: &str,
        tenant: &str,
        database: &str,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let parsed = match reqwest::Url::parse(url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => u,
            _ => {
                return Err(error(
                    StoreErrorKind::Other,
                    "the Chroma URL must be an http(s) URL, e.g. http://127.0.0.1:8000",
                ));
            }
        };
        for (what, name) in [("tenant", tenant), ("database", database)] {
            if !valid_name(name) {
                return Err(error(
                    StoreErrorKind::Other,
                    format!(
                        "the {what} name `{}` must be letters, digits, `.`, `_` and `-`, starting with a letter or digit",
                        name.escape_debug()
                    ),
                ));
            }
        }
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("loomflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| error(StoreErrorKind::Other, format!("the HTTP client could not be built: {e}")))?;
        let root = parsed.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            client,
            base: format!("{root}/api/v2"),
            shown: format!("{}/api/v2", redact(&parsed)),
            database: format!("/tenants/{tenant}/databases/{database}"),
            tenant: tenant.to_owned(),
            database_name: database.to_owned(),
        })
    }

    /// Sends a request and returns the status and body, whatever the status; a request that
    /// got no answer is [`Unavailable`](StoreErrorKind::Unavailable).
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>), StoreError> {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|e| error(StoreErrorKind::Other, e.to_string()))?;
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes);
        }
        let mut response = request.send().await.map_err(|e| self.transport(&method, path, e))?;
        let status = response.status().as_u16();
        let limit = if response.status().is_success() { MAX_BODY_BYTES } else { MAX_ERROR_BYTES };
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&method, path, e))? {
            if bytes.len() + chunk.len() > limit {
                if status < 300 {
                    return Err(error(
                        StoreErrorKind::Other,
                        format!("{method} {}{path}: the answer is larger than {limit} bytes", self.shown),
                    ));
                }
                bytes.extend_from_slice(&chunk[..limit - bytes.len()]);
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
    }

    /// Sends a request and returns the successful answer, or the typed error of a failed one.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, StoreError> {
        let (status, bytes) = self.send(method.clone(), path, body).await?;
        if !(200..300).contains(&status) {
            return Err(self.status(&method, path, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            error(StoreErrorKind::Other, format!("{method} {}{path}: the answer could not be read: {e}", self.shown))
        })
    }

    fn transport(&self, method: &Method, path: &str, e: reqwest::Error) -> StoreError {
        // A request that could not be built fails the same way every time; anything else
        // (refused, reset, timed out) may pass on a retry.
        let kind = if e.is_builder() { StoreErrorKind::Other } else { StoreErrorKind::Unavailable };
        let e = e.without_url();
        let mut message = format!("{method} {}{path}: the Chroma server did not answer: {e}", self.shown);
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        error(kind, message)
    }

    fn status(&self, method: &Method, path: &str, status: u16, body: &[u8]) -> StoreError {
        let said = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect());
        let kind = match status {
            429 | 502..=504 => StoreErrorKind::Unavailable,
            409 => StoreErrorKind::Conflict,
            _ => StoreErrorKind::Other,
        };
        error(kind, format!("{method} {}{path}: HTTP {status}: {said}", self.shown))
    }

    /// Checks that the server answers.
    pub(crate) async fn heartbeat(&self) -> Result<(), StoreError> {
        self.call::<Value>(Method::GET, "/heartbeat", None).await.map(|_| ())
    }

    /// The most records one write may carry (`1000` when the server does not say).
    pub(crate) async fn max_batch(&self) -> Result<usize, StoreError> {
        match self.call::<Value>(Method::GET, "/pre-flight-checks", None).await {
            Ok(v) => {
                Ok(v.get("max_batch_size").and_then(Value::as_u64).map_or(1_000, |n| n.clamp(1, 100_000) as usize))
            }
            Err(e) if e.kind() == StoreErrorKind::Unavailable => Err(e),
            Err(_) => Ok(1_000),
        }
    }

    /// Makes the tenant and the database when they are missing (another process making them at
    /// the same time is fine).
    pub(crate) async fn ensure_database(&self) -> Result<(), StoreError> {
        let tenant = format!("/tenants/{}", self.tenant);
        let steps = [(tenant.clone(), "/tenants".to_owned()), (self.database.clone(), format!("{tenant}/databases"))];
        let names = [&self.tenant, &self.database_name];
        for ((get, create), name) in steps.into_iter().zip(names) {
            let (status, body) = self.send(Method::GET, &get, None).await?;
            match status {
                200..=299 => continue,
                404 => {}
                _ => return Err(self.status(&Method::GET, &get, status, &body)),
            }
            let (status, body) = self.send(Method::POST, &create, Some(&json!({ "name": name }))).await?;
            if !(200..300).contains(&status) && status != 409 {
                return Err(self.status(&Method::POST, &create, status, &body));
            }
        }
        Ok(())
    }

    /// Gets collection `name`, making it when missing (with `configuration`, which an existing
    /// collection keeps as it was made). Returns it, its vectors' dimension once it has one,
    /// and its distance (`cosine`, `l2`, `ip`) when the server says.
    pub(crate) async fn collection(
        &self,
        name: &str,
        configuration: Value,
    ) -> Result<(Collection, Option<usize>, Option<String>), StoreError> {
        let body = json!({
            "name": name,
            "get_or_create": true,
            "configuration": configuration,
            "metadata": { "made_by": "loomflow" },
        });
        let path = format!("{}/collections", self.database);
        let info: CollectionInfo = self.call(Method::POST, &path, Some(&body)).await?;
        Ok(describe(info))
    }

    /// The dimension of `collection`'s vectors, once it holds one.
    pub(crate) async fn dimension(&self, collection: &Collection) -> Result<Option<usize>, StoreError> {
        let path = format!("{}/collections/{}", self.database, collection.name);
        let info: CollectionInfo = self.call(Method::GET, &path, None).await?;
        Ok(describe(info).1)
    }

    fn records_path(&self, collection: &Collection, verb: &str) -> String {
        format!("{}/collections/{}/{verb}", self.database, collection.id)
    }

    /// Adds records; a record whose id is there already is left as it is (Chroma's `add`).
    pub(crate) async fn add(&self, collection: &Collection, records: &[Write]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let body = write_body(records);
        self.call::<Value>(Method::POST, &self.records_path(collection, "add"), Some(&body)).await.map(|_| ())
    }

    /// Writes records, replacing those whose id is there already, in one request.
    pub(crate) async fn upsert(&self, collection: &Collection, records: &[Write]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let body = write_body(records);
        self.call::<Value>(Method::POST, &self.records_path(collection, "upsert"), Some(&body)).await.map(|_| ())
    }

    /// The records of `ids` that exist, with their documents and metadata.
    pub(crate) async fn get_ids(&self, collection: &Collection, ids: &[String]) -> Result<Vec<Record>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let body = json!({ "ids": ids, "include": ["documents", "metadatas"] });
        let answer: GetResponse = self.call(Method::POST, &self.records_path(collection, "get"), Some(&body)).await?;
        records(answer, &collection.name)
    }

    /// The embeddings of the records of `ids` that exist, by id.
    #[cfg_attr(not(feature = "rag"), allow(dead_code))]
    pub(crate) async fn embeddings(
        &self,
        collection: &Collection,
        ids: &[String],
    ) -> Result<Vec<(String, Vec<f32>)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let body = json!({ "ids": ids, "include": ["embeddings"] });
        let answer: EmbeddingsResponse =
            self.call(Method::POST, &self.records_path(collection, "get"), Some(&body)).await?;
        let embeddings = answer.embeddings.unwrap_or_default();
        if embeddings.len() != answer.ids.len() {
            return Err(error(
                StoreErrorKind::Other,
                format!(
                    "a get of collection `{}` answered {} ids and {} embeddings",
                    collection.name,
                    answer.ids.len(),
                    embeddings.len()
                ),
            ));
        }
        Ok(answer.ids.into_iter().zip(embeddings).filter_map(|(id, e)| Some((id, e?))).collect())
    }

    /// Every record matching `filter`, page by page, in the server's order; with
    /// `documents`, their documents and metadata, else their ids only.
    pub(crate) async fn get_where(
        &self,
        collection: &Collection,
        filter: &Value,
        documents: bool,
    ) -> Result<Vec<Record>, StoreError> {
        let include = if documents { json!(["documents", "metadatas"]) } else { json!([]) };
        let path = self.records_path(collection, "get");
        let mut out: Vec<Record> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut offset = 0usize;
        loop {
            let body = json!({ "where": filter, "include": include, "limit": PAGE, "offset": offset });
            let answer: GetResponse = self.call(Method::POST, &path, Some(&body)).await?;
            let page = records(answer, &collection.name)?;
            let n = page.len();
            // A record deleted meanwhile shifts the pages: a record seen twice is kept once.
            out.extend(page.into_iter().filter(|r| seen.insert(r.id.clone())));
            if n < PAGE {
                return Ok(out);
            }
            offset += n;
        }
    }

    /// The ids nearest `vector` among the records matching `filter`, nearest first, with
    /// their distances.
    pub(crate) async fn query(
        &self,
        collection: &Collection,
        vector: &[f32],
        filter: &Value,
        n: usize,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        let body = json!({
            "query_embeddings": [vector],
            "n_results": n,
            "where": filter,
            "include": ["distances"],
        });
        let answer: QueryResponse =
            self.call(Method::POST, &self.records_path(collection, "query"), Some(&body)).await?;
        let ids = answer.ids.into_iter().next().unwrap_or_default();
        let distances = answer.distances.and_then(|d| d.into_iter().next()).unwrap_or_default();
        if distances.len() != ids.len() {
            return Err(error(
                StoreErrorKind::Other,
                format!(
                    "a query of collection `{}` answered {} ids and {} distances",
                    collection.name,
                    ids.len(),
                    distances.len()
                ),
            ));
        }
        Ok(ids.into_iter().zip(distances).filter_map(|(id, d)| Some((id, d?))).collect())
    }

    /// Deletes the records of `ids`, `batch` at a time.
    pub(crate) async fn delete_ids(
        &self,
        collection: &Collection,
        ids: &[String],
        batch: usize,
    ) -> Result<(), StoreError> {
        let path = self.records_path(collection, "delete");
        for chunk in ids.chunks(batch.max(1)) {
            self.call::<Value>(Method::POST, &path, Some(&json!({ "ids": chunk }))).await?;
        }
        Ok(())
    }

    /// Deletes every record matching `filter`.
    pub(crate) async fn delete_where(&self, collection: &Collection, filter: &Value) -> Result<(), StoreError> {
        let path = self.records_path(collection, "delete");
        self.call::<Value>(Method::POST, &path, Some(&json!({ "where": filter }))).await.map(|_| ())
    }
}

fn describe(info: CollectionInfo) -> (Collection, Option<usize>, Option<String>) {
    let space = info.configuration_json.as_ref().and_then(|c| {
        ["hnsw", "spann"].iter().find_map(|index| c.get(index)?.get("space")?.as_str().map(str::to_owned))
    });
    let dimension = info.dimension.and_then(|d| usize::try_from(d).ok()).filter(|d| *d > 0);
    (Collection { name: info.name, id: info.id }, dimension, space)
}

fn write_body(records: &[Write]) -> Value {
    json!({
        "ids": records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        "embeddings": records.iter().map(|r| r.embedding.as_slice()).collect::<Vec<_>>(),
        "documents": records.iter().map(|r| r.document.as_str()).collect::<Vec<_>>(),
        "metadatas": records.iter().map(|r| &r.metadata).collect::<Vec<_>>(),
    })
}

/// The records of a `get` answer; its columns must be as long as its ids.
fn records(answer: GetResponse, collection: &str) -> Result<Vec<Record>, StoreError> {
    let n = answer.ids.len();
    let documents = answer.documents.unwrap_or_default();
    let metadatas = answer.metadatas.unwrap_or_default();
    for (what, len) in [("documents", documents.len()), ("metadatas", metadatas.len())] {
        if len != 0 && len != n {
            return Err(error(
                StoreErrorKind::Other,
                format!("a get of collection `{collection}` answered {n} ids and {len} {what}"),
            ));
        }
    }
    let mut documents = documents.into_iter();
    let mut metadatas = metadatas.into_iter();
    Ok(answer
        .ids
        .into_iter()
        .map(|id| Record {
            id,
            document: documents.next().flatten(),
            metadata: metadatas.next().flatten().unwrap_or_default(),
        })
        .collect())
}
