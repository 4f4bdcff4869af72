//! Client CRUD requests (`get`, `list`, `insert`, `update`, `delete`) and the shaping
//! of records and patches that client and server writes share.

use serde_json::{Map, Value};

use super::pipeline::ResourceOp;
use super::Rid;
use crate::error::ErrorCode;
use crate::guard::GuardAction;
use crate::machine::Engine;
use crate::timestamp::iso8601;
use crate::types::Millis;

impl Engine {
    pub(in crate::machine) fn crud_get(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        id: String,
        rid: Rid,
    ) {
        self.crud_by_id(now, slot, GuardAction::Get, resource, id, rid);
    }

    /// `get` and `delete`: one record by its id, through the pipeline.
    fn crud_by_id(
        &mut self,
        now: Millis,
        slot: usize,
        action: GuardAction,
        resource: String,
        id: String,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        if id.is_empty() {
            return self.send_error(
                slot,
                ErrorCode::InvalidMessage,
                "`id` must not be empty",
                rid,
            );
        }
        let mut op = ResourceOp::new(action, resource);
        op.id = Some(id);
        self.run_op(now, slot, op, rid);
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::machine) fn crud_list(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        filter: Option<Value>,
        limit: Option<u64>,
        cursor: Option<String>,
        rid: Rid,
    ) {
        let rc = match self.resource_access(slot, &resource) {
            Ok(rc) => rc,
            Err((code, m)) => return self.send_error(slot, code, m, rid),
        };
        let client_filter = match filter.as_ref().filter(|f| !f.is_null()) {
            None => None,
            Some(f) => match Self::parse_client_filter(&rc, &resource, f) {
                Ok(parsed) => Some(parsed),
                Err((code, m)) => return self.send_error(slot, code, m, rid),
            },
        };
        let limit = match limit {
            None => rc.max_list_limit,
            Some(0) => {
                return self.send_error(
                    slot,
                    ErrorCode::InvalidMessage,
                    "`limit` must be at least 1",
                    rid,
                )
            }
            Some(n) => (n.min(rc.max_list_limit as u64)) as usize,
        };
        let mut op = ResourceOp::new(GuardAction::List, resource);
        op.filter = filter.filter(|f| !f.is_null());
        op.client_filter = client_filter;
        op.limit = limit;
        op.cursor = cursor;
        self.run_op(now, slot, op, rid);
    }

    pub(in crate::machine) fn crud_insert(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        data: Map<String, Value>,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        let record = match self.new_record(now, &resource, data) {
            Ok(r) => r,
            Err((code, m)) => return self.send_error(slot, code, m, rid),
        };
        let mut op = ResourceOp::new(GuardAction::Create, resource);
        op.id = record.get("id").and_then(Value::as_str).map(str::to_string);
        op.data = Some(Value::Object(record));
        self.run_op(now, slot, op, rid);
    }

    pub(in crate::machine) fn crud_update(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        id: String,
        data: Map<String, Value>,
        rid: Rid,
    ) {
        if let Err((code, m)) = self.resource_access(slot, &resource) {
            return self.send_error(slot, code, m, rid);
        }
        let patch = match self.update_patch(now, &resource, &id, data) {
            Ok(p) => p,
            Err((code, m)) => return self.send_error(slot, code, m, rid),
        };
        let mut op = ResourceOp::new(GuardAction::Update, resource);
        op.id = Some(id);
        op.data = Some(Value::Object(patch));
        self.run_op(now, slot, op, rid);
    }

    /// The record an insert stores, shaped the same way for clients and the server:
    /// `id` first (given, or generated from the engine's seeded generator), the fields,
    /// then `createdAt` and `updatedAt` set to `now`; client-sent timestamps are
    /// ignored; the fields are checked against the resource's schema.
    pub(super) fn new_record(
        &mut self,
        now: Millis,
        resource: &str,
        mut data: Map<String, Value>,
    ) -> Result<Map<String, Value>, (ErrorCode, String)> {
        let id = match data.shift_remove("id") {
            None => Value::String(self.random_id(20)),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Value::String(s),
            Some(_) => {
                return Err((
                    ErrorCode::ValidationError,
                    "id: must be a non-empty string of at most 256 bytes".into(),
                ))
            }
        };
        data.shift_remove("createdAt");
        data.shift_remove("updatedAt");
        let cr = self.compiled(resource);
        if let Some(schema) = &cr.schema {
            schema
                .check_insert(&Value::Object(data.clone()))
                .map_err(|e| (ErrorCode::ValidationError, e))?;
        }
        let ts = Value::String(iso8601(now));
        let mut record = Map::with_capacity(data.len() + 3);
        record.insert("id".into(), id);
        record.extend(data);
        record.insert("createdAt".into(), ts.clone());
        record.insert("updatedAt".into(), ts);
        Ok(record)
    }

    /// The patch an update stores, shaped the same way for clients and the server: the
    /// id must be non-empty and may not change, client-sent timestamps are ignored, the
    /// fields are checked against the resource's schema, and `updatedAt` is set.
    pub(super) fn update_patch(
        &self,
        now: Millis,
        resource: &str,
        id: &str,
        mut data: Map<String, Value>,
    ) -> Result<Map<String, Value>, (ErrorCode, String)> {
        if id.is_empty() {
            return Err((ErrorCode::InvalidMessage, "`id` must not be empty".into()));
        }
        match data.shift_remove("id") {
            None => {}
            Some(Value::String(s)) if s == id => {}
            Some(_) => {
                return Err((
                    ErrorCode::ValidationError,
                    "id: a record's id cannot be changed".into(),
                ))
            }
        }
        data.shift_remove("createdAt");
        data.shift_remove("updatedAt");
        let cr = self.compiled(resource);
        if let Some(schema) = &cr.schema {
            schema
                .check_update(&Value::Object(data.clone()))
                .map_err(|e| (ErrorCode::ValidationError, e))?;
        }
        data.insert("updatedAt".into(), Value::String(iso8601(now)));
        Ok(data)
    }

    pub(in crate::machine) fn crud_delete(
        &mut self,
        now: Millis,
        slot: usize,
        resource: String,
        id: String,
        rid: Rid,
    ) {
        self.crud_by_id(now, slot, GuardAction::Delete, resource, id, rid);
    }
}
