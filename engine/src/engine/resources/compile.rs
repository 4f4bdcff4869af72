//! A resource's compiled guards and schema, as the engine looks them up (compiled once
//! with the config: [`crate::compile`]).

use std::sync::Arc;

pub(crate) use crate::compile::CompiledResource;
use crate::engine::Engine;

impl Engine {
    pub(in crate::engine) fn compiled(&self, resource: &str) -> Arc<CompiledResource> {
        self.compiled.get(resource).cloned().unwrap_or_default()
    }
}
