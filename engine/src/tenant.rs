//! Tenants: the name spaces that keep rooms, channels, presence, client lookups and
//! broadcasts of one tenant apart from every other's.
//!
//! A connection's tenant comes from its route (`routes[].tenant`, a name or `:param`).
//! Rooms and channels are the names clients give, scoped by the tenant of the
//! connection that gives them: the hub, the broker and the created-room table are keyed
//! by [`scoped`] names, so two tenants' `lobby` are two rooms, and everything that finds
//! members through those keys (fan-out, presence, history, `room:members`) stays inside
//! one tenant. Connections without a tenant share the unscoped space, as before.
//!
//! Clients never see a scoped key: frames carry the name the client gave, and server-API
//! listings split keys back with [`split`].

use std::borrow::Cow;

/// The separator that opens and closes a tenant prefix. Room and channel names may not
/// contain it (`INVALID_MESSAGE`), so a scoped key can never equal a name given by a
/// client of another tenant, or of none.
pub(crate) const SEPARATOR: char = '\0';

/// The hub/broker key of the room or channel `name` in `tenant`'s space: `name` itself
/// without a tenant, `"\0<tenant>\0<name>"` with one.
pub(crate) fn scoped<'a>(tenant: Option<&str>, name: &'a str) -> Cow<'a, str> {
    match tenant {
        None => Cow::Borrowed(name),
        Some(t) => {
            let mut key = String::with_capacity(t.len() + name.len() + 2);
            key.push(SEPARATOR);
            key.push_str(t);
            key.push(SEPARATOR);
            key.push_str(name);
            Cow::Owned(key)
        }
    }
}

/// A key back as (tenant, name). Names hold no separator, so the name is what follows
/// the last one; the tenant is everything between the first and the last.
pub(crate) fn split(key: &str) -> (Option<&str>, &str) {
    match key.strip_prefix(SEPARATOR) {
        Some(rest) => match rest.rsplit_once(SEPARATOR) {
            Some((tenant, name)) => (Some(tenant), name),
            None => (None, key),
        },
        None => (None, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untenanted_names_are_their_own_keys() {
        assert_eq!(scoped(None, "lobby"), "lobby");
        assert_eq!(split("lobby"), (None, "lobby"));
    }

    #[test]
    fn tenants_get_distinct_keys_that_split_back() {
        let a = scoped(Some("acme"), "lobby");
        let b = scoped(Some("globex"), "lobby");
        assert_ne!(a, b);
        assert_ne!(a, "lobby");
        assert_eq!(split(&a), (Some("acme"), "lobby"));
        assert_eq!(split(&b), (Some("globex"), "lobby"));
        // An empty tenant (a route parameter that was empty) is still a tenant.
        let e = scoped(Some(""), "lobby");
        assert_eq!(split(&e), (Some(""), "lobby"));
        assert_ne!(e, "lobby");
    }

    #[test]
    fn a_tenant_holding_the_separator_still_splits_at_the_name() {
        let k = scoped(Some("a\0b"), "room");
        assert_eq!(split(&k), (Some("a\0b"), "room"));
        // (`scoped(Some("a"), "b\0room")` would be the same key: that is why names may
        // not hold the separator.)
    }
}
