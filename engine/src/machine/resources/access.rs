//! Who may use a resource: its configured access roles, the client's filter (no
//! protected fields), and the user as filters and guards see it.

use std::sync::Arc;

use serde_json::Value;

use super::clip;
use crate::config::ResourceConfig;
use crate::connection::UserView;
use crate::error::ErrorCode;
use crate::filter::Filter;
use crate::guard::GuardValue;
use crate::machine::Engine;

impl Engine {
    /// The resource's config if this connection may use it.
    pub(in crate::machine) fn resource_access(
        &self,
        slot: usize,
        resource: &str,
    ) -> Result<ResourceConfig, (ErrorCode, String)> {
        let Some(rc) = self.config.resources.get(resource) else {
            return Err((
                ErrorCode::ResourceNotFound,
                format!(
                    "Resource \"{}\" is not configured for WebSocket access",
                    clip(resource)
                ),
            ));
        };
        self.role_allowed(
            slot,
            &rc.auth,
            &format!("use resource `{}`", clip(resource)),
        )?;
        Ok(rc.clone())
    }

    /// Parse and check a client's filter on resource `rc` (subscribe, list): it must
    /// parse (`INVALID_MESSAGE`) and pass [`Engine::check_filter_fields`]. The parsed
    /// filter is carried on, so the client's JSON is parsed once. Guards' forced filters
    /// are server-side and never go through here.
    pub(in crate::machine) fn parse_client_filter(
        rc: &ResourceConfig,
        resource: &str,
        filter: &Value,
    ) -> Result<Filter, (ErrorCode, String)> {
        let parsed = Filter::parse(filter).map_err(|e| (ErrorCode::InvalidMessage, e.0))?;
        Self::check_filter_fields(rc, resource, &parsed)?;
        Ok(parsed)
    }

    /// A client's filter on resource `rc` (subscribe, list, unsubscribe) must not reach
    /// a protected field, its parents or its children (`FORBIDDEN`; PROTOCOL.md §8).
    pub(in crate::machine) fn check_filter_fields(
        rc: &ResourceConfig,
        resource: &str,
        parsed: &Filter,
    ) -> Result<(), (ErrorCode, String)> {
        match parsed.protected_field(&rc.protected) {
            None => Ok(()),
            Some(field) => Err((
                ErrorCode::Forbidden,
                format!(
                    "filter field `{}` reaches a protected field of `{}`; filters cannot use protected fields",
                    clip(&field),
                    clip(resource)
                ),
            )),
        }
    }

    /// The shared view of the user of the connection in `slot` (`None`: anonymous).
    pub(super) fn user_view(&self, slot: usize) -> Option<&Arc<UserView>> {
        self.conns.get(slot).and_then(|c| c.user_view.as_ref())
    }

    /// The user of `slot` as filters and host guards see it.
    pub(in crate::machine) fn user_subject(&self, slot: usize) -> Option<Value> {
        self.user_view(slot).map(|v| v.subject.clone())
    }

    /// The user of `slot` as CEL guards see it (converted when it connected).
    pub(super) fn user_guard_value(&self, slot: usize) -> GuardValue {
        self.user_view(slot)
            .map_or_else(GuardValue::null, |v| v.guard.clone())
    }
}
