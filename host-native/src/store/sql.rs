//! What the SQL stores share: the JSON-path conditions a filter pushes into SQL, the
//! declared indexes, and the paging of `list` (cursors, the scan budget), written once
//! for both dialects (SQLite's JSON functions, PostgreSQL's `json` operators).
//!
//! Queries are written with `?` placeholders; the PostgreSQL store numbers them
//! (`$1`, `$2`, ...) with [`numbered`].

use std::collections::BTreeMap;

use engine::filter::{Filter, Op};
use engine::store::{decode_cursor, encode_cursor, failed, page, MAX_LIST_SCAN};
use engine::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};
use serde_json::Value;

/// A store error of `kind`.
pub(crate) fn fail(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError {
        kind,
        message: message.into(),
    }
}

/// An internal store error.
pub(crate) fn internal(e: impl std::fmt::Display) -> StoreError {
    fail(StoreErrorKind::Internal, e.to_string())
}

/// A stored record's JSON text, parsed.
pub(crate) fn parse(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| internal(format!("stored record is not JSON: {e}")))
}

/// The id of a record to insert (a non-empty string), or the store's error.
pub(crate) fn record_id(record: &Value) -> Result<&str, StoreError> {
    record
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| fail(StoreErrorKind::Internal, "record has no string id"))
}

/// `record` after `patch` (RFC 7386), keeping its id.
pub(crate) fn patched(previous: &Value, id: &str, patch: &Value) -> Value {
    let mut record = engine::store::merge_patch(previous, patch);
    if let Value::Object(m) = &mut record {
        m.insert("id".into(), Value::String(id.to_string()));
    }
    record
}

/// The error of an update or delete of a missing record.
pub(crate) fn not_found(id: &str) -> StoreError {
    fail(StoreErrorKind::NotFound, format!("no record `{id}`"))
}

/// The error of an insert whose id is taken.
pub(crate) fn conflict(id: &str) -> StoreError {
    fail(StoreErrorKind::Conflict, format!("id `{id}` exists"))
}

/// Which SQL the conditions are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: `json_extract`/`json_type` over a `TEXT` column.
    Sqlite,
    /// PostgreSQL: `#>`/`json_typeof` over a `json` column (kept as written), values
    /// compared as `jsonb`, `numeric` or `text COLLATE "C"` (byte order).
    Postgres,
}

/// A JSON scalar the conditions compare exactly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// A string.
    Text(String),
    /// An integer within ±2^53.
    Int(i64),
    /// A float within ±2^53.
    Real(f64),
}

impl Scalar {
    /// The scalar as JSON text.
    pub(crate) fn json(&self) -> String {
        match self {
            Scalar::Text(s) => Value::String(s.clone()).to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Real(f) => Value::from(*f).to_string(),
        }
    }
}

/// A query argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// A text value (resource, id, cursor).
    Text(String),
    /// An integer (a `LIMIT`).
    Int(i64),
    /// A value an extracted JSON value is compared for equality with.
    Equal(Scalar),
    /// A value an extracted string or number is ordered against.
    Order(Scalar),
}

/// A JSON path (`$."a"."b"`), if every segment can be written as a quoted label inside a
/// SQL string literal (no quotes, backslashes or control characters).
pub(crate) fn json_path(path: &[String]) -> Option<String> {
    let mut out = String::from("$");
    for seg in path {
        if seg.contains(['"', '\\', '\'']) || seg.chars().any(char::is_control) {
            return None;
        }
        out.push_str(&format!(".\"{seg}\""));
    }
    Some(out)
}

/// Largest magnitude at which integers and floats convert exactly (2^53).
const EXACT_NUMBER: f64 = 9_007_199_254_740_992.0;

/// A JSON scalar the prefilter can compare exactly.
pub(crate) fn sql_scalar(v: &Value) -> Option<Scalar> {
    match v {
        Value::String(s) => Some(Scalar::Text(s.clone())),
        Value::Number(n) => {
            let f = n.as_f64()?;
            if !f.is_finite() || f.abs() > EXACT_NUMBER {
                return None;
            }
            Some(n.as_i64().map_or(Scalar::Real(f), Scalar::Int))
        }
        _ => None,
    }
}

impl Dialect {
    /// The path as a SQL literal (`'$."a"'` or `'{"a"}'`), if [`json_path`] can write it.
    fn path(self, path: &[String]) -> Option<String> {
        let p = json_path(path)?;
        Some(match self {
            Dialect::Sqlite => format!("'{p}'"),
            Dialect::Postgres => {
                let segs: Vec<String> = path.iter().map(|s| format!("\"{s}\"")).collect();
                format!("'{{{}}}'", segs.join(","))
            }
        })
    }

    /// The expression of the value at a path literal, compared for equality (and what a
    /// declared index stores).
    fn value(self, p: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract(data, {p})"),
            Dialect::Postgres => format!("((data #> {p})::jsonb)"),
        }
    }

    /// The placeholder of an [`Arg::Equal`].
    fn equal_arg(self) -> &'static str {
        match self {
            Dialect::Sqlite => "?",
            Dialect::Postgres => "?::text::jsonb",
        }
    }

    /// `value {sign} ?` for values of the argument's kind only (different kinds never
    /// compare).
    fn compare(self, p: &str, sign: &str, string: bool) -> String {
        match (self, string) {
            (Dialect::Sqlite, _) => {
                let kinds = if string {
                    "'text'"
                } else {
                    "'integer', 'real'"
                };
                format!(
                    "(json_type(data, {p}) IN ({kinds}) AND {} {sign} ?)",
                    self.value(p)
                )
            }
            (Dialect::Postgres, true) => format!(
                "(CASE WHEN json_typeof(data #> {p}) = 'string' THEN data #>> {p} END) COLLATE \"C\" {sign} ?::text"
            ),
            (Dialect::Postgres, false) => format!(
                "(CASE WHEN json_typeof(data #> {p}) = 'number' THEN (data #> {p})::text::numeric END) {sign} ?::text::numeric"
            ),
        }
    }

    /// Whether the path exists (`null` counts). `None` when the dialect cannot say it
    /// exactly: PostgreSQL's `#>` reads a numeric segment as an array index, so a
    /// missing field could look present.
    fn exists(self, p: &str, path: &[String], exists: bool) -> Option<String> {
        let not = if exists { " NOT" } else { "" };
        match self {
            Dialect::Sqlite => Some(format!("json_type(data, {p}) IS{not} NULL")),
            Dialect::Postgres => {
                let index_like = path.iter().any(|s| s.trim().parse::<i64>().is_ok());
                (exists || !index_like).then(|| format!("(data #> {p}) IS{not} NULL"))
            }
        }
    }

    fn truth(self, b: bool) -> &'static str {
        match (self, b) {
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
        }
    }

    /// The record column as text.
    fn data(self) -> &'static str {
        match self {
            Dialect::Sqlite => "data",
            Dialect::Postgres => "data::text",
        }
    }

    /// The SQL name of a declared index: stable across restarts, any resource name.
    /// SQLite: `sb_idx_` and the hex of the resource and paths; PostgreSQL (names of at
    /// most 63 bytes): `sb_idx_` and 40 hex digits of their SHA-256.
    fn index_name(self, resource: &str, paths: &[String]) -> String {
        let key = format!("{resource}\0{}", paths.join("\0"));
        let bytes: Vec<u8> = match self {
            Dialect::Sqlite => key.into_bytes(),
            Dialect::Postgres => {
                use sha2::Digest as _;
                sha2::Sha256::digest(key.as_bytes())[..20].to_vec()
            }
        };
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("sb_idx_{hex}")
    }
}

/// SQL conditions on `data` (with their arguments) that every record the filter matches
/// satisfies: a necessary condition, so the query never drops a match; the engine's
/// filter still decides. Strings compare as UTF-8 bytes (code point order, like the
/// engine); numbers only within ±2^53, where the comparisons are exact. Conditions it
/// cannot express (`$ne`, objects, arrays, `null`, booleans, odd field names) are left
/// to the engine.
pub(crate) fn sql_prefilter(dialect: Dialect, filter: &Filter) -> (String, Vec<Arg>) {
    let mut terms: Vec<String> = Vec::new();
    let mut args = Vec::new();
    for (path, ops) in filter.clauses() {
        let Some(p) = dialect.path(path) else {
            continue;
        };
        let value = dialect.value(&p);
        for op in ops {
            match op {
                Op::Eq(v) => {
                    if let Some(a) = sql_scalar(v) {
                        terms.push(format!("{value} = {}", dialect.equal_arg()));
                        args.push(Arg::Equal(a));
                    }
                }
                Op::In(vs) => {
                    let scalars: Option<Vec<_>> = vs.iter().map(sql_scalar).collect();
                    match scalars {
                        Some(s) if s.is_empty() => terms.push(dialect.truth(false).into()),
                        Some(s) => {
                            let marks = vec![dialect.equal_arg(); s.len()].join(", ");
                            terms.push(format!("{value} IN ({marks})"));
                            args.extend(s.into_iter().map(Arg::Equal));
                        }
                        None => {}
                    }
                }
                Op::Gt(v) | Op::Gte(v) | Op::Lt(v) | Op::Lte(v) => {
                    let Some(a) = sql_scalar(v) else { continue };
                    let sign = match op {
                        Op::Gt(_) => ">",
                        Op::Gte(_) => ">=",
                        Op::Lt(_) => "<",
                        _ => "<=",
                    };
                    terms.push(dialect.compare(&p, sign, v.is_string()));
                    args.push(Arg::Order(a));
                }
                Op::Exists(e) => terms.extend(dialect.exists(&p, path, *e)),
                Op::Ne(_) => {}
            }
        }
    }
    if terms.is_empty() {
        (dialect.truth(true).into(), args)
    } else {
        (terms.join(" AND "), args)
    }
}

/// One declared index (`resources.<name>.indexes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexSpec {
    /// Its SQL name.
    pub name: String,
    /// `CREATE INDEX IF NOT EXISTS`: `(resource, <value at each path>..., id)` over the
    /// records table, so an equality on the first field walks the resource's matching
    /// records in id order.
    pub create: String,
}

/// The declared indexes of a deployment and, per resource, which ones a filtered list
/// can read through.
#[derive(Debug)]
pub(crate) struct Indexes {
    dialect: Dialect,
    /// Per resource, the JSON path (`$."a"."b"`) that leads each declared index and the
    /// index's name.
    leads: BTreeMap<String, Vec<(String, String)>>,
}

impl Indexes {
    /// No declared indexes yet.
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            leads: BTreeMap::new(),
        }
    }

    /// The indexes `resources` declare, remembered for [`Indexes::index_for`]; the
    /// caller creates them.
    pub(crate) fn declare(
        &mut self,
        resources: &BTreeMap<String, engine::config::ResourceConfig>,
    ) -> Vec<IndexSpec> {
        let d = self.dialect;
        let mut specs = Vec::new();
        for (resource, config) in resources {
            for fields in &config.indexes {
                // Config validation refused paths `json_path` cannot write.
                let Some(keys) = fields
                    .paths()
                    .iter()
                    .map(|p| json_path(p))
                    .collect::<Option<Vec<String>>>()
                else {
                    continue;
                };
                let Some(columns) = fields
                    .paths()
                    .iter()
                    .map(|p| d.path(p).map(|lit| d.value(&lit)))
                    .collect::<Option<Vec<String>>>()
                else {
                    continue;
                };
                let Some(lead) = keys.first().cloned() else {
                    continue;
                };
                let name = d.index_name(resource, &keys);
                let create = format!(
                    "CREATE INDEX IF NOT EXISTS \"{name}\" ON records(resource, {}, id)",
                    columns.join(", ")
                );
                let leads = self.leads.entry(resource.clone()).or_default();
                if !leads.iter().any(|(l, _)| *l == lead) {
                    leads.push((lead, name.clone()));
                }
                specs.push(IndexSpec { name, create });
            }
        }
        specs
    }

    /// The declared index of `resource` whose first field `filter` compares for
    /// equality, if any (a filtered list then reads through it).
    pub(crate) fn index_for(&self, resource: &str, filter: &Filter) -> Option<&str> {
        let leads = self.leads.get(resource)?;
        filter.clauses().find_map(|(path, ops)| {
            let p = json_path(path)?;
            let eq = ops
                .iter()
                .any(|op| matches!(op, Op::Eq(v) if sql_scalar(v).is_some()));
            if !eq {
                return None;
            }
            leads
                .iter()
                .find(|(l, _)| *l == p)
                .map(|(_, name)| name.as_str())
        })
    }

    /// The SQL (and its arguments) of a filtered page: through a declared index when
    /// the filter has an equality on its first field, else a bounded scan of the next
    /// rows whose condition only spares parsing. The budget is the last argument.
    pub(crate) fn filtered_query(
        &self,
        resource: &str,
        parsed: &Filter,
        after: &str,
    ) -> (String, Vec<Arg>) {
        let d = self.dialect;
        let (condition, cond_args) = sql_prefilter(d, parsed);
        let mut args = vec![
            Arg::Text(resource.to_string()),
            Arg::Text(after.to_string()),
        ];
        let data = d.data();
        let sql = if let Some(index) = self.index_for(resource, parsed) {
            // Through the declared index (SQLite names it: its planner has no statistics
            // to prefer it over the primary key): only candidate rows are read, at most
            // the budget of them, in id order.
            args.extend(cond_args);
            let hint = match d {
                Dialect::Sqlite => format!(" INDEXED BY \"{index}\""),
                Dialect::Postgres => String::new(),
            };
            format!(
                "SELECT id, {data} FROM records{hint} \
                 WHERE resource = ? AND id > ? AND {condition} ORDER BY id LIMIT ?"
            )
        } else {
            // The next `budget` rows of the resource; the condition only spares parsing.
            // (PostgreSQL keeps a subquery's order only when asked again.)
            args.splice(0..0, cond_args);
            let order = match d {
                Dialect::Sqlite => "",
                Dialect::Postgres => " ORDER BY id",
            };
            format!(
                "SELECT id, CASE WHEN {condition} THEN {data} END FROM \
                 (SELECT id, data FROM records WHERE resource = ? AND id > ? ORDER BY id LIMIT ?) AS page{order}"
            )
        };
        args.push(Arg::Int(MAX_LIST_SCAN as i64 + 1));
        (sql, args)
    }
}

/// What the shared `list` reads rows through.
pub(crate) trait SqlRows {
    /// Run `sql` with `args`, handing each row's id and record text (`None` for a row
    /// the query's condition ruled out) to `row` until it answers false.
    fn each_row(
        &mut self,
        sql: &str,
        args: &[Arg],
        row: &mut dyn FnMut(String, Option<String>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}

/// A `list`: pages and cursors exactly as `engine::store::page` makes them (the memory
/// store's), filters pushed into SQL, at most [`MAX_LIST_SCAN`] rows read per request.
pub(crate) fn list(
    db: &mut dyn SqlRows,
    indexes: &Indexes,
    resource: &str,
    filter: &Value,
    limit: usize,
    cursor: Option<&str>,
) -> Result<StoreOutcome, StoreError> {
    // A cursor we cannot decode is reported by `page` exactly as MemoryStore does.
    let after = match cursor.map(decode_cursor) {
        Some(None) => return Ok(page(std::iter::empty(), filter, limit, cursor)),
        Some(Some(id)) => id,
        None => String::new(),
    };
    let unfiltered = filter.is_null() || filter.as_object().is_some_and(|m| m.is_empty());
    if unfiltered {
        // Without a filter, `limit + 1` rows decide the page and whether more follow.
        let cap = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT id, {} FROM records WHERE resource = ? AND id > ? ORDER BY id LIMIT ?",
            indexes.dialect.data()
        );
        let args = [Arg::Text(resource.into()), Arg::Text(after), Arg::Int(cap)];
        let mut loaded: Vec<(String, Value)> = Vec::new();
        db.each_row(&sql, &args, &mut |id, text| {
            let text = text.ok_or_else(|| internal("a stored record is NULL"))?;
            loaded.push((id, parse(&text)?));
            Ok(true)
        })?;
        return Ok(page(
            loaded.iter().map(|(i, v)| (i, v)),
            filter,
            limit,
            cursor,
        ));
    }
    filtered_list(db, indexes, resource, filter, limit, &after)
}

/// A filtered page: at most `MAX_LIST_SCAN + 1` rows after the cursor are read (in id
/// order); SQL narrows them with the filter's conditions it can check exactly or
/// conservatively ([`sql_prefilter`]), so only candidate rows are parsed, and the
/// engine's filter decides. Same pages as `page()`, except through a declared index,
/// where the budget counts candidate rows only (a page then ends early less often).
fn filtered_list(
    db: &mut dyn SqlRows,
    indexes: &Indexes,
    resource: &str,
    filter: &Value,
    limit: usize,
    after: &str,
) -> Result<StoreOutcome, StoreError> {
    let parsed = match Filter::parse(filter) {
        Ok(f) => f,
        Err(e) => return Ok(failed(StoreErrorKind::Internal, format!("bad filter: {e}"))),
    };
    let (sql, args) = indexes.filtered_query(resource, &parsed, after);
    let mut items: Vec<Value> = Vec::with_capacity(limit.min(1024));
    let mut scanned = 0;
    let mut last_scanned: Option<String> = None;
    let mut cursor = None;
    db.each_row(&sql, &args, &mut |id, text| {
        if scanned == MAX_LIST_SCAN {
            // The budget ran out and more rows follow: continue after the last one read.
            cursor = last_scanned.as_deref().map(encode_cursor);
            return Ok(false);
        }
        scanned += 1;
        if let Some(text) = text {
            let record = parse(&text)?;
            if parsed.matches(&record) {
                if items.len() == limit {
                    cursor = items
                        .last()
                        .and_then(|r| r.get("id"))
                        .and_then(Value::as_str)
                        .map(encode_cursor);
                    return Ok(false);
                }
                items.push(record);
            }
        }
        last_scanned = Some(id);
        Ok(true)
    })?;
    Ok(StoreOutcome::Page { items, cursor })
}

/// The operations of a SQL store, which [`run`] hands each request to.
pub(crate) trait Operations {
    fn get(&mut self, resource: &str, id: &str) -> Result<Option<Value>, StoreError>;
    fn list(
        &mut self,
        resource: &str,
        filter: &Value,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<StoreOutcome, StoreError>;
    fn insert(&mut self, resource: &str, record: &Value) -> Result<StoreOutcome, StoreError>;
    fn update(
        &mut self,
        resource: &str,
        id: &str,
        patch: &Value,
    ) -> Result<StoreOutcome, StoreError>;
    fn delete(&mut self, resource: &str, id: &str) -> Result<StoreOutcome, StoreError>;
}

/// Run `request` on `store`.
pub(crate) fn run(
    store: &mut impl Operations,
    request: &StoreRequest,
) -> Result<StoreOutcome, StoreError> {
    match request {
        StoreRequest::Get { resource, id } => store.get(resource, id).map(StoreOutcome::Record),
        StoreRequest::List {
            resource,
            filter,
            limit,
            cursor,
        } => store.list(resource, filter, *limit, cursor.as_deref()),
        StoreRequest::Insert { resource, record } => store.insert(resource, record),
        StoreRequest::Update {
            resource,
            id,
            patch,
        } => store.update(resource, id, patch),
        StoreRequest::Delete { resource, id } => store.delete(resource, id),
    }
}

/// `sql` with its `?` placeholders numbered `$1`, `$2`, ... (PostgreSQL). Quoted text
/// (string literals, quoted names) is copied as it is.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut quote: Option<char> = None;
    let mut n = 0;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (Some(q), _) if c == q => {
                quote = None;
                out.push(c);
            }
            (None, '?') => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_numbered_outside_quotes_only() {
        assert_eq!(
            numbered("a = ? AND (data #> '{\"x?\"}') = ?::text::jsonb AND \"q?\" > ?"),
            "a = $1 AND (data #> '{\"x?\"}') = $2::text::jsonb AND \"q?\" > $3"
        );
    }

    #[test]
    fn postgres_conditions_cast_every_argument_from_text() {
        let f = Filter::parse(&json!({"channel": "general", "n": {"$gt": 1}, "s": {"$lt": "b"}}))
            .unwrap();
        let (sql, args) = sql_prefilter(Dialect::Postgres, &f);
        assert_eq!(args.len(), 3, "{sql}");
        assert!(
            sql.contains(r#"((data #> '{"channel"}')::jsonb) = ?::text::jsonb"#),
            "{sql}"
        );
        assert!(sql.contains("?::text::numeric"), "{sql}");
        assert!(sql.contains("COLLATE \"C\" < ?::text"), "{sql}");
    }

    #[test]
    fn a_missing_field_test_is_left_to_the_engine_when_a_segment_looks_like_an_index() {
        let f = Filter::parse(&json!({"m.0": {"$exists": false}})).unwrap();
        assert_eq!(sql_prefilter(Dialect::Postgres, &f).0, "TRUE");
        assert_ne!(sql_prefilter(Dialect::Sqlite, &f).0, "1");
    }

    #[test]
    fn postgres_index_names_fit_in_63_bytes() {
        let long = "r".repeat(200);
        let name = Dialect::Postgres.index_name(&long, &["$.\"a\"".into()]);
        assert!(name.len() <= 63, "{name}");
    }
}
