//! Resources: per-resource settings, the `true | false | {...}` shorthand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vocabulary::{ChangeKind, GuardAction};

/// One resource exposed over the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// Events broadcast to subscribers. Default all three.
    pub events: Vec<ChangeKind>,
    /// Roles allowed to use the resource at all; empty allows everyone (including anonymous).
    pub auth: Vec<String>,
    /// Field paths (dotted, e.g. `metadata.internal`) never sent to clients.
    pub protected: Vec<String>,
    /// Largest `limit` a `list` may ask for. Default 100.
    pub max_list_limit: usize,
    /// JSON Schema (draft 2020-12 by default) the client's `data` must satisfy on
    /// insert; updates are checked against the same schema without `required`.
    pub schema: Option<serde_json::Value>,
    /// CEL guard per action (`subscribe`, `list`, `get`, `create`, `update`, `delete`,
    /// `read`); see [`crate::guard`].
    pub guards: BTreeMap<GuardAction, String>,
    /// Actions that also ask the host's guard callback (a host call) after the CEL guard.
    pub host_guards: Vec<GuardAction>,
    /// Whether `publish {channel: <this resource's name>}` also reaches the resource's
    /// subscribers (the s3db.js behaviour). Off by default; when on, the publisher must
    /// pass the resource's `auth` roles.
    pub publish: bool,
    /// Storage indexes the resource declares: each a dotted field path (`"channel"`)
    /// or a list of them (`["channel", "author.id"]`, a composite index). The engine
    /// does not use them; a SQL store creates them and answers filtered `list`s whose
    /// filter has an equality on an index's first field through it.
    pub indexes: Vec<IndexFields>,
    /// Keep the resource's change events as a stream (offsets, epoch, recovery on
    /// `subscribe` with `since`), bounded like a channel namespace's history. Absent
    /// (the default): `event` frames carry no offset.
    pub history: Option<crate::namespace::HistoryConfig>,
}

/// The fields of one declared index (`resources.<name>.indexes[i]`): a dotted field
/// path, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IndexFields {
    /// One field: `"channel"`.
    One(String),
    /// A composite index, first field first: `["channel", "createdAt"]`.
    Many(Vec<String>),
}

impl IndexFields {
    /// The index's field paths, each split at `.` (`"author.id"` → `["author", "id"]`).
    pub fn paths(&self) -> Vec<Vec<String>> {
        let one = |p: &String| p.split('.').map(str::to_string).collect();
        match self {
            IndexFields::One(p) => vec![one(p)],
            IndexFields::Many(ps) => ps.iter().map(one).collect(),
        }
    }
}

impl Default for ResourceConfig {
    fn default() -> Self {
        Self {
            events: ChangeKind::ALL.to_vec(),
            auth: Vec::new(),
            protected: Vec::new(),
            max_list_limit: 100,
            schema: None,
            guards: BTreeMap::new(),
            host_guards: Vec::new(),
            publish: false,
            indexes: Vec::new(),
            history: None,
        }
    }
}

pub(super) mod shorthand {
    //! `resources: {name: true | false | {...}}` (the s3db.js shorthand).
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    use super::ResourceConfig;

    struct Entry(Option<ResourceConfig>);

    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Entry;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("true, false or a resource object")
                }
                fn visit_bool<E: de::Error>(self, b: bool) -> Result<Entry, E> {
                    Ok(Entry(b.then(ResourceConfig::default)))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                    ResourceConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                        .map(|c| Entry(Some(c)))
                }
            }
            d.deserialize_any(V)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, ResourceConfig>, D::Error> {
        let raw: BTreeMap<String, Entry> = BTreeMap::deserialize(d)?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| v.0.map(|c| (k, c)))
            .collect())
    }
}
